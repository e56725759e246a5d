"""Performance with delayed ground truth: label join -> realised and estimated metrics -> metric documents.

One round, per model with a ``performance`` section:

1. Windows are the model's aligned windows (as for drift) whose end lies
   within the look-back. Each is recomputed every round until it is
   ``final``: labels keep arriving, the documents keep their ids
   (``mlmon.core.documents.metric_id``), so the latest truth overwrites the last
   one and nothing is duplicated. A recomputation is logged.
2. The store joins the latest feedback to the window's predictions
   (``LabelledStore.labelled_window``) and returns sufficient statistics.
3. Pure functions turn them into metrics: realised (``performance``),
   label coverage / delay / duplicates (``label_coverage``) and, with a
   labelled reference, CBPE estimates (``estimated_performance``) whose
   details carry the estimation error once the window is final (before, the
   realised value covers only the rows labelled so far, the estimate all).
4. ``maturity`` is ``provisional`` until coverage reaches the configured
   share or the window is older than the maturity age; then ``final``.
   A window final by coverage is still recomputed while younger than the
   maturity age; windows older than it, at the front of the look-back,
   move the checkpoint on, so later rounds skip them.

The labelled reference (CBPE calibration, reference metrics for relative
thresholds, per-window metrics for calibrated ones) is built from the store
over ``performance.reference`` and kept as a ``PerformanceReference``
document in the store (``put_performance_reference``; the drift profile has
no slot for labels) with its label coverage and build time. Like a window,
it is rebuilt every round until it is settled (coverage reached the maturity
coverage, or the period was older than the maturity age when built); every
document records its coverage (``details.reference_coverage``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np

from mlmon import __version__
from mlmon.config.model import ModelConfig
from mlmon.core.documents import Family, Maturity, MetricDocument, Status, Threshold, iso
from mlmon.metrics.cbpe import IsotonicCalibration, estimate_binary_of, estimate_multiclass, estimation_error
from mlmon.metrics.performance import (MetricSet, MetricValue, classification_metrics, classification_metrics_of,
                                       confusion_matrix, regression_metrics)
from mlmon.core.perf_stats import ClassificationStats, RegressionSums, ScoreBins, uniform_edges
from mlmon.config.performance import MAX_SEGMENT_VALUES, PER_CLASS, MetricRule, PerformanceConfig
from mlmon.stores.protocols import Store
from mlmon.core.labels import LabelledWindow, LabelQuery, OrphanFeedback, SegmentedWindows, counts_only
from mlmon.core.queries import WindowBatch
from mlmon.stores.protocols import BatchLabelledStore, LabelledStore, labelled_store
from mlmon.core.windows import floor_time
from mlmon.jobs.base import (DocumentContext, InputsCache, JoinCache, LabelSchedule, Window, WindowOutput, WindowPlan,
                             aligned_windows, by_version, digest, for_version, labelled_windows, plan_windows,
                             reuse_or_compute, segmented_windows, versions_by_window, window_chunks)

log = logging.getLogger("mlmon.performance")
METHOD_JOIN = "label-join:latest-feedback"
METHOD_CBPE = "cbpe:isotonic-reference-calibration"
#: Calibrated thresholds need at least this many labelled reference windows.
MIN_REFERENCE_WINDOWS = 5
#: Realised metrics computed from score bins (their per-class values carry ``details["error_bound"]``).


class PerformanceJobError(ValueError):
    """The configuration and the stored data do not fit together (e.g. an empty reference period)."""



def metric_key(metric: str, class_label: str = "") -> str:
    return f"{metric}|{class_label}"


# --- the labelled reference ------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceReference:
    """What the labelled reference period says: calibration for CBPE and the metrics thresholds compare to."""

    key: str
    model: str
    version: str
    task: str
    start: datetime
    end: datetime
    labelled_rows: int
    #: Class -> isotonic map raw score -> P(actual = class) (binary: the positive class only).
    calibrations: Mapping[str, IsotonicCalibration] = field(default_factory=dict)
    #: metric_key -> value over the whole reference period.
    metrics: Mapping[str, float] = field(default_factory=dict)
    #: metric_key -> (mean, sd, windows) over the reference's windows, for calibrated thresholds.
    window_metrics: Mapping[str, tuple[float, float, int]] = field(default_factory=dict)
    #: Regression: mean actual (the shift of the sums) and RMSE.
    actual_mean: float = 0.0
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    #: Labelled share of the reference period's predictions when it was built (None: unknown, older documents).
    coverage: float | None = None
    #: The round time (``at``) it was built at; None on older documents (``created_at`` stands in).
    built_at: datetime | None = None

    def settled(self, cfg: PerformanceConfig) -> bool:
        """Built once its labels were in: coverage reached the maturity coverage, or the reference period
        was older than the maturity age. Until then every round rebuilds it, as a window is recomputed."""
        if self.coverage is not None and self.coverage >= cfg.maturity_coverage:
            return True
        return (self.built_at or self.created_at) - self.end >= cfg.maturity_age

    def to_document(self) -> dict[str, Any]:
        return {"@timestamp": iso(self.created_at),
                "performance_reference": {
                    "key": self.key, "model": self.model, "version": self.version, "task": self.task,
                    "start": iso(self.start), "end": iso(self.end), "labelled_rows": self.labelled_rows,
                    "calibrations": {c: cal.to_dict() for c, cal in self.calibrations.items()},
                    "metrics": dict(self.metrics),
                    "window_metrics": {k: list(v) for k, v in self.window_metrics.items()},
                    "actual_mean": self.actual_mean, "created_at": iso(self.created_at),
                    "coverage": self.coverage, "built_at": iso(self.built_at) if self.built_at else None}}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> PerformanceReference:
        try:
            body = doc["performance_reference"]
            return cls(
                key=str(body["key"]), model=str(body["model"]), version=str(body["version"]), task=str(body["task"]),
                start=_parse_time(body["start"]), end=_parse_time(body["end"]),
                labelled_rows=int(body["labelled_rows"]),
                calibrations={c: IsotonicCalibration.from_dict(v) for c, v in body["calibrations"].items()},
                metrics={k: float(v) for k, v in body["metrics"].items()},
                window_metrics={k: (float(v[0]), float(v[1]), int(v[2])) for k, v in body["window_metrics"].items()},
                actual_mean=float(body["actual_mean"]), created_at=_parse_time(body["created_at"]),
                coverage=None if body.get("coverage") is None else float(body["coverage"]),
                built_at=_parse_time(body["built_at"]) if body.get("built_at") else None)
        except (KeyError, TypeError, IndexError) as err:
            raise PerformanceJobError(f"not a performance reference document (missing {err})") from err


def reference_key(model: ModelConfig, cfg: PerformanceConfig) -> str:
    assert cfg.reference is not None
    start, end = cfg.reference
    return (f"{model.name}:{model.version or '*'}:{cfg.task}:{iso(start)}:{iso(end)}:"
            f"{model.window.total_seconds():g}s:{cfg.score_bins}")


def fit_calibration(bins: ScoreBins) -> IsotonicCalibration:
    """Isotonic calibration from a class's labelled score bins (no rows needed).

    Each non-empty bin is two weighted points at its mean score: its positives
    (y = 1) and its negatives (y = 0); sklearn pools equal scores by weight, so
    this is the row-level fit up to the bin width.
    """
    pos, neg, ssum = bins.arrays
    count = pos + neg
    filled = count > 0
    mean = ssum[filled] / count[filled]
    scores = np.concatenate([mean, mean])
    actual = np.concatenate([np.ones(mean.size, bool), np.zeros(mean.size, bool)])
    weights = np.concatenate([pos[filled], neg[filled]])
    keep = weights > 0
    return IsotonicCalibration.fit(scores[keep], actual[keep], sample_weight=weights[keep])


def _values(metrics: MetricSet) -> dict[str, float]:
    return {metric_key(v.metric, v.class_label): v.value for v in metrics
            if v.value is not None and not v.group and not v.feature}


def build_reference(labels: LabelledStore, model: ModelConfig, cfg: PerformanceConfig,
                    at: datetime) -> PerformanceReference:
    """Join the reference period window by window: summed statistics for its metrics and calibration,
    per-window metrics for calibrated thresholds, and the period's label coverage (built at ``at``)."""
    assert cfg.reference is not None
    start, end = cfg.reference
    per_window: list[dict[str, float]] = []
    total: ClassificationStats | RegressionSums | None = None
    labelled_rows = 0
    predictions = labelled = 0.0
    parts: list[LabelledWindow | None] = []
    for chunk in window_chunks(list(aligned_windows(start, end, model.window))):
        batch = WindowBatch.of(chunk)
        query = _query(model, cfg, batch.start, batch.end, shift=0.0, error_edges=None, cbpe=False)
        parts += [found.get("") for found in labelled_windows(labels, query, batch)]
    for part in parts:
        if part is not None:
            predictions += part.n_predictions
            labelled += part.n_labelled
        if part is None or part.labelled_rows == 0:
            continue
        labelled_rows += part.labelled_rows
        stats = part.classification if cfg.task == "classification" else part.regression
        assert stats is not None
        total = stats if total is None else total + stats  # type: ignore[operator]
        if part.labelled_rows >= cfg.min_labelled:
            per_window.append(_values(_realised(cfg, stats)))
    if total is None:
        raise PerformanceJobError(f"model {model.name}: no labelled predictions in the reference period "
                                  f"{iso(start)} - {iso(end)}")
    metrics = _values(_realised(cfg, total))
    window_metrics: dict[str, tuple[float, float, int]] = {}
    for key in {k for w in per_window for k in w}:
        vals = np.asarray([w[key] for w in per_window if key in w])
        if vals.size >= 2:
            window_metrics[key] = (float(vals.mean()), float(vals.std(ddof=1)), int(vals.size))
    calibrations: dict[str, IsotonicCalibration] = {}
    actual_mean = 0.0
    if isinstance(total, ClassificationStats) and cfg.cbpe:
        for cls, bins in total.scores.items():
            if bins.n_positive > 0 and bins.n_negative > 0:
                calibrations[cls] = fit_calibration(bins)
            else:
                log.warning("model %s: class %r is %s in the reference: no CBPE calibration for it", model.name,
                            cls, "never the actual class" if bins.n_positive == 0 else "always the actual class")
    if isinstance(total, RegressionSums) and total.n > 0:
        actual_mean = total.shift + total.sum_actual / total.n
    return PerformanceReference(key=reference_key(model, cfg), model=model.name, version=model.version or "*",
                                task=cfg.task, start=start, end=end, labelled_rows=labelled_rows,
                                calibrations=calibrations, metrics=metrics, window_metrics=window_metrics,
                                actual_mean=actual_mean, coverage=labelled / predictions if predictions > 0 else None,
                                built_at=at)


def _realised(cfg: PerformanceConfig, stats: ClassificationStats | RegressionSums) -> MetricSet:
    if isinstance(stats, ClassificationStats):
        return classification_metrics(stats, calibration_bins=cfg.calibration_bins)
    return regression_metrics(stats)


def _query(model: ModelConfig, cfg: PerformanceConfig, start: datetime, end: datetime, *, shift: float,
           error_edges: tuple[float, ...] | None, cbpe: bool, segment: str | None = None,
           segment_values: tuple[str, ...] | None = None) -> LabelQuery:
    return LabelQuery(model=model.name, start=start, end=end, task=cfg.task, version=model.version,
                      positive_label=cfg.positive_label, classes=cfg.classes,
                      score_edges=uniform_edges(cfg.score_bins), error_edges=error_edges, shift=shift, cbpe=cbpe,
                      segment=segment, segment_values=segment_values)


# --- thresholds ------------------------------------------------------------------------------------


def default_class(cfg: PerformanceConfig, metric: str) -> str:
    if metric not in PER_CLASS:
        return ""
    return "macro" if cfg.classes else cfg.positive_label


def threshold_for(rule: MetricRule, reference: PerformanceReference | None, key: str) -> tuple[Threshold | None, str]:
    """The Threshold of a rule for one metric key, or None with the reason."""
    if rule.mode == "absolute":
        return rule.rule.threshold(), ""
    if reference is None:
        return None, "no performance reference"
    if rule.mode == "relative":
        base = reference.metrics.get(key)
        if base is None:
            return None, f"the reference has no value of {key}"
        return rule.rule.threshold(base), ""
    stats = reference.window_metrics.get(key)
    if stats is None or stats[2] < MIN_REFERENCE_WINDOWS:
        return None, f"fewer than {MIN_REFERENCE_WINDOWS} labelled reference windows with {key}"
    mean, sd, _ = stats
    return rule.rule.calibrated(mean, sd), ""


# --- the job ----------------------------------------------------------------------------------------


@dataclass
class PerformanceJob:
    store: Store
    labels: LabelledStore
    model: ModelConfig
    cfg: PerformanceConfig
    run_id: str
    code_version: str = __version__
    _reference: PerformanceReference | None = None
    #: The round time ``_reference`` was loaded (or rebuilt) for.
    _reference_at: datetime | None = None
    #: Skip windows whose inputs did not change since their stored documents (rounds; a backfill recomputes).
    reuse_unchanged: bool = False
    #: Window inputs shared with the other jobs of the same label round (set by the runner).
    inputs_cache: InputsCache | None = None
    #: Where to leave this round's label joins for the fairness job (set by the runner when there is one).
    shared_joins: JoinCache | None = None

    @property
    def name(self) -> str:
        return "performance"

    @property
    def schedule(self) -> LabelSchedule:
        return LabelSchedule(self.store, self.model, self.cfg.lookback)

    # --- reference ----------------------------------------------------------------------------

    def reference(self, at: datetime) -> PerformanceReference | None:
        """The labelled reference at round time ``at``: loaded from the store, built there on first use,
        and rebuilt at a later round while it is not settled (its labels were still arriving)."""
        if self.cfg.reference is None or self._reference_at == at:
            return self._reference
        key = reference_key(self.model, self.cfg)
        doc = self.labels.get_performance_reference(key)
        stored = PerformanceReference.from_document(doc) if doc is not None else None
        if stored is None or (not stored.settled(self.cfg) and at > (stored.built_at or stored.created_at)):
            built = build_reference(self.labels, self.model, self.cfg, at)
            self.labels.put_performance_reference(key, built.to_document())
            log.info("performance reference %s", "built" if stored is None else "rebuilt", extra={
                "model": self.model.name, "key": key, "labelled_rows": built.labelled_rows,
                "coverage": built.coverage, "previous_coverage": stored.coverage if stored else None,
                "settled": built.settled(self.cfg), "calibrated_classes": sorted(built.calibrations)})
            stored = built
        self._reference, self._reference_at = stored, at
        return stored

    # --- scheduling ---------------------------------------------------------------------------

    def run_windows(self, windows: Sequence[Window], at: datetime) -> Iterator[WindowOutput]:
        """The given aligned windows, maturity judged at ``at`` (a round, or a backfill); nothing is written.

        Documents keep their ids, so re-running overwrites. Checkpoints only move forward: the final
        checkpoint advances over windows that are settled and contiguous with what is already settled -
        the current final checkpoint or, before any, the start of the look-back - so a backfill of old
        windows never moves it back, and one that leaves a gap or a provisional window before the
        look-back never lets the rounds skip it. A window settles when it is older than the maturity
        age (or empty) and the labelled reference is settled too: a window final by coverage is still
        recomputed while its late labels arrive, so the rounds end where a backfill at the same time
        would (labels arriving after the maturity age are a backfill's only).
        """
        reference = self.reference(at)
        reference_settled = reference is None or reference.settled(self.cfg)
        schedule = self.schedule
        computed_before = self.store.get_checkpoint(schedule.computed_checkpoint)
        final_front = self.store.get_checkpoint(schedule.final_checkpoint)
        lookback_start = floor_time(at - self.cfg.lookback, self.model.window)
        settled = lookback_start if final_front is None else max(final_front, lookback_start)
        contiguous = True
        key = schedule.computed_checkpoint
        settling = self._settling(windows, at, settled) if reference_settled else frozenset()
        for (start, end), result, plan in self._planned(windows, at, reference, settling):
            docs = result[0] if result else []
            recomputed = computed_before is not None and end <= computed_before and not plan.unchanged
            coverage = next((d for d in docs if d.metric == "label_coverage" and not d.segment_field), None)
            if recomputed:
                log.info("performance window recomputed with late labels", extra={
                    "model": self.model.name, "start": iso(start), "end": iso(end), "maturity": result[1] if result else None,
                    "coverage": coverage.value if coverage else None, "documents": len(docs)})
            empty = plan.predictions == 0 if plan.unchanged else coverage is not None and coverage.n_current == 0
            # Windows without predictions do not hold the checkpoint back: predictions shipped later than
            # the model's `lateness` into an already passed window are not waited for.
            settles = (at - end >= self.cfg.maturity_age or empty) and reference_settled
            moves: list[tuple[str, datetime]] = []
            if settles and contiguous and start <= settled:
                if end > settled:  # settled >= the stored checkpoint: this only ever moves it forward
                    settled = end
                    moves.append((schedule.final_checkpoint, end))
            else:
                contiguous = False
            if computed_before is None or end > computed_before:
                moves.append((schedule.computed_checkpoint, end))
            yield WindowOutput(start, end, docs, tuple(moves), recomputed=recomputed, final=settles,
                               fingerprint=(key, plan.fingerprint) if plan.fingerprint else None,
                               unchanged=plan.unchanged)

    def _settling(self, windows: Sequence[Window], at: datetime, settled: datetime) -> frozenset[Window]:
        """The windows (sorted) certain to settle in this pass, the labelled reference being settled: those
        older than the maturity age, contiguous from ``settled`` (what :meth:`run_windows` walks, without the
        empty windows it learns about only from their joins)."""
        found = []
        for start, end in windows:
            if at - end < self.cfg.maturity_age or start > settled:
                break
            found.append((start, end))
            settled = max(settled, end)
        return frozenset(found)

    def _planned(self, windows: Sequence[Window], at: datetime, reference: PerformanceReference | None,
                 settling: frozenset[Window] = frozenset()
                 ) -> Iterator[tuple[Window, tuple[list[MetricDocument], Maturity] | None, WindowPlan]]:
        """Each window with its documents and maturity (None when unchanged) and its plan, a batch at a time.

        A window's documents depend on its label join, the config, the labelled reference and whether it is
        older than the maturity age at ``at`` (coverage is the join's): that is its fingerprint. A window of
        ``settling`` needs none (see ``plan_windows``).
        """
        base = digest("performance", self.model, self.cfg, self.code_version, _reference_digest(reference))
        for chunk in window_chunks(windows):
            salts = [digest(base, at - end >= self.cfg.maturity_age) for _, end in chunk]
            plans = plan_windows(self.labels, self.schedule.computed_checkpoint, self.model, WindowBatch.of(chunk),
                                 salts, self.reuse_unchanged, self.inputs_cache, settling)
            counted = {w: p.orphans for w, p in zip(chunk, plans) if p.orphans is not None}
            results = reuse_or_compute(plans, chunk, lambda todo: self.windows(todo, at, counted))
            yield from zip(chunk, results, plans)

    # --- windows -------------------------------------------------------------------------------

    def window(self, start: datetime, end: datetime, at: datetime) -> tuple[list[MetricDocument], Maturity]:
        """Documents of one window (all traffic and configured segments) and its maturity."""
        return self.windows([(start, end)], at)[0]

    def windows(self, windows: Sequence[Window], at: datetime,
                orphans: Mapping[Window, OrphanFeedback] | None = None
                ) -> list[tuple[list[MetricDocument], Maturity]]:
        """Documents and maturity of each window (sorted, aligned), from one label join per segment for all.
        ``orphans``: windows' orphan feedback the store already counted with their inputs (traffic of several
        versions is split by version, and each part counts its own)."""
        if self.model.version is None:
            versions = versions_by_window(self.store, self.model, windows)
            if any(found != [None] for found in versions.values()):
                return self._per_version(versions, at)
        return self._windows(WindowBatch.of(windows), at, orphans or {})

    def _windows(self, batch: WindowBatch, at: datetime, counted: Mapping[Window, OrphanFeedback] | None = None
                 ) -> list[tuple[list[MetricDocument], Maturity]]:
        reference = self.reference(at)
        shift = reference.actual_mean if reference else 0.0
        eh = self.cfg.error_histogram
        error_edges = uniform_edges(eh.bins, eh.low, eh.high) if eh else None
        cbpe = self.cfg.cbpe and reference is not None and bool(reference.calibrations)

        query = _query(self.model, self.cfg, batch.start, batch.end, shift=shift, error_edges=error_edges, cbpe=cbpe)
        by_segment = segmented_windows(self.labels, query, batch, self.cfg.segments)
        overall = by_segment[None]
        self._share(batch, by_segment)
        orphans = self._orphans(batch, counted or {})
        # Each window's parts (all traffic, then each segment value) with their documents' context; the metrics
        # of all parts of the batch are computed together.
        parts: list[tuple[DocumentContext, Maturity, list[tuple[LabelledWindow, DocumentContext]]]] = []
        for i, (start, end) in enumerate(batch.windows):
            window = overall[i].get("") or next(iter(overall[i].values()), None)
            maturity = self.maturity(window, end, at)
            ctx = self._context(start, end, maturity, reference)
            mine = [(window, ctx)] if window else []
            for segment, values in self.cfg.segments.items():
                chosen = sorted(by_segment[segment][i].items(), key=lambda kv: (-kv[1].rows, kv[0]))
                if values is None and len(chosen) > MAX_SEGMENT_VALUES:
                    log.warning("model %s: segment %s has %d values in [%s, %s); reporting the %d most frequent",
                                self.model.name, segment, len(chosen), iso(start), iso(end), MAX_SEGMENT_VALUES)
                    chosen = chosen[:MAX_SEGMENT_VALUES]
                mine += [(part, replace(ctx, segment=(segment, value))) for value, part in chosen]
            parts.append((ctx, maturity, mine))
        metrics = iter(self._metrics([part for _, _, mine in parts for part, _ in mine], reference))
        out = []
        for i, (ctx, maturity, mine) in enumerate(parts):
            docs = []
            for part, part_ctx in mine:
                docs += self.documents(part, part_ctx, reference, *next(metrics))
            docs.append(self._doc(replace(ctx, maturity=None), "label_coverage", "orphan_feedback",
                                  float(orphans[i].orphans), "no_threshold", None, orphans[i].feedback, reference,
                                  method="anti-join:feedback-by-time",
                                  details={"feedback": orphans[i].feedback,
                                           "example_prediction_ids": list(orphans[i].example_ids),
                                           "note": "feedback stamped in this window whose prediction is not stored "
                                                   "yet; it joins when the prediction arrives"}))
            out.append((docs, maturity))
        return out

    def _metrics(self, windows: Sequence[LabelledWindow], reference: PerformanceReference | None
                 ) -> list[tuple[MetricSet, MetricSet | None]]:
        """Realised and (None: not estimated) CBPE-estimated metrics of each of ``windows``, each kind computed
        for all of them at once."""
        realised = [MetricSet(())] * len(windows)
        scored = [(i, w.classification) for i, w in enumerate(windows) if w.rows > 0 and w.classification is not None]
        for (i, _), found in zip(scored, classification_metrics_of([st for _, st in scored],
                                                                   calibration_bins=self.cfg.calibration_bins)):
            realised[i] = found
        for i, w in enumerate(windows):
            if w.rows > 0 and w.classification is None:
                realised[i] = self._realised(w)
        estimated: list[MetricSet | None] = [None] * len(windows)
        if reference is not None and reference.calibrations:
            if self.cfg.classes:
                for i, w in enumerate(windows):
                    estimated[i] = self._estimate_multiclass(w, reference) if w.rows > 0 else None
            else:
                pos = self.cfg.positive_label
                calibration = reference.calibrations.get(pos)
                binary = [i for i, w in enumerate(windows) if w.rows > 0 and pos in w.cbpe]
                if calibration is not None:
                    for i, found in zip(binary, estimate_binary_of([windows[i].cbpe[pos] for i in binary],
                                                                   calibration, pos)):
                        estimated[i] = found
        return list(zip(realised, estimated))

    def _estimate_multiclass(self, window: LabelledWindow, reference: PerformanceReference) -> MetricSet | None:
        usable = {c: s for c, s in window.cbpe.items() if c in reference.calibrations}
        if len(usable) < 3 or len(usable) != len(window.cbpe):
            return None  # a class without calibration: the one-vs-rest sum would be biased
        return estimate_multiclass(usable, {c: reference.calibrations[c] for c in usable})

    def _share(self, batch: WindowBatch, joined: Mapping[str | None, list[SegmentedWindows]]) -> None:
        """Keep the group counts of this batch's joins for the round's fairness job (``shared_joins``)."""
        if self.shared_joins is None or self.cfg.task != "classification":
            return
        for segment, windows in joined.items():
            values = None if segment is None else self.cfg.segments[segment]
            self.shared_joins[(self.model.name, self.model.version, batch, segment, values)] = [
                {value: counts_only(part) for value, part in found.items()} for found in windows]

    def _orphans(self, batch: WindowBatch, counted: Mapping[Window, OrphanFeedback]) -> list[OrphanFeedback]:
        """Each window's orphan feedback: as ``counted`` with its inputs, else asked (the rest in one batch)."""
        known = [counted.get(w) for w in batch.windows]
        rest = [w for w, c in zip(batch.windows, known) if c is None]
        if not rest:
            asked: Iterator[OrphanFeedback] = iter(())
        elif isinstance(self.labels, BatchLabelledStore):
            asked = iter(self.labels.orphan_feedback_batch(self.model.name, WindowBatch.of(rest), self.model.version))
        else:
            asked = iter([self.labels.orphan_feedback(self.model.name, s, e, self.model.version) for s, e in rest])
        return [c if c is not None else next(asked) for c in known]

    def _per_version(self, versions: Mapping[Window, Sequence[str | None]],
                     at: datetime) -> list[tuple[list[MetricDocument], Maturity]]:
        """No version configured: each version's traffic gets its own documents, labelled with its name.

        They share the one labelled reference (loaded before, so the views do not build their own); a
        window is final once every version's part is. A window without events is computed as configured.
        """
        self.reference(at)
        parts: dict[tuple[Window, str | None], tuple[list[MetricDocument], Maturity]] = {}
        for version, mine in by_version(versions).items():
            view = self if version is None else replace(self, model=for_version(self.model, version))
            for window, result in zip(mine, view._windows(WindowBatch.of(mine), at)):
                parts[(window, version)] = result
        out: list[tuple[list[MetricDocument], Maturity]] = []
        for window, found in sorted(versions.items()):
            results = [parts[(window, v)] for v in found]
            maturity: Maturity = "final" if all(m == "final" for _, m in results) else "provisional"
            out.append(([d for docs, _ in results for d in docs], maturity))
        return out

    def maturity(self, window: LabelledWindow | None, end: datetime, at: datetime) -> Maturity:
        if at - end >= self.cfg.maturity_age:
            return "final"
        coverage = window.coverage if window else None
        return "final" if coverage is not None and coverage >= self.cfg.maturity_coverage else "provisional"

    def documents(self, window: LabelledWindow, ctx: DocumentContext, reference: PerformanceReference | None,
                  realised: MetricSet | None = None, estimated: MetricSet | None = None) -> list[MetricDocument]:
        """The documents of one window's part (all traffic, or the segment of ``ctx``), with ``ctx``'s window,
        maturity and time; each notes the labelled reference's coverage. ``realised`` and ``estimated``: its
        metrics when computed with other parts' (:meth:`_metrics`), else computed here."""
        if realised is None:
            realised, estimated = self._metrics([window], reference)[0]
        assert ctx.maturity is not None, "a performance window's documents carry its maturity"
        enough = window.labelled_rows >= self.cfg.min_labelled
        delay = window.delay_quantiles()
        maturity_reason = self._maturity_reason(window, ctx.end, ctx.maturity)
        cov_status, cov_threshold, cov_why = self._status("label_coverage", "", window.coverage, window.rows > 0,
                                                          reference)
        docs = [
            self._doc(ctx, "label_coverage", "label_coverage", window.coverage, cov_status, cov_threshold,
                      window.rows, reference, method=METHOD_JOIN,
                      details={"labelled": window.n_labelled, "predictions": window.n_predictions,
                               "labelled_rows": window.labelled_rows, "duplicate_feedback": window.duplicate_feedback,
                               "maturity_reason": maturity_reason, "status_reason": cov_why}),
            self._doc(ctx, "label_coverage", "label_delay_seconds", delay["p50"], "no_threshold", None,
                      window.labelled_rows, reference, method="histogram:geometric-delay-bins",
                      details={**{f"{k}_seconds": v for k, v in delay.items()},
                               "feedback_before_prediction": window.delay.underflow,
                               "beyond_last_bin": window.delay.overflow}),
        ]
        if window.rows == 0:
            return docs  # no traffic: coverage and delay say so; performance documents would be empty noise
        for mv in realised:
            if mv.metric == "label_coverage":
                continue
            status, threshold, details = self._judged(mv, enough, reference)
            docs.append(self._doc(ctx, "performance", mv.metric, mv.value, status, threshold,
                                  window.labelled_rows, reference, class_label=mv.class_label, method=METHOD_JOIN,
                                  details=details))
        if window.classification is not None:
            docs += self._confusion_rows(window, ctx, enough, reference)
        docs += self._estimated(window, estimated, realised if enough else None, ctx, reference)
        return docs

    def _confusion_rows(self, window: LabelledWindow, ctx: DocumentContext, enough: bool,
                        reference: PerformanceReference | None) -> list[MetricDocument]:
        """The confusion matrix as one document per actual class (sklearn's row): value = the class's count,
        ``details.counts`` = its predictions per class of ``details.predicted_classes``.

        One document per row keeps the id scheme (model, metric, class, segment, window) and fits a
        flattened ``details`` field, which would flatten a nested list of lists into one list.
        """
        assert window.classification is not None
        confusion = window.classification.confusion
        if confusion.total <= 0:
            return []
        # Declared classes first so dashboards get stable axes; classes outside the declaration still show.
        matrix = confusion_matrix(confusion, tuple(sorted(set(self.cfg.classes) | set(confusion.classes))))
        status: Status = "no_threshold" if enough else "insufficient_data"
        docs = []
        for actual, row in zip(matrix.classes, matrix.counts):
            total = float(sum(row))
            docs.append(self._doc(
                ctx, "performance", "confusion_matrix", total, status, None, window.labelled_rows, reference,
                class_label=actual, method=METHOD_JOIN,
                details={"predicted_classes": list(matrix.classes), "counts": list(row),
                         "shares": [c / total if total else None for c in row],
                         "note": f"row of actual class {actual!r}: labelled predictions per predicted class"}))
        return docs

    def _realised(self, window: LabelledWindow) -> MetricSet:
        stats = window.classification if self.cfg.task == "classification" else window.regression
        if stats is None:
            return MetricSet(())
        return _realised(self.cfg, stats)

    def _estimated(self, window: LabelledWindow, estimated: MetricSet | None, realised: MetricSet | None,
                   ctx: DocumentContext, reference: PerformanceReference | None) -> list[MetricDocument]:
        if estimated is None:
            return []
        # The estimate covers every row and its band the whole window; a provisional window's realised
        # value covers only the rows labelled so far (often not a random share), so the error is recorded
        # once the window is final, when the realised value is as complete as it will get.
        final = realised is not None and ctx.maturity == "final"
        errors = estimation_error(estimated, realised) if final and realised is not None else MetricSet(())
        complete = window.coverage is not None and window.coverage >= self.cfg.maturity_coverage
        enough = window.rows >= self.cfg.min_labelled
        docs = []
        for mv in estimated:
            status, threshold, details = self._judged(mv, enough, reference)
            try:
                err = errors.get(mv.metric, mv.class_label)
            except KeyError:
                if not final:
                    details["estimation_error_note"] = "recorded once the window is final"
            else:
                details.update(estimation_error=err.value, **err.details, realised_coverage=window.coverage)
                if not complete and details.pop("within_band", None) is not None:
                    details["estimation_error_note"] = (
                        f"final by age with coverage below {self.cfg.maturity_coverage:g}: the realised value "
                        "covers the labelled rows only, the band the whole window")
            docs.append(self._doc(ctx, "estimated_performance", mv.metric, mv.value, status, threshold,
                                  window.rows, reference, class_label=mv.class_label, method=METHOD_CBPE,
                                  details=details))
        return docs

    def _judged(self, mv: MetricValue, enough: bool,
                reference: PerformanceReference | None) -> tuple[Status, Threshold | None, dict[str, Any]]:
        """A metric value's status and threshold, and its details with the note and the reason."""
        status, threshold, why = self._status(mv.metric, mv.class_label, mv.value, enough, reference)
        details: dict[str, Any] = {**mv.details}
        if mv.note:
            details["note"] = mv.note
        if why:
            details["status_reason"] = why
        return status, threshold, details

    def _status(self, metric: str, class_label: str, value: float | None, enough: bool,
                reference: PerformanceReference | None) -> tuple[Status, Threshold | None, str]:
        rule = self._rule(metric, class_label)
        threshold, why = (None, "") if rule is None else threshold_for(rule, reference,
                                                                       metric_key(metric, class_label))
        if not enough:
            return "insufficient_data", threshold, f"fewer than {self.cfg.min_labelled} observations"
        if threshold is None or value is None:
            return "no_threshold", threshold, why
        return threshold.status(value), threshold, why

    def _rule(self, metric: str, class_label: str) -> MetricRule | None:
        for rule in self.cfg.thresholds:
            wanted = rule.class_label if rule.class_label is not None else default_class(self.cfg, rule.metric)
            if rule.metric == metric and wanted == class_label:
                return rule
        return None

    def _maturity_reason(self, window: LabelledWindow, end: datetime, maturity: Maturity) -> str:
        if maturity == "provisional":
            return f"coverage below {self.cfg.maturity_coverage:g} and window younger than {self.cfg.maturity_age}"
        cov = window.coverage
        if cov is not None and cov >= self.cfg.maturity_coverage:
            return f"coverage reached {self.cfg.maturity_coverage:g}"
        return f"maturity age {self.cfg.maturity_age} passed"

    def _context(self, start: datetime, end: datetime, maturity: Maturity,
                 reference: PerformanceReference | None) -> DocumentContext:
        """What a window's documents share (one ``computed_at`` for all of them)."""
        return DocumentContext(self.model.name, self.model.version or (reference.version if reference else "*"),
                               start, end, self.run_id, self.code_version,
                               reference_id=reference.key if reference else "",
                               n_reference=reference.labelled_rows if reference else None, maturity=maturity)

    def _doc(self, ctx: DocumentContext, family: Family, metric: str, value: float | None, status: Status,
             threshold: Threshold | None, n: int | None, reference: PerformanceReference | None, *,
             class_label: str = "", method: str = "", details: Mapping[str, Any] | None = None) -> MetricDocument:
        if reference is not None:
            details = {**(details or {}), "reference_coverage": reference.coverage}
        return ctx.document(family, metric, value, status, n_current=int(n or 0), method=method,
                            class_label=class_label, threshold=threshold, details=details)


def performance_job(store: Store, model: ModelConfig, run_id: str) -> PerformanceJob | None:
    """The performance job of ``model`` (None when it has no ``performance`` section)."""
    cfg = model.sections.get("performance")
    if cfg is None:
        return None
    if not isinstance(cfg, PerformanceConfig):
        raise PerformanceJobError(f"model {model.name}: the performance section was not validated "
                                  "(load the config with mlmon.config.model.load or parse)")
    return PerformanceJob(store, labelled_store(store), model, cfg, run_id)


def _reference_digest(reference: PerformanceReference | None) -> str:
    """What of the labelled reference the documents use (not when it was built)."""
    if reference is None:
        return ""
    body = {k: v for k, v in reference.to_document()["performance_reference"].items()
            if k not in ("created_at", "built_at")}
    return digest(sorted(body.items()))


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

