"""One drift window of one model: store statistics -> drift metrics -> statuses -> metric documents.

The store is asked once per window (and segment) for the statistics of every
monitored field; everything after that is pure computation over counts.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from mlmon import __version__
from mlmon.config.model import ModelConfig
from mlmon.core.documents import SEVERITY, Family, MetricDocument, Status, Threshold
from mlmon.jobs.base import (DocumentContext, EventSchedule, Window, WindowOutput, by_version, for_version,
                             versions_by_window, window_chunks)
from mlmon.metrics import drift as dm
from mlmon.metrics import registry
from mlmon.metrics import thresholds as th
from mlmon.metrics.results import MetricSet
from mlmon.core.reference import PREDICTION_CATEGORICAL, PREDICTION_NUMERIC, ReferenceProfile
from mlmon.core.stats import CategoryStats, NumericStats, WindowStatistics
from mlmon.stores.protocols import Store, WindowBatchStatistics
from mlmon.core.queries import WindowBatch, WindowQuery

_FEATURE_PREFIXES = ("mlmon.features.numeric.", "mlmon.features.categorical.")
METHOD_FINE = "binned:reference-quantiles"
METHOD_COARSE = f"binned:{dm.COARSE_BINS}-reference-quantile-groups"


class DriftJobError(ValueError):
    """The configuration and the reference profile do not fit together."""


def display_name(field_name: str) -> str:
    """``mlmon.features.numeric.age`` -> ``age``; ``mlmon.prediction.score`` -> ``prediction.score``."""
    for prefix in _FEATURE_PREFIXES:
        if field_name.startswith(prefix):
            return field_name[len(prefix):]
    return field_name.removeprefix("mlmon.")


def monitored_fields(model: ModelConfig, reference: ReferenceProfile) -> tuple[list[str], list[str]]:
    """(numeric, categorical) fields to monitor: the configured features, or all of the reference's."""
    by_name = {display_name(f): f for f in reference.fields() if f.startswith(_FEATURE_PREFIXES)}
    if model.drift.features:
        missing = [f for f in model.drift.features if f not in by_name]
        if missing:
            raise DriftJobError(f"model {model.name}: features {missing} are not in reference profile "
                                f"{reference.id} (it has {sorted(by_name)})")
        chosen = [by_name[f] for f in model.drift.features]
    else:
        chosen = list(by_name.values())
    if model.drift.prediction:
        chosen += [f for f in (*PREDICTION_NUMERIC, *PREDICTION_CATEGORICAL) if f in reference.fields()]
    numeric = sorted(f for f in chosen if f in reference.numeric)
    categorical = sorted(f for f in chosen if f in reference.categorical)
    return numeric, categorical


@dataclass
class _Measure:
    """One metric value before its status is decided (needs the window's adjusted p-values)."""

    family: Family
    metric: str
    feature: str
    value: float | None
    n_current: int
    method: str
    p_index: int | None          # index of the field's test p-value in the window's list
    enough_data: bool
    rule: th.Rule
    reference_value: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DriftWindowJob:
    store: Store
    model: ModelConfig
    reference: ReferenceProfile
    run_id: str
    code_version: str = __version__
    _calibration_cache: dict[tuple[str, str, int], th.Rule] = field(default_factory=dict)
    #: share_pvalue is a pure function of these; windows of a batch repeat them often (no missing values).
    _share_pvalues: dict[tuple[int, int, float], float] = field(default_factory=dict)
    #: A rule's threshold at a reference value: the same (immutable) object for every document that asks.
    _thresholds: dict[tuple[th.Rule, float], Threshold] = field(default_factory=dict)

    def run(self, start: datetime, end: datetime) -> list[MetricDocument]:
        """Documents of the window for all traffic and each configured segment (not yet written)."""
        return self.run_batch([(start, end)])[0]

    def run_batch(self, windows: Sequence[Window]) -> list[list[MetricDocument]]:
        """Documents of each window (sorted, aligned): one store pass per segment for all of them."""
        batch = WindowBatch.of(windows)
        out: list[list[MetricDocument]] = [[] for _ in windows]
        segments = [None, *((name, v) for name, values in self.model.drift.segments.items() for v in values)]
        for segment in segments:
            for docs, part in zip(out, self.documents_windows(self.statistics(batch, segment), batch.windows,
                                                              segment)):
                docs += part
        return out

    def window(self, start: datetime, end: datetime, segment: tuple[str, str] | None) -> list[MetricDocument]:
        stats = self.statistics(WindowBatch(((start, end),)), segment)[0]
        return self.documents(stats, start, end, segment)

    def statistics(self, batch: WindowBatch, segment: tuple[str, str] | None) -> list[WindowStatistics]:
        """The store's statistics of each window: in one pass when it answers batches, else window by window."""
        numeric, categorical = monitored_fields(self.model, self.reference)
        query = WindowQuery(
            model=self.model.name, start=batch.start, end=batch.end, version=self.model.version, segment=segment,
            numeric={f: self.reference.numeric[f].edges for f in numeric},
            categorical={f: tuple(self.reference.categorical[f].counts) for f in categorical},
        )
        if isinstance(self.store, WindowBatchStatistics):
            return self.store.window_statistics_batch(query, batch)
        return [self.store.window_statistics(replace(query, start=s, end=e)) for s, e in batch.windows]

    # --- pure part: statistics -> documents --------------------------------------------------

    def documents(self, stats: WindowStatistics, start: datetime, end: datetime,
                  segment: tuple[str, str] | None) -> list[MetricDocument]:
        return self.documents_windows([stats], [(start, end)], segment)[0]

    def documents_windows(self, stats: Sequence[WindowStatistics], windows: Sequence[Window],
                          segment: tuple[str, str] | None) -> list[list[MetricDocument]]:
        """:meth:`documents` of each window; each field's drift metrics computed for all windows at once."""
        numeric = self._drift_results(stats, "numeric")
        categorical = self._drift_results(stats, "categorical")
        out = []
        for i, (window_stats, (start, end)) in enumerate(zip(stats, windows)):
            p_values: list[float] = []
            measures: list[_Measure] = []
            for f, cur in window_stats.numeric.items():
                measures += self._numeric(f, self.reference.numeric[f], cur, window_stats.rows, p_values,
                                          numeric[f][i])
            for f, cur_c in window_stats.categorical.items():
                measures += self._categorical(f, self.reference.categorical[f], cur_c, window_stats.rows, p_values,
                                              categorical[f][i])
            adjusted = th.adjust(p_values, self.model.drift.policy.correction)
            ctx = self._context(start, end, segment)
            docs = [self._document(m, p_values, adjusted, ctx) for m in measures]
            docs += self._summary(docs, window_stats.rows, ctx)
            out.append(docs)
        return out

    def _drift_results(self, stats: Sequence[WindowStatistics], kind: registry.Kind) -> dict[str, dict[int, MetricSet]]:
        """Field -> window index -> its drift metrics, from one call per field over the windows that have it."""
        by_field: dict[str, dict[int, Any]] = {}
        for i, window_stats in enumerate(stats):
            for f, cur in (window_stats.numeric if kind == "numeric" else window_stats.categorical).items():
                by_field.setdefault(f, {})[i] = cur
        out: dict[str, dict[int, MetricSet]] = {}
        for f, currents in by_field.items():
            if kind == "numeric":
                results = dm.numeric_drift_windows(self.reference.numeric[f], list(currents.values()),
                                                   discrete=f in self.reference.discrete, feature=display_name(f))
            else:
                results = dm.categorical_drift_windows(self.reference.categorical[f], list(currents.values()),
                                                       feature=display_name(f))
            out[f] = dict(zip(currents, results))
        return out

    def _share_pvalue(self, count: int, n: int, reference_share: float) -> float:
        key = (count, n, reference_share)
        if key not in self._share_pvalues:
            self._share_pvalues[key] = th.share_pvalue(count, n, reference_share)
        return self._share_pvalues[key]

    def _numeric(self, f: str, ref: NumericStats, cur: NumericStats, rows: int, p_values: list[float],
                 result: MetricSet) -> list[_Measure]:
        policy, name = self.model.drift.policy, display_name(f)
        out = self._test_measures(f, "numeric", result, cur.present, p_values,
                                  lambda metric: METHOD_COARSE if registry.binning(metric, "numeric") == registry.COARSE
                                  else METHOD_FINE)
        out.append(self._missing_share(name, ref, cur, rows, p_values))
        below, above = cur.outer_counts
        oor = below + above
        # Under no drift a new value falls outside the range of n reference values with probability 2/(n+1).
        op = _push(p_values, self._share_pvalue(oor, cur.present, 2.0 / (ref.present + 1)))
        out.append(_Measure("data_quality", "out_of_range_share", name, dm.out_of_range_share(cur), cur.present,
                            "count", op, cur.present >= policy.min_rows, policy.rule("out_of_range_share", name),
                            details={"below": below, "above": above, "reference_min": ref.minimum,
                                     "reference_max": ref.maximum, "current_min": cur.minimum,
                                     "current_max": cur.maximum}))
        return out

    def _categorical(self, f: str, ref: CategoryStats, cur: CategoryStats, rows: int,
                     p_values: list[float], result: MetricSet) -> list[_Measure]:
        policy, name = self.model.drift.policy, display_name(f)
        out = self._test_measures(f, "categorical", result, cur.present, p_values,
                                  lambda metric: "counts:reference-categories+other")
        out.append(self._missing_share(name, ref, cur, rows, p_values))
        share, unseen = dm.unseen_categories(ref, cur)
        ref_other = ref.other / ref.present if ref.present else 0.0
        up = _push(p_values, self._share_pvalue(round((share or 0.0) * cur.present), cur.present,
                                                max(ref_other, 1.0 / (ref.present + 1))))
        out.append(_Measure("data_quality", "unseen_share", name, share, cur.present, "counts", up,
                            cur.present >= policy.min_rows, policy.rule("unseen_share", name),
                            details={"unseen": ", ".join(unseen[:20])}))
        return out

    def _test_measures(self, f: str, kind: registry.Kind, result: MetricSet, present: int, p_values: list[float],
                       method: Callable[[str], str]) -> list[_Measure]:
        """One measure per drift statistic of a field's test; their shared p-value joins ``p_values``."""
        policy, name = self.model.drift.policy, display_name(f)
        family: Family = "drift" if f.startswith(_FEATURE_PREFIXES) else "prediction_drift"
        enough = present >= policy.min_rows
        # Every value of the field carries the field's test p-value: it joins the window's list once.
        p_index = _push(p_values, result.values[0].p_value if len(result) else None)
        calibrated = self._calibrated(f, kind, present) if policy.calibrate and enough else {}
        out = []
        for mv in result:
            metric = mv.metric
            rule = policy.rule(metric, name)
            if metric in calibrated and rule.source == "default":
                rule = calibrated[metric]
            out.append(_Measure(family, metric, name, mv.value, present, method(metric), p_index, enough, rule,
                                details={"test": mv.test, **mv.details}))
        return out

    def _missing_share(self, name: str, ref: NumericStats | CategoryStats, cur: NumericStats | CategoryStats,
                       rows: int, p_values: list[float]) -> _Measure:
        """Data quality: the share of missing values, tested against the reference's share."""
        policy = self.model.drift.policy
        ref_missing = dm.missing_share(ref) or 0.0
        mp = _push(p_values, self._share_pvalue(cur.missing, cur.n, ref_missing))
        return _Measure("data_quality", "missing_share", name, dm.missing_share(cur), cur.n, "count", mp,
                        rows >= policy.min_rows, policy.rule("missing_share", name), reference_value=ref_missing,
                        details={"reference_share": ref_missing})

    def _calibrated(self, f: str, kind: registry.Kind, n: int) -> dict[str, th.Rule]:
        """Calibrated rules of every drift metric of a field, for windows of about ``n`` values (cached)."""
        policy = self.model.drift.policy
        n_key = int(float(f"{n:.2g}"))  # windows of similar size share thresholds
        tests = len(self.reference.numeric) + len(self.reference.categorical)
        metrics = registry.drift_metrics(kind)
        names = [m.name for m in metrics]
        if all((f, m, n_key) in self._calibration_cache for m in names):
            return {m: self._calibration_cache[(f, m, n_key)] for m in names}
        # Seeded from what is calibrated, so re-running a window reproduces its thresholds.
        rng = np.random.default_rng(zlib.crc32(f"{self.reference.id}|{f}|{n_key}".encode()))
        # The resamples are drawn in the same order as before, then measured in one batch.
        if kind == "numeric":
            ref_n, discrete = self.reference.numeric[f], f in self.reference.discrete
            sims = [th.resample_numeric(ref_n, n_key, rng, discrete=discrete)
                    for _ in range(policy.calibration_samples)]
            results = dm.numeric_drift_windows(ref_n, sims, discrete=discrete)
        else:
            ref_c = self.reference.categorical[f]
            results = dm.categorical_drift_windows(
                ref_c, [th.resample_categories(ref_c, n_key, rng) for _ in range(policy.calibration_samples)])
        samples: list[Mapping[str, float]] = [_values(r) for r in results]
        out = {}
        for metric in metrics:
            key = (f, metric.name, n_key)
            if key not in self._calibration_cache:
                self._calibration_cache[key] = th.calibrate([s[metric.name] for s in samples], tests,
                                                            alpha=policy.alpha, signed=metric.signed)
            out[metric.name] = self._calibration_cache[key]
        return out

    def _document(self, m: _Measure, p_values: list[float], adjusted: list[float],
                  ctx: DocumentContext) -> MetricDocument:
        policy = self.model.drift.policy
        key = (m.rule, m.reference_value)
        threshold = self._thresholds.get(key)
        if threshold is None:
            threshold = self._thresholds[key] = m.rule.threshold(m.reference_value)
        p_adj = adjusted[m.p_index] if m.p_index is not None else None
        status, why = th.decide(m.rule.judged(m.value), threshold, gated=m.rule.gated, p_adjusted=p_adj,
                                alpha=policy.alpha, enough_data=m.enough_data)
        details = m.details  # the measure's own dict, made for this one document
        if m.rule.two_sided:
            details["two_sided"] = True  # the thresholds apply to |value|; the value keeps its sign
        if m.p_index is not None:
            details.update(p_value=p_values[m.p_index], p_adjusted=p_adj, correction=policy.correction)
        if why:
            details["status_reason"] = why
        has_threshold = threshold.warning is not None or threshold.alert is not None
        return ctx.document(
            m.family, m.metric, m.value, status, n_current=m.n_current, method=m.method, feature=m.feature,
            threshold=threshold if has_threshold else None, details=details)

    def _context(self, start: datetime, end: datetime, segment: tuple[str, str] | None) -> DocumentContext:
        return DocumentContext(self.model.name, self.model.version or self.reference.version, start, end,
                               self.run_id, self.code_version, reference_id=self.reference.id,
                               n_reference=self.reference.rows, segment=segment)

    def _summary(self, docs: list[MetricDocument], rows: int, ctx: DocumentContext) -> list[MetricDocument]:
        """Per window: rows seen, and the share of fields in alert with the worst status as the status."""
        drift_docs = [d for d in docs if d.family in ("drift", "prediction_drift", "data_quality")]
        worst: Status = max((d.status for d in drift_docs), key=lambda s: SEVERITY[s], default="ok")
        by_field: dict[str, int] = {}
        for d in drift_docs:
            by_field[d.feature] = max(by_field.get(d.feature, 0), SEVERITY[d.status])
        alerted = sorted(f for f, sev in by_field.items() if sev >= SEVERITY["alert"])
        enough = rows >= self.model.drift.policy.min_rows
        return [
            ctx.document("drift", "drifted_fields_share", len(alerted) / len(by_field) if by_field else None,
                         worst if enough else "insufficient_data", n_current=rows, method="worst-field-status",
                         details={"alerted_fields": ", ".join(alerted), "fields": len(by_field)}),
            ctx.document("volume", "rows", float(rows), "no_threshold", n_current=rows, method="count"),
        ]


def _values(result: MetricSet) -> dict[str, float]:
    """Metric -> value, NaN for a value that could not be computed (calibration skips those)."""
    return {mv.metric: math.nan if mv.value is None else mv.value for mv in result}


def _push(p_values: list[float], p: float | None) -> int | None:
    if p is None or not math.isfinite(p):
        return None
    p_values.append(p)
    return len(p_values) - 1


@dataclass
class DriftJob:
    """Drift on the event-time schedule: each complete window once, then its checkpoint moves.

    With no version configured, each version with traffic in the window gets its own documents,
    computed from its own events against its own reference profile - or, when it has none, against
    ``reference`` (the newest), which the documents' ``details.reference_note`` says.
    """

    store: Store
    model: ModelConfig
    #: The configured profile (``reference`` id or ``version``), else the model's newest.
    reference: ReferenceProfile
    run_id: str
    code_version: str = __version__
    _by_version: dict[str, tuple[ReferenceProfile, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "drift"

    @property
    def schedule(self) -> EventSchedule:
        return EventSchedule(self.store, self.model)

    def reference_for(self, version: str | None) -> tuple[ReferenceProfile, str]:
        """The profile a version's traffic is compared with, and a note when it is another version's."""
        if version is None or self.model.version is not None or self.model.reference is not None:
            return self.reference, ""
        if version not in self._by_version:
            own = self.store.get_reference(self.model.name, version)
            note = "" if own is not None else (
                f"no reference profile for version {version}; compared with version {self.reference.version}'s "
                f"({self.reference.id})")
            self._by_version[version] = (own or self.reference, note)
        return self._by_version[version]

    def run_windows(self, windows: Sequence[Window], at: datetime) -> Iterator[WindowOutput]:
        checkpoint = self.schedule.checkpoint
        for chunk in window_chunks(windows):
            # No version configured and no events: one set of zero-count documents under the reference's version.
            versions = versions_by_window(self.store, self.model, chunk)
            parts: dict[tuple[Window, str | None], list[MetricDocument]] = {}
            for version, mine in by_version(versions).items():
                reference, note = self.reference_for(version)
                # One window job per batch and version: its calibration cache is seeded per field and size,
                # so sharing it across windows changes no threshold.
                window_job = DriftWindowJob(self.store, for_version(self.model, version), reference, self.run_id,
                                            self.code_version)
                for window, part in zip(mine, window_job.run_batch(mine)):
                    parts[(window, version)] = [replace(d, details={**d.details, "reference_note": note})
                                                for d in part] if note else part
            for start, end in chunk:
                docs = [d for v in versions[(start, end)] for d in parts[((start, end), v)]]
                yield WindowOutput(start, end, docs, ((checkpoint, end),))
