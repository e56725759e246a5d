"""``ModelLogger``: the one object a model service needs.

>>> from mlmon_logging import ModelLogger
>>> mlog = ModelLogger(model="churn", version="3", sink="file:///var/log/mlmon/events.jsonl")
>>> pid = mlog.log_prediction(features={"age": 41, "plan": "pro"}, prediction=1, score=0.83,
...                           latency_ms=4.2, segment={"country": "DE"})
>>> mlog.log_feedback(prediction_id=pid, actual=0)
>>> mlog.log_explanation(prediction_id=pid, attributions={"age": 0.12, "plan": -0.03})

On the calling thread each method takes a timestamp, makes the ids, makes a
shallow copy of the dicts it was given (so a service reusing a dict for the
next request cannot change an event already queued) and appends a tuple to
a bounded queue. The background thread turns tuples into contract events
with the processors of :mod:`mlmon_logging.processors` and writes them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Final

from mlmon_logging.emitter import Emitter, EmitterStats
from mlmon_logging.events import EventBuilder, ModelIdentity, Task
from mlmon_logging.ids import uuid7_from_ns
from mlmon_logging.processors import DEFAULT_MAX_EVENT_BYTES
from mlmon_logging.redaction import Action, Redactor
from mlmon_logging.render import check_limit, render
from mlmon_logging.sampling import check_rate, keep
from mlmon_logging.sinks import Sink, open_sink
from mlmon_logging.values import timestamp_ns

_PREDICTION: Final = 0
_FEEDBACK: Final = 1
_EXPLANATION: Final = 2

Timestamp = Any  # an aware datetime or Unix seconds (see values.timestamp_ns)


def _copy(mapping: Any) -> Any:
    return mapping.copy() if type(mapping) is dict else mapping


class ModelLogger:
    """Logs predictions, feedback and explanations of one model version, without blocking.

    Args:
        model, version: identify the model (``mlmon.model.*``).
        sink: ``"stdout"``, ``"file:///path/events.jsonl[?max_bytes=N&backups=K]"``,
            ``"tcp://host:5044"`` or a :class:`~mlmon_logging.sinks.Sink`.
        task: ``"classification"`` (labels are strings) or ``"regression"`` (values are doubles).
        categorical: feature names that are categorical whatever their value type (zip codes, ids).
        redact: feature/segment name -> ``"drop"`` or ``"hash"`` (keyed HMAC; key from
            ``redaction_key`` or ``$MLMON_REDACTION_KEY``).
        sample_rate: share of predictions logged, decided by prediction id so that a
            prediction's feedback and explanation follow it.
        queue_size: events held in memory at most; past that new events are dropped and counted.
        max_event_bytes: longer events are cut down and flagged ``mlmon.quality.truncated``.
        stats_interval: seconds between ``mlmon.emitter`` telemetry events (None: none).
    """

    def __init__(self, model: str, version: str, sink: str | Sink = "stdout", *,
                 task: Task = "classification", service: str | None = None,
                 service_version: str | None = None, environment: str | None = None,
                 host: str | None = None, labels: Mapping[str, str] | None = None,
                 categorical: Iterable[str] = (), redact: Mapping[str, Action] | None = None,
                 redaction_key: bytes | str | None = None, sample_rate: float = 1.0,
                 queue_size: int = 10_000, batch_size: int = 512,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, stats_interval: float | None = 60.0,
                 close_timeout: float = 5.0, retry_initial: float = 0.1, retry_max: float = 10.0) -> None:
        self.identity = ModelIdentity(model=model, version=version, task=task, service=service,
                                      service_version=service_version, environment=environment,
                                      host=host if host is not None else socket.gethostname(),
                                      labels=dict(labels or {}), categorical=frozenset(categorical))
        self.sample_rate = check_rate(sample_rate)
        self._max_event_bytes = check_limit(max_event_bytes)
        self._builder = EventBuilder(self.identity, self.sample_rate)
        self._redactor = Redactor(redact or {}, redaction_key)
        self._emitter = Emitter(self._render, open_sink(sink), queue_size=queue_size, batch_size=batch_size,
                                stats_interval=stats_interval, telemetry=self._render_telemetry,
                                close_timeout=close_timeout, retry_initial=retry_initial,
                                retry_max=retry_max, name=f"mlmon-emitter-{model}-{version}")
        self._submit = self._emitter.submit

    # --- request path --------------------------------------------------------------
    def log_prediction(self, features: Mapping[str, Any] | None = None, prediction: Any = None,
                       score: float | None = None, *, latency_ms: float | None = None,
                       segment: Mapping[str, Any] | None = None, scores: Mapping[Any, float] | None = None,
                       prediction_id: str | None = None, timestamp: Timestamp = None) -> str:
        """Log one prediction; returns its id (UUIDv7 unless ``prediction_id`` is given)."""
        ts = time.time_ns() if timestamp is None else timestamp_ns(timestamp)
        pid = uuid7_from_ns(ts) if prediction_id is None else str(prediction_id)
        if self.sample_rate < 1.0 and not keep(pid, self.sample_rate):
            self._emitter.count_sampled_out()
            return pid
        self._submit((_PREDICTION, ts, pid, _copy(features), prediction, score, latency_ms,
                      _copy(segment), _copy(scores)))
        return pid

    def log_feedback(self, prediction_id: str, actual: Any, *, timestamp: Timestamp = None) -> bool:
        """Log the ground truth of a prediction. False if sampled out or dropped."""
        if self.sample_rate < 1.0 and not keep(prediction_id, self.sample_rate):
            self._emitter.count_sampled_out()
            return False
        ts = time.time_ns() if timestamp is None else timestamp_ns(timestamp)
        return self._submit((_FEEDBACK, ts, prediction_id, actual))

    def log_explanation(self, prediction_id: str, attributions: Mapping[str, float], *,
                        method: str | None = None, base_value: float | None = None,
                        timestamp: Timestamp = None) -> bool:
        """Log per-feature attributions of a prediction. False if sampled out or dropped."""
        if self.sample_rate < 1.0 and not keep(prediction_id, self.sample_rate):
            self._emitter.count_sampled_out()
            return False
        ts = time.time_ns() if timestamp is None else timestamp_ns(timestamp)
        return self._submit((_EXPLANATION, ts, prediction_id, _copy(attributions), method, base_value))

    # --- background thread -----------------------------------------------------------
    def _render(self, item: tuple[Any, ...]) -> bytes:
        kind = item[0]
        if kind == _PREDICTION:
            _, ts, pid, features, prediction, score, latency_ms, segment, scores = item
            event = self._builder.prediction(ts, pid, features, prediction, score, latency_ms, segment, scores)
        elif kind == _FEEDBACK:
            _, ts, pid, actual = item
            event = self._builder.feedback(ts, pid, actual)
        else:
            _, ts, pid, attributions, method, base_value = item
            event = self._builder.explanation(ts, pid, attributions, method, base_value)
        if self._redactor:
            event = self._redactor(event)
        return render(event, self._max_event_bytes)

    def _render_telemetry(self, stats: EmitterStats) -> bytes:
        return render(self._builder.emitter(time.time_ns(), stats.as_dict()), self._max_event_bytes)

    # --- lifecycle -----------------------------------------------------------------
    @property
    def stats(self) -> EmitterStats:
        """emitted, dropped, queued, errors, sampled_out (since start)."""
        return self._emitter.stats

    @property
    def sink(self) -> Sink:
        return self._emitter.sink

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything logged so far is written; False on timeout."""
        return self._emitter.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued and close the sink (also done at interpreter exit)."""
        self._emitter.close(timeout)

    def __enter__(self) -> ModelLogger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ModelLogger(model={self.identity.model!r}, version={self.identity.version!r}, sink={self.sink!r})"
