"""One explainability window of one model: attribution sums -> importance and attribution drift -> documents.

Per window the store answers with ``AttributionSums`` per feature (one
aggregation / one SQL scan); :func:`mlmon.metrics.attribution.attribution_metrics`
turns them into per-feature importance (mean |attribution|), share, rank and
signed mean, and - against the attribution reference - per-feature
``attribution_drift`` (share change), ``ranking_ndcg`` (SageMaker's score) and
``importance_shift``. Statuses follow the drift jobs' rule: an effect-size
threshold, a significance gate (the Welch z of mean |a|, Holm-adjusted across
the window's features) because explanations are usually sampled, and a
minimum number of explanations below which the status is ``insufficient_data``.
With ``explainability.segments`` the same documents are written per configured
segment value too (``segment_field`` / ``segment_value``; explanations take
their prediction's segment, joined by prediction id in the store), each
compared with the same reference.

The attribution reference comes from ``explainability.reference`` (an id), from
``explainability.reference_window`` (a production window, computed once and
stored), or is the newest stored for the model / version. References are built
from attributions given at build time with :func:`reference_from_frame`
(e.g. SHAP values of the training set) and stored with :func:`save_reference`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from statistics import NormalDist
from typing import Any, Self, cast

import numpy as np

from mlmon import __version__
from mlmon.config.model import ModelConfig
from mlmon.core.documents import MetricDocument, Status, Threshold, iso
from mlmon.config.explainability import ExplainabilityConfig
from mlmon.config.model import explainability_config
from mlmon.jobs.base import (DocumentContext, EventSchedule, VersionLookup, Window, WindowOutput, for_version,
                             per_version_batches, window_chunks)
from mlmon.metrics import thresholds as th
from mlmon.metrics.attribution import attribution_metrics
from mlmon.metrics.performance import MetricValue
from mlmon.core.perf_stats import AttributionSums
from mlmon.core.queries import WindowBatch
from mlmon.stores.protocols import BatchExplainBackend, ExplainBackend, Store
from mlmon_logging import contract

log = logging.getLogger("mlmon.explainability")
REFERENCE_FORMAT = 1
ATTRIBUTIONS_PREFIX = "mlmon.attributions."
#: Metrics with thresholds; the rest (importance, share, rank, mean attribution) are reported as they are.
THRESHOLDED = ("attribution_drift", "ranking_ndcg", "importance_shift")


class ExplainabilityJobError(ValueError):
    """Configuration, reference and data do not fit together; the message says what to do."""


# --- attribution references -----------------------------------------------------------------------

@dataclass(frozen=True)
class AttributionReference:
    """Attribution sums per feature of a reference (training set or a production window)."""

    model: str
    version: str
    features: Mapping[str, AttributionSums]
    source: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @cached_property  # every document of every window names the reference: hashed once
    def rows(self) -> int:
        return int(max((s.n for s in self.features.values()), default=0.0))

    @cached_property
    def id(self) -> str:
        """Content-addressed, like reference profiles: the same attributions give the same id."""
        body = json.dumps(self._body(), sort_keys=True, separators=(",", ":")).encode()
        return f"{self.model}-{self.version}-attr-{hashlib.sha256(body).hexdigest()[:16]}"

    def _body(self) -> dict[str, Any]:
        return {"format": REFERENCE_FORMAT, "model": self.model, "version": self.version,
                "features": {f: [s.n, s.sum_abs, s.sum, s.sum_sq] for f, s in sorted(self.features.items())}}

    def to_document(self) -> dict[str, Any]:
        return {**self._body(), "source": self.source, "created_at": iso(self.created_at)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Self:
        try:
            if int(doc["format"]) > REFERENCE_FORMAT:
                raise ExplainabilityJobError(f"attribution reference format {doc['format']} is newer than this mlmon")
            features = {str(f): AttributionSums(*(float(x) for x in v)) for f, v in doc["features"].items()}
            return cls(model=str(doc["model"]), version=str(doc["version"]), features=features,
                       source=str(doc.get("source", "")),
                       created_at=datetime.fromisoformat(str(doc["created_at"]).replace("Z", "+00:00")))
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, ExplainabilityJobError):
                raise
            raise ExplainabilityJobError(f"not an attribution reference document ({err!r})") from err


def reference_from_frame(frame: Any, model: str, version: str, source: str = "") -> AttributionReference:
    """A reference from per-row attributions (a pandas DataFrame: one column per feature, e.g. SHAP values).

    Columns may be plain feature names or ``mlmon.attributions.<name>``; NaN cells are skipped.
    """
    import pandas as pd

    if len(frame) == 0:
        raise ExplainabilityJobError("the reference attributions have no rows")
    sums: dict[str, AttributionSums] = {}
    for col in map(str, frame.columns):
        name = col.removeprefix(ATTRIBUTIONS_PREFIX)
        if contract.family_of(ATTRIBUTIONS_PREFIX + name) is None or not contract.is_valid_name(name):
            raise ExplainabilityJobError(f"column {col!r} is not a feature name (letters, digits, '_' or '-')")
        try:
            values = pd.to_numeric(frame[col], errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        except (ValueError, TypeError) as err:
            raise ExplainabilityJobError(f"attribution column {col!r} holds non-numbers: {err}") from err
        if not np.isfinite(values[~np.isnan(values)]).all():
            raise ExplainabilityJobError(f"attribution column {col!r} holds +/-inf")
        sums[name] = AttributionSums.from_values(values)
    if all(s.sum_abs == 0 for s in sums.values()):
        raise ExplainabilityJobError("every reference attribution is zero or missing: nothing to compare against")
    return AttributionReference(model, version, sums, source)


def reference_from_store(backend: ExplainBackend, model: str, version: str | None, start: datetime, end: datetime, *,
                         method: str | None = None, features: Sequence[str] = ()) -> AttributionReference:
    """A reference from the explanation events of a production window (aggregations only; version None: all)."""
    sums = backend.attribution_sums(model, start, end, version=version, method=method, features=features)
    sums = {f: s for f, s in sums.items() if s.n > 0}
    if not sums:
        raise ExplainabilityJobError(f"no {model!r} explanations between {iso(start)} and {iso(end)}: "
                                     "cannot build an attribution reference from that window")
    return AttributionReference(model, version or "*", sums, source=f"window:{iso(start)}/{iso(end)}")


def save_reference(backend: ExplainBackend, reference: AttributionReference) -> str:
    return backend.put_attribution_reference(reference.id, reference.model, reference.version, reference.created_at,
                                             reference.source, reference.rows, reference.to_document())


def load_reference(backend: ExplainBackend, model: str, version: str | None = None,
                   reference_id: str | None = None) -> AttributionReference | None:
    doc = backend.get_attribution_reference(model, version, reference_id)
    return None if doc is None else AttributionReference.from_document(doc)


# --- the job ---------------------------------------------------------------------------------------

@dataclass
class ExplainabilityJob:
    backend: ExplainBackend
    model: ModelConfig
    config: ExplainabilityConfig
    run_id: str
    #: Version written on documents when the config names none (the runner passes its reference's).
    default_version: str = ""
    code_version: str = __version__
    #: Explainability follows the event-time schedule (the drift job's windows).
    event_schedule: EventSchedule | None = None
    #: Which versions a window's traffic holds (no version configured: documents per version).
    versions: VersionLookup | None = None
    _reference: AttributionReference | None = None
    _reference_loaded: bool = False
    _estimator: Any = None
    #: Per traffic version: the job as it sees that version, and the note when it uses another's reference.
    _views: dict[str, tuple[ExplainabilityJob, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "explainability"

    @property
    def schedule(self) -> EventSchedule:
        if self.event_schedule is None:
            raise ExplainabilityJobError(f"model {self.model.name}: this explainability job was built without "
                                         "a schedule (use explainability_job(store, ...))")
        return self.event_schedule

    def run_windows(self, windows: Sequence[Window], at: datetime) -> Iterator[WindowOutput]:
        # The event schedule's checkpoint moves with every job of the schedule, so it advances when drift is
        # not run (no reference profile) or failed; the scheduler reports a failed job's windows.
        key = self.event_schedule.checkpoint if self.event_schedule is not None else None
        for chunk in window_chunks(windows):
            for (start, end), docs in zip(chunk, self.run_batch(chunk)):
                yield WindowOutput(start, end, docs, ((key, end),) if key else ())

    @property
    def version(self) -> str:
        return self.model.version or (self._reference.version if self._reference else "") or self.default_version

    def reference(self) -> AttributionReference | None:
        """The attribution reference (resolved once per job): configured id, reference window, or newest."""
        if self._reference_loaded:
            return self._reference
        cfg, name = self.config, self.model.name
        if cfg.reference is not None:
            ref = load_reference(self.backend, name, reference_id=cfg.reference)
            if ref is None:
                raise ExplainabilityJobError(
                    f"model {name}: attribution reference {cfg.reference!r} is not in the store")
        elif cfg.reference_window is not None:
            start, end = cfg.reference_window
            ref = reference_from_store(self.backend, name, self.model.version or self.default_version or None, start,
                                       end, method=cfg.method, features=cfg.features)
            save_reference(self.backend, ref)  # content-addressed: stored once however often it is built
        else:
            ref = load_reference(self.backend, name, self.model.version)
            if ref is None:
                log.info("model %s: no attribution reference; reporting importance without attribution drift", name)
        self._reference, self._reference_loaded = ref, True
        return ref

    def run(self, start: datetime, end: datetime) -> list[MetricDocument]:
        """Documents of the window (not yet written); per version of its traffic when none is configured."""
        return self.run_batch([(start, end)])[0]

    def run_batch(self, windows: Sequence[Window]) -> list[list[MetricDocument]]:
        """Documents of each window (sorted, aligned): one store pass per segment for all of them."""
        def version_batch(version: str | None, batch: WindowBatch) -> list[list[MetricDocument]]:
            view, note = (self, "") if version is None else self.for_version(version)
            part = view._batch(batch)
            return [[replace(d, details={**d.details, "reference_note": note}) for d in docs]
                    for docs in part] if note else part

        split = per_version_batches(self.versions, self.model, windows, version_batch)
        return split if split is not None else self._batch(WindowBatch.of(windows))

    def _batch(self, batch: WindowBatch) -> list[list[MetricDocument]]:
        cfg = self.config
        reference = self.reference()
        features = list(cfg.features) or sorted(set(self.backend.attribution_features(self.model.name,
                                                                                        self.model.version))
                                                 | set(reference.features if reference else ()))
        out: list[list[MetricDocument]] = [[] for _ in batch.windows]
        if features:
            # One context per window: its documents, of every segment, share one computed_at.
            contexts = [self._context(reference, start, end) for start, end in batch.windows]
            # All traffic, then each configured segment value against the same reference.
            for segment in [None, *((name, v) for name, values in cfg.segments.items() for v in values)]:
                for docs, ctx, current in zip(out, contexts, self._sums(batch, features, segment)):
                    docs += self.documents(current, reference, replace(ctx, segment=segment))
        if cfg.permutation is not None:
            for docs, (start, end) in zip(out, batch.windows):
                docs += self.permutation_documents(start, end)
        return out

    def _sums(self, batch: WindowBatch, features: Sequence[str],
              segment: tuple[str, str] | None) -> list[dict[str, AttributionSums]]:
        """Attribution sums of each window: in one pass when the store answers batches."""
        kwargs: dict[str, Any] = dict(version=self.model.version, method=self.config.method, features=features,
                                      segment=segment)
        if isinstance(self.backend, BatchExplainBackend):
            return self.backend.attribution_sums_batch(self.model.name, batch, **kwargs)
        return [self.backend.attribution_sums(self.model.name, s, e, **kwargs) for s, e in batch.windows]

    def for_version(self, version: str) -> tuple[ExplainabilityJob, str]:
        """The job over one version's traffic (kept across windows), and a note when it uses another's reference.

        A configured reference or reference window serves every version; otherwise each version's newest
        attribution reference, or the model's newest when the version has none.
        """
        if version not in self._views:
            shared = self.reference()
            ref, note = shared, ""
            if self.config.reference is None and self.config.reference_window is None:
                own = load_reference(self.backend, self.model.name, version)
                if own is not None:
                    ref = own
                elif shared is not None:
                    note = (f"no attribution reference for version {version}; compared with version "
                            f"{shared.version}'s ({shared.id})")
            view = replace(self, model=for_version(self.model, version), _reference=ref, _reference_loaded=True,
                           _views={})
            self._views[version] = (view, note)
        view, note = self._views[version]
        view.run_id = self.run_id  # set per round on this job
        return view, note

    def permutation_documents(self, start: datetime, end: datetime) -> list[MetricDocument]:
        """Permutation importance of the configured model on the window's labelled rows (see mlmon.jobs.permutation)."""
        from mlmon.jobs import permutation as pm

        perm = self.config.permutation
        assert perm is not None
        if not hasattr(self.backend, "labelled_sample"):
            raise ExplainabilityJobError(f"model {self.model.name}: explainability.permutation needs labelled rows, "
                                         "which only the embedded store serves so far")
        try:
            if self._estimator is None:
                self._estimator = pm.load_estimator(perm.model_path)
            features = pm.model_features(self._estimator, self.config.features)
            rows = cast(pm.LabelledRows, self.backend)
            values, used, baseline = pm.permutation_importances(rows, self._estimator, features, perm,
                                                                self.model.name, start, end, self.model.version)
        except pm.PermutationError as err:
            raise ExplainabilityJobError(f"model {self.model.name}: {err}") from err
        ctx = DocumentContext(self.model.name, self.version, start, end, self.run_id, self.code_version)
        method = f"permutation:{perm.scoring}:{perm.repeats}-repeats"
        if not values:
            return [ctx.document("explainability", "permutation_importance", None, "insufficient_data",
                                 n_current=used, method=method, feature=f,
                                 details={"status_reason": f"{used} labelled rows, fewer than {pm.MIN_SAMPLE}"})
                    for f in features]
        return [ctx.document("explainability", "permutation_importance", mean, "no_threshold", n_current=used,
                             method=method, feature=f, details={"std": std, "baseline_score": baseline,
                                                                "scoring": perm.scoring, "repeats": perm.repeats,
                                                                "rows": used})
                for f, (mean, std) in values.items()]

    # --- pure part: sums -> documents ----------------------------------------------------------------

    def documents(self, current: Mapping[str, AttributionSums], reference: AttributionReference | None,
                  ctx: DocumentContext) -> list[MetricDocument]:
        """Documents of one window (``ctx``'s: of all traffic, or of its segment = (name, value))."""
        cfg = self.config
        if not cfg.features:
            # Columns of other models' features exist too: keep what this model logged now or in its reference.
            current = {f: s for f, s in current.items()
                       if s.n > 0 or (reference is not None and f in reference.features)}
        n_explanations = max((s.n for s in current.values()), default=0.0)
        enough = n_explanations >= cfg.min_explanations
        values = list(attribution_metrics(current, reference.features if reference else None, cfg.top_k))
        drift = [v for v in values if v.metric == "attribution_drift"]
        p_raw = [_two_sided_p(v.details.get("z")) for v in drift]
        tested = [p for p in p_raw if p is not None]
        adjusted_iter = iter(th.adjust(tested, "holm"))
        p_adjusted = {v.feature: (next(adjusted_iter) if p is not None else None) for v, p in zip(drift, p_raw)}
        p_of = {v.feature: p for v, p in zip(drift, p_raw)}
        docs = [self._document(v, enough, p_of.get(v.feature), p_adjusted.get(v.feature), ctx) for v in values]
        docs.append(self._count_document(n_explanations, enough, ctx))
        return docs

    def _document(self, v: MetricValue, enough: bool, p_value: float | None, p_adjusted: float | None,
                  ctx: DocumentContext) -> MetricDocument:
        details: dict[str, Any] = dict(v.details)
        threshold: Threshold | None = None
        if v.metric in THRESHOLDED:
            threshold = self.config.thresholds[v.metric].threshold()
        if v.value is None:
            status: Status = "insufficient_data" if v.missing == "insufficient_data" or not enough else "no_threshold"
            details["status_reason"] = v.note
        elif not enough:
            status = "insufficient_data"
            details["status_reason"] = f"fewer than min_explanations={self.config.min_explanations} explanations"
        elif threshold is None:
            status = "no_threshold"
        else:
            # attribution_drift is signed (share up or down); its thresholds apply to the size of the change.
            measured = abs(v.value) if v.metric == "attribution_drift" else v.value
            status, why = th.decide(measured, threshold, gated=v.metric == "attribution_drift",
                                    p_adjusted=p_adjusted, alpha=self.config.alpha, enough_data=True)
            if why:
                details["status_reason"] = why
        if v.metric == "attribution_drift":
            details.update(p_value=p_value, p_adjusted=p_adjusted, correction="holm", compared="abs(value)")
        return ctx.document(
            "explainability", v.metric, v.value, status, n_current=int(round(v.n)), method=_method(self.config),
            feature=v.feature, threshold=threshold, details=details)

    def _count_document(self, n: float, enough: bool, ctx: DocumentContext) -> MetricDocument:
        return ctx.document(
            "explainability", "explanations", n, "no_threshold" if enough else "insufficient_data",
            n_current=int(round(n)), method="count", details={"min_explanations": self.config.min_explanations})

    def _context(self, reference: AttributionReference | None, start: datetime, end: datetime) -> DocumentContext:
        return DocumentContext(self.model.name, self.version, start, end, self.run_id, self.code_version,
                               reference_id=reference.id if reference else "",
                               n_reference=reference.rows if reference else None)


def explainability_job(store: Store, model: ModelConfig, run_id: str, *, default_version: str = "",
                       file: str = "<config>") -> ExplainabilityJob | None:
    """The model's explainability job, or None when its config has no ``explainability`` section."""
    cfg = explainability_config(model, file)
    if cfg is None:
        return None
    return ExplainabilityJob(store.explain_queries(), model, cfg, run_id, default_version=default_version,
                             event_schedule=EventSchedule(store, model), versions=store)


def _method(cfg: ExplainabilityConfig) -> str:
    return f"attribution-sums:{cfg.method or 'any-method'}"


def _two_sided_p(z: object) -> float | None:
    if not isinstance(z, int | float) or not np.isfinite(z):
        return None
    return 2.0 * (1.0 - NormalDist().cdf(abs(float(z))))

