"""Metric documents: one schema for every metric mlmon computes.

Drift, data quality, performance (realised and estimated), explainability and
fairness results are all written as documents of this one shape, so one index
template, one DuckDB table, one set of Kibana panels and one alert rule engine
serve them all.

The document id is a hash of what identifies the measurement — model, version,
metric, feature, class, segment and window — and nothing else, so re-running a
window, a backfill, or a recomputation after late labels overwrites the
previous value instead of adding a duplicate.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any, Literal

Status = Literal["ok", "warning", "alert", "insufficient_data", "no_threshold"]
#: Severity order, for "worst status" roll-ups.
SEVERITY: dict[str, int] = {"no_threshold": 0, "ok": 0, "insufficient_data": 1, "warning": 2, "alert": 3}
Family = Literal["drift", "data_quality", "prediction_drift", "performance", "estimated_performance",
                 "label_coverage", "explainability", "fairness", "volume"]
Maturity = Literal["provisional", "final"]

#: Index (Elasticsearch) / table (DuckDB) names of what the jobs write.
METRICS_INDEX = "mlmon-metrics"
ALERTS_INDEX = "mlmon-alerts"
REFERENCES_INDEX = "mlmon-references"
#: Per-job progress (the last finished window) of the jobs' Elasticsearch store.
CHECKPOINTS_INDEX = "mlmon-checkpoints"


@dataclass(frozen=True)
class Threshold:
    """When a value is a warning or an alert, and where that rule came from."""

    warning: float | None
    alert: float | None
    #: "above": larger is worse (drift); "below": smaller is worse (accuracy).
    direction: Literal["above", "below"] = "above"
    #: "default", "config", "calibrated" (on the reference) or "reference_relative".
    source: str = "default"

    def status(self, value: float | None) -> Status:
        if value is None or (self.warning is None and self.alert is None):
            return "no_threshold"
        worse = (lambda v, t: v > t) if self.direction == "above" else (lambda v, t: v < t)
        if self.alert is not None and worse(value, self.alert):
            return "alert"
        if self.warning is not None and worse(value, self.warning):
            return "warning"
        return "ok"


@dataclass(frozen=True)
class MetricDocument:
    model: str
    model_version: str
    family: Family
    metric: str                     # e.g. "wasserstein", "psi", "f1", "demographic_parity_difference"
    window_start: datetime
    window_end: datetime
    value: float | None
    status: Status
    n_current: int
    run_id: str
    code_version: str
    method: str = ""                # how it was computed, e.g. "binned:1000-quantiles"
    feature: str = ""               # "" when the metric is not per feature
    class_label: str = ""           # "" when not per class; "macro"/"weighted" for averages
    segment_field: str = ""         # "" = all traffic
    segment_value: str = ""
    threshold: Threshold | None = None
    n_reference: int | None = None
    reference_id: str = ""
    maturity: Maturity | None = None  # performance only: provisional until labels mature
    details: dict[str, Any] = field(default_factory=dict)  # p-values, coverage, estimation error ...
    computed_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    #: Made from what identifies the measurement (``metric_id``); a ``replace`` makes it again.
    id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", metric_id(self.model, self.model_version, self.family, self.metric,
                                                 self.feature, self.class_label, self.segment_field,
                                                 self.segment_value, self.window_start, self.window_end))
        # Every job hands over numpy scalars and NaN/inf now and then; the document makes
        # itself storable (JSON, Elasticsearch doubles) once, here, instead of in each job.
        value = self.value
        if value is not None and not (type(value) is float and math.isfinite(value)):
            object.__setattr__(self, "value", _finite(value))
        # Plain values (most of them) pass as they are; a backfill makes ~10^5 documents a batch.
        # A copy either way: the document must not change with the caller's dict.
        details = self.details
        for v in details.values():
            t = type(v)
            if not (t in _PLAIN or (t is float and v - v == 0.0)):  # v - v: nan for nan and +-inf
                object.__setattr__(self, "details", {k: _json_safe(v) for k, v in details.items()})
                return
        object.__setattr__(self, "details", dict(details))

    def to_source(self) -> dict[str, Any]:
        """The document as stored (nested, ECS-style names; see METRIC_FIELDS)."""
        th = self.threshold
        return {
            "@timestamp": iso(self.window_end),
            "mlmon": {"model": {"name": self.model, "version": self.model_version}},
            "metric": {
                "id": self.id,
                "family": self.family,
                "name": self.metric,
                "feature": self.feature,
                "class": self.class_label,
                "segment": {"field": self.segment_field, "value": self.segment_value},
                "value": self.value,
                "status": self.status,
                "severity": SEVERITY[self.status],
                "maturity": self.maturity,
                "method": self.method,
                "threshold": None if th is None else {
                    "warning": th.warning, "alert": th.alert, "direction": th.direction, "source": th.source},
                "details": self.details,
            },
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "n": {"current": self.n_current, "reference": self.n_reference},
            "reference": {"id": self.reference_id},
            "job": {"run_id": self.run_id, "code_version": self.code_version,
                    "computed_at": iso(self.computed_at)},
        }


#: What each document of a window names itself (``assembled``); the rest its window shares (``shared_fields``).
_OWN_FIELDS = frozenset({"family", "metric", "value", "status", "n_current", "method", "feature", "class_label",
                         "threshold", "details", "segment_field", "segment_value"})


#: The fields a document is made with: their plain defaults, and those without one (a default factory too).
_DEFAULTS = {f.name: f.default for f in fields(MetricDocument) if f.init and f.default is not MISSING}
_REQUIRED = frozenset(f.name for f in fields(MetricDocument) if f.init and f.default is MISSING)


def shared_fields(**values: Any) -> dict[str, Any]:
    """The fields the documents of one window share, with every other field's plain default: what
    :func:`assembled` completes. Each field outside ``_OWN_FIELDS`` without a plain default must be given."""
    unknown = values.keys() - _DEFAULTS.keys() - _REQUIRED
    missing = _REQUIRED - values.keys() - _OWN_FIELDS
    if unknown or missing:
        raise TypeError(f"shared_fields: unknown {sorted(unknown)}, missing {sorted(missing)}")
    return {**_DEFAULTS, **values}


def assembled(shared: dict[str, Any], family: Family, metric: str, value: float | None, status: Status,
              n_current: int, method: str, feature: str, class_label: str, threshold: Threshold | None,
              details: dict[str, Any], segment_field: str, segment_value: str) -> MetricDocument:
    """``MetricDocument(**shared, family=family, ...)``, checked the same way (``__post_init__``), without the
    generated ``__init__``: a frozen dataclass sets each of its fields through ``object.__setattr__``, and
    without that a document is made in ~0.6 of the time; a round makes ~10^4 of them."""
    doc: MetricDocument = object.__new__(MetricDocument)
    state = doc.__dict__
    state.update(shared)
    state["family"], state["metric"], state["value"], state["status"] = family, metric, value, status
    state["n_current"], state["method"], state["feature"], state["class_label"] = n_current, method, feature, class_label
    state["threshold"], state["details"] = threshold, details
    state["segment_field"], state["segment_value"] = segment_field, segment_value
    doc.__post_init__()
    return doc


def metric_columns(docs: Sequence[MetricDocument]) -> dict[str, list[Any]]:
    """Each field of METRIC_FIELDS -> its values in ``docs``, in order: what ``flatten_source(d.to_source())``
    holds, except that dates stay datetimes (not rounded to the millisecond) and ``metric.details`` stays a
    dict. A store builds its columns from these without making and flattening a nested dict per document."""
    for d in docs:
        if d.computed_at.tzinfo is None:
            iso(d.computed_at)  # the one error for naive times (window times are checked by the id)
    ths = [d.threshold for d in docs]
    return {
        "@timestamp": [d.window_end for d in docs],
        "mlmon.model.name": [d.model for d in docs],
        "mlmon.model.version": [d.model_version for d in docs],
        "metric.id": [d.id for d in docs],
        "metric.family": [d.family for d in docs],
        "metric.name": [d.metric for d in docs],
        "metric.feature": [d.feature for d in docs],
        "metric.class": [d.class_label for d in docs],
        "metric.segment.field": [d.segment_field for d in docs],
        "metric.segment.value": [d.segment_value for d in docs],
        "metric.value": [d.value for d in docs],
        "metric.status": [d.status for d in docs],
        "metric.severity": [SEVERITY[d.status] for d in docs],
        "metric.maturity": [d.maturity for d in docs],
        "metric.method": [d.method for d in docs],
        "metric.threshold.warning": [None if t is None else t.warning for t in ths],
        "metric.threshold.alert": [None if t is None else t.alert for t in ths],
        "metric.threshold.direction": [None if t is None else t.direction for t in ths],
        "metric.threshold.source": [None if t is None else t.source for t in ths],
        "metric.details": [d.details for d in docs],
        "window.start": [d.window_start for d in docs],
        "window.end": [d.window_end for d in docs],
        "n.current": [d.n_current for d in docs],
        "n.reference": [d.n_reference for d in docs],
        "reference.id": [d.reference_id for d in docs],
        "job.run_id": [d.run_id for d in docs],
        "job.code_version": [d.code_version for d in docs],
        "job.computed_at": [d.computed_at for d in docs],
    }


#: Field name -> type of a stored metric document (index template and DuckDB table derive from it).
METRIC_FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "mlmon.model.name": "keyword",
    "mlmon.model.version": "keyword",
    "metric.id": "keyword",
    "metric.family": "keyword",
    "metric.name": "keyword",
    "metric.feature": "keyword",
    "metric.class": "keyword",
    "metric.segment.field": "keyword",
    "metric.segment.value": "keyword",
    "metric.value": "double",
    "metric.status": "keyword",
    "metric.severity": "byte",      # SEVERITY of the status: max() over it is the worst status
    "metric.maturity": "keyword",
    "metric.method": "keyword",
    "metric.threshold.warning": "double",
    "metric.threshold.alert": "double",
    "metric.threshold.direction": "keyword",
    "metric.threshold.source": "keyword",
    "metric.details": "flattened",
    "window.start": "date",
    "window.end": "date",
    "n.current": "long",
    "n.reference": "long",
    "reference.id": "keyword",
    "job.run_id": "keyword",
    "job.code_version": "keyword",
    "job.computed_at": "date",
}


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


#: Types _json_safe returns unchanged (bool is a subclass of int, but ``type`` compares exactly).
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})


def _json_safe(value: Any) -> Any:
    """numpy values to Python, non-finite floats to None, tuples to lists (recursively)."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()  # scalars and arrays alike
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, tuple | list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def metric_id(model: str, version: str, family: str, metric: str, feature: str, class_label: str,
              segment_field: str, segment_value: str, window_start: datetime, window_end: datetime) -> str:
    """Deterministic id: same measurement, same id, whatever run computed it."""
    key = "\x1f".join((model, version, family, metric, feature, class_label, segment_field, segment_value,
                       iso(window_start), iso(window_end)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


@lru_cache(maxsize=4096)  # ids repeat each window's two times for every document of the window
def iso(ts: datetime) -> str:
    """UTC ISO 8601 with milliseconds and 'Z', the one timestamp format of stored documents."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: mlmon works in UTC; pass an aware datetime")
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
