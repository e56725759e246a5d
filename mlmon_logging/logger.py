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
a bounded queue. The background thread turns batches of tuples into
contract events and JSON lines and writes them.

The background thread calls the builder, redactor and renderer that
:mod:`mlmon_logging.processors` wraps as structlog processors directly,
rather than through a structlog logger: structlog's own steps (bound-logger
dispatch, copying the event dict, the processor loop) add nothing to an event
that is already fully formed here and would cost more than building it.
Redaction and sampling mean the same on both paths: sampling is decided on
the caller (so a dropped prediction costs nothing more), redaction before
anything is rendered.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from types import TracebackType
from time import time_ns
from typing import Any, Final

import orjson

from mlmon_logging.emitter import DEFAULT_DRAIN_INTERVAL_S, Emitter, EmitterStats
from mlmon_logging.events import EventBuilder, ModelIdentity, Task, TaskMismatch
from mlmon_logging.ids import uuid7_from_ns
from mlmon_logging.lines import PREDICTION, PredictionLines
from mlmon_logging.processors import DEFAULT_MAX_EVENT_BYTES
from mlmon_logging.redaction import Action, Redactor
from mlmon_logging.render import JSON_OPTIONS, check_limit, render
from mlmon_logging.sampling import check_rate, keep
from mlmon_logging.sinks import Sink, open_sink
from mlmon_logging.values import timestamp_ns

_PREDICTION: Final = PREDICTION
_FEEDBACK: Final = 1
_EXPLANATION: Final = 2


def _write_none(batch: Any, start: int, *_: Any) -> int:
    """Stands in for PredictionLines.write_run when every event must take the dict path."""
    return start


Timestamp = Any  # an aware datetime or Unix seconds (see values.timestamp_ns)
_log = logging.getLogger("mlmon_logging")


class ModelLogger:
    """Logs predictions, feedback and explanations of one model version, without blocking.

    Args:
        model, version: identify the model (``mlmon.model.*``).
        sink: ``"stdout"``, ``"file:///path/events.jsonl[?max_bytes=N&backups=K]"``,
            ``"tcp://host:5044"``, ``"tls://host:5045?ca=/path/ca.crt[&cert=...&key=...]"``
            or a :class:`~mlmon_logging.sinks.Sink`.
        task: ``"classification"`` (labels are strings) or ``"regression"`` (values are doubles).
            Left out, the first event decides: a prediction that is a fractional number
            (3.7, not 3 or 3.0) given without ``score``/``scores`` makes a regression,
            anything else a classification; after an inferred classification such a
            prediction is dropped, counted and reported (never written as a label). Pass it
            when the first prediction might not tell.
        categorical: feature names that are categorical whatever their value type (zip codes, ids).
        redact: feature/segment name -> ``"drop"`` or ``"hash"`` (keyed HMAC; key from
            ``redaction_key`` or ``$MLMON_REDACTION_KEY``).
        sample_rate: share of predictions logged, decided by prediction id so that a
            prediction's feedback and explanation follow it.
        queue_size: events held in memory at most; past that new events are dropped and counted.
        max_event_bytes: longer events are cut down and flagged ``mlmon.quality.truncated``.
        stats_interval: seconds between ``mlmon.emitter`` telemetry events (None: none).
        drain_interval: seconds the writer thread lets events gather once it has emptied the
            queue - the most an event waits under steady traffic; fewer wake-ups leave the GIL
            to the request threads. The queue passing half its bound, ``flush()`` and
            ``close()`` wake it at once.
    """

    def __init__(self, model: str, version: str, sink: str | Sink = "stdout", *,
                 task: Task | None = None, service: str | None = None,
                 service_version: str | None = None, environment: str | None = None,
                 host: str | None = None, labels: Mapping[str, str] | None = None,
                 categorical: Iterable[str] = (), redact: Mapping[str, Action] | None = None,
                 redaction_key: bytes | str | None = None, sample_rate: float = 1.0,
                 queue_size: int = 10_000, batch_size: int = 512,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, stats_interval: float | None = 60.0,
                 close_timeout: float = 5.0, retry_initial: float = 0.1, retry_max: float = 10.0,
                 drain_interval: float = DEFAULT_DRAIN_INTERVAL_S) -> None:
        self.identity = ModelIdentity(model=model, version=version, task=task, service=service,
                                      service_version=service_version, environment=environment,
                                      host=host if host is not None else socket.gethostname(),
                                      labels=dict(labels or {}), categorical=frozenset(categorical))
        self.sample_rate = check_rate(sample_rate)
        self._sampling = self.sample_rate < 1.0
        self._max_event_bytes = check_limit(max_event_bytes)
        self._builder = EventBuilder(self.identity, self.sample_rate)
        self._plain_lines = PredictionLines(self._builder)
        self._redactor = Redactor(redact or {}, redaction_key)
        self._emitter = Emitter(self._render_batch, open_sink(sink), queue_size=queue_size, batch_size=batch_size,
                                stats_interval=stats_interval, telemetry=self._render_telemetry,
                                close_timeout=close_timeout, retry_initial=retry_initial,
                                retry_max=retry_max, drain_interval=drain_interval,
                                name=f"mlmon-emitter-{model}-{version}")
        self._submit = self._emitter.submit
        self._reported_task_mismatch = False

    # --- request path --------------------------------------------------------------
    # Kept lean on purpose: exact-type checks instead of helpers, one tuple, one append.
    def log_prediction(self, features: Mapping[str, Any] | None = None, prediction: Any = None,
                       score: float | None = None, *, latency_ms: float | None = None,
                       segment: Mapping[str, Any] | None = None, scores: Mapping[Any, float] | None = None,
                       prediction_id: str | None = None, timestamp: Timestamp = None) -> str:
        """Log one prediction; returns its id (UUIDv7 unless ``prediction_id`` is given)."""
        ts = time_ns() if timestamp is None else timestamp_ns(timestamp)
        pid = uuid7_from_ns(ts) if prediction_id is None else str(prediction_id)
        if self._sampling and not keep(pid, self.sample_rate):
            self._emitter.count_sampled_out()
            return pid
        if type(features) is dict:
            features = features.copy()
        if type(segment) is dict:
            segment = segment.copy()
        if type(scores) is dict:
            scores = scores.copy()
        self._submit((_PREDICTION, ts, pid, features, prediction, score, latency_ms, segment, scores))
        return pid

    def log_feedback(self, prediction_id: str, actual: Any, *, timestamp: Timestamp = None) -> bool:
        """Log the ground truth of a prediction. False if sampled out or dropped."""
        if self._sampling and not keep(prediction_id, self.sample_rate):
            self._emitter.count_sampled_out()
            return False
        ts = time_ns() if timestamp is None else timestamp_ns(timestamp)
        return self._submit((_FEEDBACK, ts, prediction_id, actual))

    def log_explanation(self, prediction_id: str, attributions: Mapping[str, float], *,
                        method: str | None = None, base_value: float | None = None,
                        timestamp: Timestamp = None) -> bool:
        """Log per-feature attributions of a prediction. False if sampled out or dropped."""
        if self._sampling and not keep(prediction_id, self.sample_rate):
            self._emitter.count_sampled_out()
            return False
        ts = time_ns() if timestamp is None else timestamp_ns(timestamp)
        if type(attributions) is dict:
            attributions = attributions.copy()
        return self._submit((_EXPLANATION, ts, prediction_id, attributions, method, base_value))

    # --- background thread -----------------------------------------------------------
    def _render_batch(self, batch: list[tuple[Any, ...]]) -> tuple[bytearray, int, int]:
        """One chunk of JSON lines for a batch of queued tuples: (chunk, lines in it, items that failed)."""
        # The hot loop of the writer thread: a plain prediction is written straight into the
        # chunk by PredictionLines (constant parts pre-serialised); the rest are built as dicts
        # and dumped here; render() only runs for what needs repair or cutting.
        # Lines are appended to one bytearray as they come, so each line's bytes object is
        # freed at once and its memory reused for the next: keeping a batch of them alive
        # and joining them at the end measured 3-4x slower (allocator churn, cache misses).
        chunk = bytearray()
        rendered = failed = 0
        redactor = self._redactor if self._redactor else None
        # Redaction works on the event dict: with a redactor every event takes the dict path.
        write_run = self._plain_lines.write_run if redactor is None else _write_none
        plain = self._builder.plain_prediction
        careful = self._builder.careful_prediction
        build_other = self._build_other
        limit = self._max_event_bytes
        dumps = orjson.dumps
        i, n = 0, len(batch)
        while i < n:
            done = write_run(batch, i, chunk, limit)  # the plain predictions from i on
            rendered += done - i
            if done == n:
                break
            item = batch[done]  # one for the dict path
            i = done + 1
            try:
                if item[0] == _PREDICTION:
                    _, ts, pid, features, prediction, score, latency_ms, segment, scores = item
                    event = (plain(ts, pid, features, prediction, score, latency_ms, segment, scores)
                             or careful(ts, pid, features, prediction, score, latency_ms, segment, scores))
                else:
                    event = build_other(item)
                if redactor is not None:
                    event = redactor(event)
                try:
                    line = dumps(event, option=JSON_OPTIONS)
                except (orjson.JSONEncodeError, TypeError):
                    line = render(event, limit)  # repairs what orjson refused, and flags it
                if len(line) > limit:
                    line = render(event, limit)  # cuts it down, and flags it
            except TaskMismatch as refused:  # a user error: one line, once, then counted only
                failed += 1
                if not self._reported_task_mismatch:
                    self._reported_task_mismatch = True
                    _log.error("%s", refused)
                continue
            except Exception:  # one bad event must not cost the others
                failed += 1
                _log.exception("mlmon: could not render an event; it is dropped")
                continue
            chunk += line
            rendered += 1
        return chunk, rendered, failed

    def _build_other(self, item: tuple[Any, ...]) -> dict[str, Any]:
        if item[0] == _FEEDBACK:
            _, ts, pid, actual = item
            return self._builder.feedback(ts, pid, actual)
        _, ts, pid, attributions, method, base_value = item
        return self._builder.explanation(ts, pid, attributions, method, base_value)

    def _render_telemetry(self, stats: EmitterStats) -> bytes:
        return render(self._builder.emitter(time_ns(), stats.as_dict()), self._max_event_bytes)

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
