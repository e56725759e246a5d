"""From metric documents and job health to gauge samples: pure, no I/O, no Prometheus library.

A series is what a metric measures without its window (:class:`mlmon.core.alerts.SeriesKey`).
Per series the newest document is ``window="latest"``; for series whose documents have a
maturity (performance, estimated performance, label coverage), the newest ``final`` one is
``window="latest_final"`` as well. Every document's severity goes to one gauge,
``mlmon_metric_severity``, which every alert rule reads; its value goes to exactly one value
gauge (a family's own, else ``mlmon_metric_value``), so no document value is exported twice.

Cardinality is bounded by :class:`~mlmon.config.prometheus.ExporterSettings`:
per-segment-value series only when asked for, only versions seen recently, at most
``max_series`` series. What is left out is returned by reason, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlmon.core.alerts import SeriesKey
from mlmon.core.documents import SEVERITY
from mlmon.core.job_runs import JobHealth
from mlmon.config.prometheus import ExporterSettings

#: Labels of every per-series gauge, in exposition order.
SERIES_LABELS = ("model", "model_version", "family", "metric", "feature", "class", "segment", "window")
FRESHNESS_LABELS = ("model", "model_version", "family", "window")
#: Job health is labelled by the job family, never ``job`` (Prometheus's own target label).
JOB_LABELS = ("model", "family")

SEVERITY_GAUGE = "mlmon_metric_severity"
FRESHNESS_GAUGE = "mlmon_metric_window_end_timestamp_seconds"
OTHER_VALUES_GAUGE = "mlmon_metric_value"
PERFORMANCE_GAUGE = "mlmon_performance_ratio"

#: name -> (help, label names) of every gauge a snapshot fills.
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    SEVERITY_GAUGE: ("Severity of the newest metric document of the series: 0 ok (or no threshold), "
                     "1 insufficient data, 2 warning, 3 alert", SERIES_LABELS),
    "mlmon_drift_statistic": ("Drift statistic of features (family drift) and predictions (prediction_drift)",
                              SERIES_LABELS),
    PERFORMANCE_GAUGE: ("Classification performance in [0, 1], realised (estimated=false) or estimated "
                        "without labels (estimated=true)", (*SERIES_LABELS, "estimated")),
    "mlmon_label_coverage_ratio": ("Share of the window's predictions that have a label", SERIES_LABELS),
    "mlmon_fairness_gap": ("Fairness gap across the groups of a sensitive attribute (segment = the attribute)",
                           SERIES_LABELS),
    "mlmon_attribution_drift": ("Drift of a feature's attributions against the attribution reference",
                                SERIES_LABELS),
    OTHER_VALUES_GAUGE: ("Every other metric document value (data quality, per-group fairness, regression "
                         "errors, counts ...), in the metric's own unit", SERIES_LABELS),
    FRESHNESS_GAUGE: ("End of the newest window exported, as Unix time", FRESHNESS_LABELS),
    "mlmon_job_last_success_timestamp_seconds": ("When the job last finished without error, as Unix time",
                                                 JOB_LABELS),
    "mlmon_job_last_run_timestamp_seconds": ("When the job last finished, with or without error, as Unix time",
                                             JOB_LABELS),
    "mlmon_job_last_run_ok": ("1 if the job's last run succeeded, else 0", JOB_LABELS),
    "mlmon_job_duration_seconds": ("Seconds the job's last run took", JOB_LABELS),
}

#: Classification metrics that are ratios in [0, 1]; other performance values (log loss,
#: regression errors, supports, confusion counts) are not ratios and go to mlmon_metric_value.
RATIO_METRICS = frozenset({"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                           "average_precision", "calibration_error", "expected_positive_rate",
                           "specificity", "true_positive_rate", "false_positive_rate"})

#: Reasons a series is left out (``mlmon_exporter_series_dropped_total{reason}``).
DROP_SEGMENT = "segment_not_exported"
DROP_OLD_VERSION = "old_version"
DROP_MAX_SERIES = "max_series"
DROP_REASONS = (DROP_SEGMENT, DROP_OLD_VERSION, DROP_MAX_SERIES)

Labels = tuple[str, ...]


@dataclass(frozen=True)
class Newest:
    """The newest document of a series, and its newest final one when the series has a maturity."""

    latest: Mapping[str, Any]
    latest_final: Mapping[str, Any] | None
    has_maturity: bool


@dataclass
class Snapshot:
    """Everything one refresh exports: samples per gauge (label values in GAUGES order), and the
    series left out, by reason (ids, so a series is counted once however many refreshes leave it out)."""

    samples: dict[str, dict[Labels, float]] = field(default_factory=lambda: {name: {} for name in GAUGES})
    dropped: dict[str, set[str]] = field(default_factory=lambda: {r: set() for r in DROP_REASONS})
    series: int = 0

    def add(self, gauge: str, labels: Labels, value: float) -> None:
        assert len(labels) == len(GAUGES[gauge][1]), (gauge, labels)
        self.samples[gauge][labels] = value


def series_key(doc: Mapping[str, Any]) -> SeriesKey:
    m = doc["metric"]
    segment = m.get("segment") or {}
    return SeriesKey(model=doc["mlmon"]["model"]["name"], model_version=str(doc["mlmon"]["model"]["version"]),
                     family=m["family"], metric=m["name"], feature=m.get("feature") or "",
                     class_label=m.get("class") or "", segment_field=segment.get("field") or "",
                     segment_value=segment.get("value") or "")


def segment_label(key: SeriesKey) -> str:
    """``region=rural`` for one segment value, ``region`` for a series across the attribute, "" for all traffic."""
    if not key.segment_field:
        return ""
    return f"{key.segment_field}={key.segment_value}" if key.segment_value else key.segment_field


def series_id(key: SeriesKey) -> str:
    return "\x1f".join((key.model, key.model_version, key.family, key.metric, key.feature, key.class_label,
                        key.segment_field, key.segment_value))


def newest_per_series(docs: Iterable[Mapping[str, Any]]) -> dict[SeriesKey, Newest]:
    """The newest (by window end) document of each series, and its newest non-provisional one."""
    latest: dict[SeriesKey, Mapping[str, Any]] = {}
    final: dict[SeriesKey, Mapping[str, Any]] = {}
    matured: set[SeriesKey] = set()
    for doc in docs:
        key = series_key(doc)
        end = doc["window"]["end"]
        maturity = doc["metric"].get("maturity")
        if maturity is not None:
            matured.add(key)
        if key not in latest or _end(latest[key]) < end:
            latest[key] = doc
        if maturity != "provisional" and (key not in final or _end(final[key]) < end):
            final[key] = doc
    return {k: Newest(doc, final.get(k) if k in matured else None, k in matured) for k, doc in latest.items()}


def _end(doc: Mapping[str, Any]) -> str:
    return str(doc["window"]["end"])  # ISO 8601 'Z' strings of one format sort as times


def select(newest: Mapping[SeriesKey, Newest], settings: ExporterSettings,
           snapshot: Snapshot) -> list[SeriesKey]:
    """The series to export, in a stable order; the others are recorded in ``snapshot.dropped``."""
    model_newest: dict[str, datetime] = {}
    version_newest: dict[tuple[str, str], datetime] = {}
    for key, n in newest.items():
        end = window_end(n.latest)
        model_newest[key.model] = max(end, model_newest.get(key.model, end))
        vkey = (key.model, key.model_version)
        version_newest[vkey] = max(end, version_newest.get(vkey, end))
    kept: list[SeriesKey] = []
    for key in newest:
        # A series across an attribute (a fairness gap) is not per segment value: always exported.
        if key.segment_value and not settings.exports_segment(key.segment_field):
            snapshot.dropped[DROP_SEGMENT].add(series_id(key))
        elif model_newest[key.model] - version_newest[(key.model, key.model_version)] > settings.versions_seen_within:
            snapshot.dropped[DROP_OLD_VERSION].add(series_id(key))
        else:
            kept.append(key)
    # All-traffic series first, then a fixed order: the same series stay in as the values move.
    kept.sort(key=lambda k: (bool(k.segment_value), series_id(k)))
    for key in kept[settings.max_series:]:
        snapshot.dropped[DROP_MAX_SERIES].add(series_id(key))
    return kept[:settings.max_series]


def window_end(doc: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(doc["window"]["end"]).replace("Z", "+00:00"))


def value_gauge(key: SeriesKey) -> tuple[str, Labels]:
    """The gauge a series' value goes to, and the labels it adds to SERIES_LABELS."""
    if key.family in ("drift", "prediction_drift"):
        return "mlmon_drift_statistic", ()
    if key.family in ("performance", "estimated_performance") and key.metric in RATIO_METRICS:
        return PERFORMANCE_GAUGE, ("true" if key.family == "estimated_performance" else "false",)
    if key.family == "label_coverage" and key.metric == "label_coverage":
        return "mlmon_label_coverage_ratio", ()
    if key.family == "fairness" and key.segment_field and not key.segment_value:
        return "mlmon_fairness_gap", ()
    if key.family == "explainability" and key.metric == "attribution_drift":
        return "mlmon_attribution_drift", ()
    return OTHER_VALUES_GAUGE, ()


def build_snapshot(docs: Iterable[Mapping[str, Any]], health: Sequence[JobHealth],
                   settings: ExporterSettings) -> Snapshot:
    """The samples of one refresh from the documents read (any order) and the job health records."""
    snapshot = Snapshot()
    newest = newest_per_series(docs)
    kept = select(newest, settings, snapshot)
    snapshot.series = len(kept)
    freshness: dict[Labels, float] = {}
    for key in kept:
        n = newest[key]
        windows = [("latest", n.latest)]
        if n.has_maturity and n.latest_final is not None:
            windows.append(("latest_final", n.latest_final))
        gauge, extra = value_gauge(key)
        for window, doc in windows:
            labels: Labels = (key.model, key.model_version, key.family, key.metric, key.feature,
                              key.class_label, segment_label(key), window)
            metric = doc["metric"]
            snapshot.add(SEVERITY_GAUGE, labels, float(metric.get("severity", SEVERITY[metric["status"]])))
            if metric.get("value") is not None:  # insufficient data has a severity but no value
                snapshot.add(gauge, (*labels, *extra), float(metric["value"]))
            fresh = (key.model, key.model_version, key.family, window)
            freshness[fresh] = max(freshness.get(fresh, 0.0), window_end(doc).timestamp())
    for labels, end in freshness.items():
        snapshot.add(FRESHNESS_GAUGE, labels, end)
    for h in health:
        job: Labels = (h.model, h.family)
        if h.last_success_at is not None:
            snapshot.add("mlmon_job_last_success_timestamp_seconds", job, h.last_success_at.timestamp())
        snapshot.add("mlmon_job_last_run_timestamp_seconds", job, h.last_run_at.timestamp())
        snapshot.add("mlmon_job_last_run_ok", job, 1.0 if h.last_ok else 0.0)
        snapshot.add("mlmon_job_duration_seconds", job, h.last_duration_seconds)
    return snapshot
