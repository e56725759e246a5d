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
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from types import TracebackType
from time import time_ns
from typing import Any, Final, Protocol

import orjson

from mlmon_logging.emitter import (
    DEFAULT_DRAIN_INTERVAL_S,
    DEFAULT_RETRY_INITIAL_S,
    DEFAULT_RETRY_MAX_S,
    Emitter,
    EmitterObserver,
    EmitterStats,
    INVALID,
)
from mlmon_logging.blocks import RowBlock
from mlmon_logging.batch import SLICE_ROWS, ExplanationRows, FeedbackRows, PredictionRows, ScoresRef
from mlmon_logging.estimators import model_outputs
from mlmon_logging.events import EventBuilder, ModelIdentity, Refused, Task
from mlmon_logging.ids import uuid7_from_ns
from mlmon_logging.frames import ColumnRef
from mlmon_logging.items import EXPLANATION, FEEDBACK, PREDICTION, PREDICTION_ERROR
from mlmon_logging.lines import PredictionLines
from mlmon_logging.processors import DEFAULT_MAX_EVENT_BYTES
from mlmon_logging.redaction import Action, Redactor
from mlmon_logging.render import JSON_OPTIONS, check_limit, render
from mlmon_logging.sampling import check_rate, keep
from mlmon_logging.sinks import Sink, open_sink
from mlmon_logging.values import timestamp_ns

_PREDICTION: Final = PREDICTION
_FEEDBACK: Final = FEEDBACK
_EXPLANATION: Final = EXPLANATION
_PREDICTION_ERROR: Final = PREDICTION_ERROR


def _write_none(batch: Any, start: int, *_: Any) -> int:
    """Stands in for PredictionLines.write_run when every event must take the dict path."""
    return start


Timestamp = Any  # an aware datetime or Unix seconds (see values.timestamp_ns)
_log = logging.getLogger("mlmon_logging")
#: Distinct refusal messages logged per logger; past this they are only counted.
_MAX_REPORTED: Final = 100


def _exception_text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not break the caller
        return f"<unprintable {type(error).__name__}>"


class LoggerMetrics(EmitterObserver, Protocol):
    """Metrics fed by a ModelLogger's calls, e.g. :class:`mlmon_logging.prometheus.PrometheusMetrics`.

    ``batch`` and ``report`` run on the writer thread; ``refused`` on the caller's, only
    for calls whose items the queue refused (so the calls are still counted).
    """

    def bind(self, identity: ModelIdentity, task: Callable[[], str]) -> None:
        """Called once by the ModelLogger; ``task()`` is the model's task as decided so far."""


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
        close_timeout: seconds ``close()`` (and interpreter exit) spends writing what is queued;
            what is left then is counted as dropped (``close_timeout``), never left uncounted.
        retry_initial, retry_max: backoff between attempts on a failing sink (seconds, doubling,
            jittered); ``retry_max`` also bounds how long a sink that is back waits to be used.
        metrics: request-level metrics fed by the same calls, on the writer thread, e.g.
            ``mlmon_logging.prometheus.PrometheusMetrics()`` (extra ``mlmon[prometheus]``).
    """

    def __init__(self, model: str, version: str, sink: str | Sink = "stdout", *,
                 task: Task | None = None, service: str | None = None,
                 service_version: str | None = None, environment: str | None = None,
                 host: str | None = None, labels: Mapping[str, str] | None = None,
                 categorical: Iterable[str] = (), redact: Mapping[str, Action] | None = None,
                 redaction_key: bytes | str | None = None, sample_rate: float = 1.0,
                 queue_size: int = 10_000, batch_size: int = 512,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, stats_interval: float | None = 60.0,
                 close_timeout: float = 5.0, retry_initial: float = DEFAULT_RETRY_INITIAL_S,
                 retry_max: float = DEFAULT_RETRY_MAX_S,
                 drain_interval: float = DEFAULT_DRAIN_INTERVAL_S, metrics: LoggerMetrics | None = None) -> None:
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
        self._metrics = metrics
        if metrics is not None:
            builder = self._builder
            metrics.bind(self.identity, lambda: builder.task)
        self._emitter = Emitter(self._render_batch, open_sink(sink), queue_size=queue_size, batch_size=batch_size,
                                stats_interval=stats_interval, telemetry=self._render_telemetry,
                                close_timeout=close_timeout, retry_initial=retry_initial,
                                retry_max=retry_max, drain_interval=drain_interval,
                                name=f"mlmon-emitter-{model}-{version}", observer=metrics)
        self._submit = self._emitter.submit
        self._reported: set[str] = set()

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

    def log_prediction_error(self, error: BaseException | str, message: str | None = None, *,
                             latency_ms: float | None = None, prediction_id: str | None = None,
                             timestamp: Timestamp = None) -> str:
        """Log a prediction the model failed to make; returns its id.

        ``error``: the exception (its class name becomes ``error.type``, its text
        ``error.message``) or a short code such as ``"invalid_input"``. Never sampled out:
        failures are rare and each one counts. Example::

            try:
                label = model.predict(x)
            except Exception as exc:
                mlog.log_prediction_error(exc, latency_ms=elapsed_ms)
                raise
        """
        ts = time_ns() if timestamp is None else timestamp_ns(timestamp)
        pid = uuid7_from_ns(ts) if prediction_id is None else str(prediction_id)
        kind_of_error = error
        if isinstance(error, BaseException):  # queue its name and text, not its traceback's frames
            kind_of_error = type(error).__name__
            message = _exception_text(error) if message is None else message
        self._submit((_PREDICTION_ERROR, ts, pid, kind_of_error, message, latency_ms))
        return pid

    # --- batch calls (off the request path: they wait for room, never drop) -------------
    def log_predictions(self, frame: Any, *, prediction: ColumnRef, score: ColumnRef | None = None,
                        scores: ScoresRef | None = None, features: Sequence[Hashable] | None = None,
                        segment: Sequence[Hashable] | None = None, timestamp: ColumnRef | None = None,
                        latency_ms: ColumnRef | None = None, prediction_id: ColumnRef | None = None) -> list[str]:
        """Log one prediction per row of ``frame`` (a pandas DataFrame or a dict of columns); returns the ids, one per row.

        Each of ``prediction``, ``score``, ``latency_ms``, ``prediction_id`` and ``timestamp`` is a
        column name, or a sequence with one value per row (e.g. ``estimator.predict(X)``).
        ``scores``: ``{class label: column}``, or a list of columns named by their class.
        ``features`` / ``segment``: lists of column names; ``features`` defaults to every column no
        other argument names. ``timestamp``: aware datetimes or Unix seconds (default: now).
        ``prediction_id`` (default: new UUIDv7s); a missing one is made.

        Each row gives the event ``log_prediction`` would give for it (same checks, same quality
        flags, same sampling; a bad value is flagged or the row counted as dropped, never raised).
        Not for the request path: when the queue is half full the call waits for the writer
        instead of dropping. A row whose timestamp cannot be read is not logged: counted as
        dropped (reason ``invalid``, one error line per cause), its id ``""`` unless given. Raises
        :class:`~mlmon_logging.frames.BatchCallError` (a ValueError), before logging anything, for
        a call that cannot be read: an unknown column, a sequence of the wrong length, naive datetimes.
        """
        rows = PredictionRows(frame, prediction=prediction, score=score, scores=scores, features=features,
                              segment=segment, timestamp=timestamp, latency_ms=latency_ms,
                              prediction_id=prediction_id)
        ids: list[str] = []
        self._log_rows(rows, ids)
        return ids

    def log_feedback_batch(self, frame: Any, *, prediction_id: ColumnRef, actual: ColumnRef,
                           timestamp: ColumnRef | None = None) -> int:
        """Log the ground truth of many predictions (one per row, as :meth:`log_feedback`); returns how many were queued.

        Columns (or sequences) as in :meth:`log_predictions`. Rows sampled out, or without a
        prediction id or a readable timestamp (counted as dropped, reason ``invalid``), are not queued.
        """
        return self._log_rows(FeedbackRows(frame, prediction_id=prediction_id, actual=actual, timestamp=timestamp))

    def log_explanations(self, frame: Any, *, prediction_id: ColumnRef, attributions: Sequence[Hashable] | None = None,
                         method: str | None = None, base_value: ColumnRef | float | None = None,
                         timestamp: ColumnRef | None = None) -> int:
        """Log per-feature attributions of many predictions (one per row, as :meth:`log_explanation`).

        ``attributions``: the columns holding them (default: every column no other argument
        names), e.g. a frame of SHAP values with a prediction id column. ``method``: one name for
        every row. ``base_value``: a number (the same for every row) or a column. Returns how many
        rows were queued.
        """
        return self._log_rows(ExplanationRows(frame, prediction_id=prediction_id, attributions=attributions,
                                              method=method, base_value=base_value, timestamp=timestamp))

    def log_model_outputs(self, estimator: Any, X: Any, *, y_pred: Any = None, proba: Any = None,
                          features: Sequence[Hashable] | None = None, segment: Sequence[Hashable] | None = None,
                          timestamp: ColumnRef | None = None, latency_ms: ColumnRef | None = None,
                          prediction_id: ColumnRef | None = None) -> list[str]:
        """Log a scikit-learn-style estimator's outputs on ``X`` (a DataFrame or a 2-d array) with ``X`` as features.

        ``y_pred`` defaults to ``estimator.predict(X)``; for a classifier ``proba`` to
        ``estimator.predict_proba(X)``, read by ``estimator.classes_``: binary, the score is the
        probability of ``classes_[1]``; multiclass, the score is the predicted class's and every
        class's probability goes under ``scores``. ``X`` may carry more columns than the estimator was
        fitted on (a segment, a timestamp, an id): it predicts on its ``feature_names_in_``. The
        other arguments as in :meth:`log_predictions` (columns named there are not features).
        Returns the ids, one per row.
        """
        return self.log_predictions(**model_outputs(estimator, X, y_pred=y_pred, proba=proba), features=features,
                                    segment=segment, timestamp=timestamp, latency_ms=latency_ms,
                                    prediction_id=prediction_id)

    def _log_rows(self, rows: PredictionRows | FeedbackRows | ExplanationRows, ids: list[str] | None = None) -> int:
        """Queue the rows a slice at a time, waiting for room; count what is not queued. Returns how many were."""
        queued = 0
        emitter = self._emitter
        for start in range(0, rows.count, SLICE_ROWS):
            part = rows.slice(start, min(start + SLICE_ROWS, rows.count), self.sample_rate)
            if ids is not None:
                ids.extend(part.ids)
            if part.sampled_out:
                emitter.count_sampled_out(part.sampled_out)
            if part.unreadable:
                emitter.count_dropped(INVALID, part.unreadable)
                for cause in part.causes:
                    self._report_refusal(f"mlmon: {rows.table.call}: model {self.identity.model!r} version "
                                         f"{self.identity.version!r}: rows with {cause} are not logged but "
                                         "counted as dropped (reason 'invalid'); fix that column")
            queued += emitter.submit_waiting(part.items)
        return queued

    # --- background thread -----------------------------------------------------------
    def _render_batch(self, batch: list[tuple[Any, ...]]) -> tuple[bytearray, int, int, int]:
        """One chunk of JSON lines for a batch of queued tuples: (chunk, lines in it, items refused as
        invalid, items that failed)."""
        # The hot loop of the writer thread: a plain prediction is written straight into the
        # chunk by PredictionLines (constant parts pre-serialised); the rest are built as dicts
        # and dumped here; render() only runs for what needs repair or cutting.
        # Lines are appended to one bytearray as they come, so each line's bytes object is
        # freed at once and its memory reused for the next: keeping a batch of them alive
        # and joining them at the end measured 3-4x slower (allocator churn, cache misses).
        chunk = bytearray()
        rendered = refused = failed = 0
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
                    if type(features) is RowBlock:  # a row of log_predictions, as log_prediction is given it
                        features, segment = features.row(segment)
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
            except Refused as why:  # ingest would refuse it: one line per cause, then counted only
                refused += 1
                self._report_refusal(str(why))
                continue
            except Exception:  # one bad event must not cost the others
                failed += 1
                _log.exception("mlmon: could not render an event; it is dropped")
                continue
            chunk += line
            rendered += 1
        return chunk, rendered, refused, failed

    def _report_refusal(self, message: str, level: int = logging.ERROR) -> None:
        if message not in self._reported and len(self._reported) < _MAX_REPORTED:
            self._reported.add(message)
            _log.log(level, "%s", message)

    def drop_invalid(self, message: str) -> None:
        """Count a log call that could not be read as dropped (reason ``invalid``); log ``message`` once."""
        self._emitter.count_dropped(INVALID)
        self._report_refusal(message, logging.WARNING)

    def _build_other(self, item: tuple[Any, ...]) -> dict[str, Any]:
        if item[0] == _FEEDBACK:
            _, ts, pid, actual = item
            return self._builder.feedback(ts, pid, actual)
        if item[0] == _PREDICTION_ERROR:
            _, ts, pid, error, message, latency_ms = item
            return self._builder.prediction_error(ts, pid, error, message, latency_ms)
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
