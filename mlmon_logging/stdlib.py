"""mlmon through the standard library's ``logging``, configurable with ``dictConfig``.

The log message names the event kind and ``extra=`` carries the arguments of
the matching :class:`~mlmon_logging.ModelLogger` method::

    log = logging.getLogger("mlmon.events")
    log.info("prediction", extra={"prediction_id": pid, "features": {"age": 41}, "prediction": 1})
    log.info("feedback", extra={"prediction_id": pid, "actual": 0})

Two pieces, use either:

* :class:`ModelEventHandler` - a handler that hands records to a non-blocking
  ``ModelLogger`` (queue, background thread, stdout/file/TCP sink);
* :class:`ModelEventFormatter` - a python-json-logger formatter that renders
  a record as a contract event line, for any handler (``FileHandler``,
  ``QueueHandler`` ...). It runs on the logging thread; pair it with
  :class:`SampleFilter` for sampling.

Example ``dictConfig``::

    {"version": 1,
     "handlers": {"mlmon": {"()": "mlmon_logging.stdlib.ModelEventHandler",
                            "model": "churn", "version": "3", "sink": "file:///var/log/mlmon/events.jsonl"}},
     "loggers": {"mlmon.events": {"handlers": ["mlmon"], "level": "INFO", "propagate": False}}}

Records whose message is not a model event kind are ignored by the handler
and rendered as plain JSON by the formatter.

A bad model-event record (``feedback`` without ``prediction_id``, a prediction
without ``prediction``, a naive ``timestamp`` ...) never reaches
``logging.Handler.handleError`` and its traceback: it is counted as dropped
(reason ``invalid``; the handler's ``model_logger.stats``, the formatter's
``dropped_by_reason``) and each distinct cause is logged once, as one warning
line on the ``mlmon_logging`` logger. A formatter cannot stop its handler from
writing, so for a dropped record it returns an empty line, which Logstash and
``mlmon ingest`` skip as blank.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from mlmon_logging.emitter import RENDER_FAILED
from mlmon_logging.events import EventBuilder, ModelIdentity, Task
from mlmon_logging.logger import ModelLogger
from mlmon_logging.processors import ARGUMENTS, DEFAULT_MAX_EVENT_BYTES, MODEL_KINDS, ModelEvents
from mlmon_logging.redaction import Action, Redactor
from mlmon_logging.render import EventTooLarge, check_limit, render
from mlmon_logging.sampling import check_rate, keep
from mlmon_logging.sinks import Sink

_RESERVED = frozenset(RESERVED_ATTRS) | {"message", "asctime"}


def _record_arguments(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


class ModelEventHandler(logging.Handler):
    """A logging handler in front of a non-blocking :class:`~mlmon_logging.ModelLogger`.

    Takes the ``ModelLogger`` arguments (``model``, ``version``, ``sink`` ...).
    ``emit`` only queues: it never blocks the logging thread on I/O.
    """

    def __init__(self, model: str, version: str, sink: str | Sink = "stdout", level: int | str = logging.NOTSET,
                 **options: Any) -> None:
        super().__init__(level)
        self.model_logger = ModelLogger(model, version, sink, **options)

    def emit(self, record: logging.LogRecord) -> None:
        kind = record.msg
        if kind not in MODEL_KINDS:
            return
        try:
            args = _record_arguments(record)
            pid = args.get("prediction_id")
            when = record.created
            mlog = self.model_logger
            if kind == "prediction":
                mlog.log_prediction(**{k: args.get(k) for k in ARGUMENTS["prediction"]},
                                    prediction_id=pid, timestamp=when)
            elif pid is None:
                raise ValueError(f"a {kind} record needs extra={{'prediction_id': ...}}")
            elif kind == "feedback":
                mlog.log_feedback(pid, args.get("actual"), timestamp=when)
            else:
                attributions = args.get("attributions")
                mlog.log_explanation(pid, {} if attributions is None else attributions, method=args.get("method"),
                                     base_value=args.get("base_value"), timestamp=when)
        except (TypeError, ValueError) as exc:  # the record's arguments: counted, one warning per cause
            self.model_logger.drop_invalid(f"mlmon: a {kind} record was dropped: {exc}")
        except Exception:
            self.handleError(record)  # a bug of ours: logging's own policy, report on stderr, never raise

    def flush(self) -> None:
        self.model_logger.flush()

    def close(self) -> None:
        try:
            self.model_logger.close()
        finally:
            super().close()


class ModelEventFormatter(OrjsonFormatter):
    """python-json-logger formatter: a model-event record -> one contract JSON line."""

    def __init__(self, model: str, version: str, *, task: Task | None = None, service: str | None = None,
                 service_version: str | None = None, environment: str | None = None, host: str | None = None,
                 labels: Mapping[str, str] | None = None, categorical: Iterable[str] = (),
                 redact: Mapping[str, Action] | None = None, redaction_key: bytes | str | None = None,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, **json_options: Any) -> None:
        super().__init__(**json_options)
        identity = ModelIdentity(model=model, version=version, task=task, service=service,
                                 service_version=service_version, environment=environment, host=host,
                                 labels=dict(labels or {}), categorical=frozenset(categorical))
        self._events = ModelEvents(EventBuilder(identity), level=logging.WARNING)
        self._redactor = Redactor(redact or {}, redaction_key)
        self._max_event_bytes = check_limit(max_event_bytes)
        self._too_large = 0

    @property
    def dropped(self) -> int:
        """Model-event records not rendered (each also written as an empty line)."""
        return self._events.dropped + self._too_large

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        reasons = self._events.dropped_by_reason
        if self._too_large:
            reasons[RENDER_FAILED] = reasons.get(RENDER_FAILED, 0) + self._too_large
        return reasons

    def format(self, record: logging.LogRecord) -> str:
        try:
            return super().format(record)
        except structlog.DropEvent:  # counted and reported once per cause by ModelEvents
            return ""
        except EventTooLarge as exc:
            self._too_large += 1
            logging.getLogger("mlmon_logging").warning("mlmon: a %s record was dropped: %s", record.msg, exc)
            return ""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        if record.msg in MODEL_KINDS:
            for key in _RESERVED:
                log_data.pop(key, None)
            log_data["event"] = record.msg
            log_data.setdefault("timestamp", record.created)
        else:
            log_data.setdefault("message", record.getMessage())

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        if log_data.get("event") not in MODEL_KINDS:
            return log_data
        return self._redactor(self._events(None, "info", log_data))

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        if "mlmon" not in log_data:
            return super().jsonify_log_record(log_data)
        return render(log_data, self._max_event_bytes)[:-1].decode("utf-8")


class SampleFilter(logging.Filter):
    """Keeps a record iff its ``prediction_id`` is in the sample (records without one pass)."""

    def __init__(self, rate: float, name: str = "") -> None:
        super().__init__(name)
        self.rate = check_rate(rate)

    def filter(self, record: logging.LogRecord) -> bool:
        pid = getattr(record, "prediction_id", None)
        return pid is None or keep(pid, self.rate)
