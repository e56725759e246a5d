"""Ingest rules that sit on top of the event contract.

The contract (``mlmon_logging.contract``) says which fields exist and their
types. This module adds what a pipeline must decide on top of it: size limits,
clock tolerance, value ranges, the fields each task needs, and which fields are
derived downstream (never trusted from the emitter). Both engines - the
Logstash ruby filter and ``mlmon ingest`` - read these through the one spec
built by :mod:`mlmon.ingest.spec`.
"""

from __future__ import annotations

from mlmon_logging import contract

#: A line longer than this (bytes, without the newline) is dead-lettered: the
#: emitter caps events far below it, so a longer line is a bug or an attack.
MAX_LINE_BYTES = 65_536
#: ``@timestamp`` may be this far ahead of the ingest clock (clock skew between
#: hosts); later than that, the event would poison "last N minutes" windows.
FUTURE_TOLERANCE_SECONDS = 300
#: Strings some JSON encoders write for non-finite floats; a clear reason beats "wrong type".
NON_FINITE_STRINGS: tuple[str, ...] = ("NaN", "nan", "Infinity", "-Infinity", "+Infinity", "inf", "-inf", "+inf")

#: Keywords that identify an event: an empty one would make every such event the same one.
NON_EMPTY_FIELDS: tuple[str, ...] = ("event.id",)

#: Fields set by the pipeline; an emitter-sent value is replaced, never trusted.
DERIVED_FIELDS: tuple[str, ...] = ("event.ingested", "mlmon.prediction.latency_bucket")

#: ``event.kind`` per mlmon kind (ECS: model events are events, telemetry is a metric).
ECS_EVENT_KIND: dict[contract.Kind, str] = {
    "prediction": "event", "feedback": "event", "explanation": "event", "emitter": "metric",
    "prediction_error": "event",
}

#: Fields a model event needs given its task: a prediction without its output, or
#: feedback without the truth, cannot feed any metric.
TASK_REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "prediction": {"classification": ("mlmon.prediction.label",), "regression": ("mlmon.prediction.value",)},
    "feedback": {"classification": ("mlmon.feedback.actual",), "regression": ("mlmon.feedback.actual_value",)},
}

#: Numeric ranges: name -> (lower, lower_inclusive, upper or None, upper_inclusive).
RANGES: dict[str, tuple[float, bool, float | None, bool]] = {
    "mlmon.sample_rate": (0, False, 1, True),
    "mlmon.prediction.latency_ms": (0, True, None, False),
    "mlmon.emitter.emitted": (0, True, None, False),
    "mlmon.emitter.dropped": (0, True, None, False),
    "mlmon.emitter.errors": (0, True, None, False),
    "mlmon.emitter.queued": (0, True, None, False),
}
