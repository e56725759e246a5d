"""mlmon as structlog processors, for services that already configure structlog.

>>> import structlog, mlmon_logging
>>> from mlmon_logging.processors import model_event_processors
>>> structlog.configure(
...     processors=model_event_processors(model="churn", version="3", categorical=["plan"]),
...     logger_factory=structlog.BytesLoggerFactory(),
... )
>>> log = structlog.get_logger()
>>> pid = mlmon_logging.new_id()
>>> log.info("prediction", prediction_id=pid, features={"age": 41, "plan": "pro"}, prediction=1, score=0.83)
>>> log.info("feedback", prediction_id=pid, actual=0)

Put the chain last (it ends with the renderer); the usual processors may run
before it: ``merge_contextvars``, ``add_log_level``, ``add_logger_name``,
``StackInfoRenderer``, ``format_exc_info``, ``CallsiteParameterAdder`` and
``TimeStamper`` add logging metadata, which model events leave out (the
``@timestamp`` is the time of the log call; a ``TimeStamper`` with its default
key replaces a ``timestamp=`` argument, so log backdated events without one,
or with ``ModelLogger``). Lines are bytes for ``structlog.BytesLoggerFactory()``
and text for any other logger factory. A model log call never raises: a bad
one (``feedback`` without ``prediction_id``, a naive ``timestamp``) is one
error line on the ``mlmon_logging`` logger, and the event is dropped and
counted in ``ModelEvents.dropped``.

The event name picks the kind (``prediction``, ``feedback``, ``explanation``);
the keyword arguments are those of :class:`mlmon_logging.ModelLogger`'s
methods. Other keys (e.g. values bound with ``log.bind(team="growth")``)
become ``labels.<key>`` strings. Log lines with any other event name pass
through unchanged, so one configuration can serve an app's ordinary logs too.

This path is synchronous: it runs on the calling thread. For the request
path, prefer ``ModelLogger``, which runs these same steps on a background
thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
import structlog

from mlmon_logging.emitter import INVALID, RENDER_FAILED
from mlmon_logging.events import EventBuilder, ModelIdentity, Refused, Task, valid_name
from mlmon_logging.ids import new_id
from mlmon_logging.redaction import Action, Redactor
from mlmon_logging.render import JSON_OPTIONS, EventTooLarge, check_limit, render
from mlmon_logging.sampling import check_rate, keep
from mlmon_logging.values import safe_repr, timestamp_ns, to_label

EventDict = dict[str, Any]
_log = logging.getLogger("mlmon_logging")
#: Keys structlog's own processors add (and the stdlib bridge's): logging metadata, never labels.
STRUCTLOG_KEYS: Final = frozenset({
    "level", "logger", "stack", "stack_info", "exception", "exc_info", "positional_args", "_record",
    "_from_structlog", "pathname", "filename", "module", "func_name", "lineno", "thread", "thread_name",
    "process", "process_name"})
#: Distinct error lines reported per processor; past this they are only counted.
_MAX_REPORTED: Final = 100
MODEL_KINDS: Final = ("prediction", "feedback", "explanation")
DEFAULT_MAX_EVENT_BYTES: Final = 64 * 1024

#: Keyword arguments each kind takes (those of the ModelLogger methods).
ARGUMENTS: Final[dict[str, tuple[str, ...]]] = {
    "prediction": ("features", "prediction", "score", "latency_ms", "segment", "scores"),
    "feedback": ("actual",),
    "explanation": ("attributions", "method", "base_value"),
}


class _Refusals:
    """Drops counted by reason (of ``emitter.DROP_REASONS``), each distinct message logged once as one line."""

    def __init__(self, level: int = logging.ERROR) -> None:
        self.by_reason: dict[str, int] = {}
        self._level = level
        self._reported: set[str] = set()

    @property
    def dropped(self) -> int:
        return sum(self.by_reason.values())

    def drop(self, message: str, reason: str = INVALID) -> None:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if message not in self._reported and len(self._reported) < _MAX_REPORTED:
            self._reported.add(message)
            _log.log(self._level, "%s", message)


class ModelEvents:
    """Processor: a ``prediction`` / ``feedback`` / ``explanation`` log call -> contract event dict.

    Never raises on a bad call: it logs one line per distinct cause (at ``level``) and drops the
    event (``dropped`` counts them, ``dropped_by_reason`` by reason).
    """

    def __init__(self, builder: EventBuilder, level: int = logging.ERROR) -> None:
        self.builder = builder
        self._refusals = _Refusals(level)

    @property
    def dropped(self) -> int:
        return self._refusals.dropped

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        return dict(self._refusals.by_reason)

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        kind = event_dict.get("event")
        if kind not in MODEL_KINDS:
            return event_dict
        try:
            return self.build(kind, event_dict)
        except Refused as refused:  # ingest would refuse the event: the message names the cause and the fix
            self._refusals.drop(str(refused))
        except (TypeError, ValueError) as exc:  # the caller's arguments: say which and how to fix it
            self._refusals.drop(f"mlmon: a {kind} log call was dropped: {exc}")
        except Exception as exc:  # a bug of ours must not reach the caller either
            self._refusals.drop(f"mlmon: a {kind} log call was dropped: {type(exc).__name__}: {exc}", RENDER_FAILED)
        raise structlog.DropEvent

    def build(self, kind: str, event_dict: EventDict) -> EventDict:
        """The contract event of a model log call (raises on a bad call)."""
        raw = {k: v for k, v in event_dict.items() if k not in STRUCTLOG_KEYS}
        raw.pop("event")
        ts_ns = _event_time(raw.pop("timestamp", None))
        prediction_id = raw.pop("prediction_id", None)
        if prediction_id is None:
            if kind != "prediction":
                raise ValueError(f"{kind} needs prediction_id= (the id log_prediction returned or that you "
                                 "passed to it)")
            prediction_id = new_id()
        args = {name: raw.pop(name, None) for name in ARGUMENTS[kind]}
        if kind == "prediction":
            event = self.builder.prediction(ts_ns, prediction_id, **args)
        elif kind == "feedback":
            event = self.builder.feedback(ts_ns, prediction_id, **args)
        else:
            event = self.builder.explanation(ts_ns, prediction_id, **args)
        _add_labels(event, raw)
        return event


class Sample:
    """Processor: drops model events of predictions outside the sample (consistently by prediction id)."""

    def __init__(self, rate: float) -> None:
        self.rate = check_rate(rate)

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        prediction = event_dict.get("mlmon", {}).get("prediction") if isinstance(event_dict.get("mlmon"), dict) else None
        if isinstance(prediction, dict) and "id" in prediction and not keep(prediction["id"], self.rate):
            raise structlog.DropEvent
        return event_dict


class Redact:
    """Processor: drops or hashes configured feature / segment names (see :mod:`mlmon_logging.redaction`)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        return self.redactor(event_dict)


class ContractRenderer:
    """Final processor: the event as one orjson line, cut to ``max_event_bytes``.

    Bytes for a ``structlog.BytesLogger`` (``structlog.BytesLoggerFactory()``), text for any
    other logger, which would otherwise write ``b'...'``. Other log lines (not model events)
    are rendered as JSON too, a value orjson cannot serialise as its repr.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, newline: bool = False) -> None:
        self.max_event_bytes = check_limit(max_event_bytes)
        # BytesLogger adds its own newline; the emitter's sinks want it in the line.
        self.newline = newline
        self._refusals = _Refusals()

    @property
    def dropped(self) -> int:
        return self._refusals.dropped

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        return dict(self._refusals.by_reason)

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> bytes | str:
        try:
            if isinstance(event_dict.get("mlmon"), dict):
                line = render(event_dict, self.max_event_bytes)
            else:  # an ordinary log line passing through
                line = orjson.dumps(event_dict, default=_repr_text, option=JSON_OPTIONS | orjson.OPT_NON_STR_KEYS)
        except (EventTooLarge, orjson.JSONEncodeError, TypeError) as exc:
            self._refusals.drop(f"mlmon: a log line could not be rendered and was dropped: {exc}", RENDER_FAILED)
            raise structlog.DropEvent from None
        if not self.newline:
            line = line[:-1]
        return line if isinstance(logger, structlog.BytesLogger) else line.decode("utf-8")


def _repr_text(value: Any) -> str:
    return str(safe_repr(value))


def _event_time(when: Any) -> int:
    """ns of a ``timestamp`` value: the caller's datetime or Unix seconds, else now.

    A string there was put by a ``TimeStamper`` a moment ago: an ISO 8601 one with an offset is
    read as it is; any other (a naive local time, a custom format) stands for now.
    """
    if when is None:
        return time.time_ns()
    if isinstance(when, str):
        try:
            parsed = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return time.time_ns()
        return timestamp_ns(parsed) if parsed.tzinfo is not None else time.time_ns()
    return timestamp_ns(when)


def model_event_processors(model: str, version: str, *, task: Task | None = None,
                           service: str | None = None, service_version: str | None = None,
                           environment: str | None = None, host: str | None = None,
                           labels: Mapping[str, str] | None = None, categorical: Iterable[str] = (),
                           redact: Mapping[str, Action] | None = None, redaction_key: bytes | str | None = None,
                           sample_rate: float = 1.0,
                           max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> list[Any]:
    """The whole mlmon chain for ``structlog.configure(processors=...)``, renderer included."""
    identity = ModelIdentity(model=model, version=version, task=task, service=service,
                             service_version=service_version, environment=environment, host=host,
                             labels=dict(labels or {}), categorical=frozenset(categorical))
    chain: list[Any] = [ModelEvents(EventBuilder(identity, check_rate(sample_rate)))]
    if sample_rate < 1.0:
        chain.append(Sample(sample_rate))
    redactor = Redactor(redact or {}, redaction_key)
    if redactor:
        chain.append(Redact(redactor))
    chain.append(ContractRenderer(max_event_bytes))
    return chain


def _add_labels(event: EventDict, extra: Mapping[str, Any]) -> None:
    """Leftover keyword arguments (bound context) -> ``labels.<key>`` strings."""
    if not extra:
        return
    labels = dict(event.get("labels") or {})
    for key, value in extra.items():
        label = to_label(value)
        if valid_name(key) and isinstance(label, str):
            labels[key] = str(label)
        else:
            event["mlmon"].setdefault("quality", {}).setdefault("invalid_names", []).append(str(key)[:128])
    if labels:
        event["labels"] = labels
