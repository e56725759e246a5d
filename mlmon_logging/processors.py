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

import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import structlog

from mlmon_logging.events import EventBuilder, ModelIdentity, Task, valid_name
from mlmon_logging.ids import new_id
from mlmon_logging.redaction import Action, Redactor
from mlmon_logging.render import check_limit, render
from mlmon_logging.sampling import check_rate, keep
from mlmon_logging.values import timestamp_ns, to_label

EventDict = dict[str, Any]
MODEL_KINDS: Final = ("prediction", "feedback", "explanation")
DEFAULT_MAX_EVENT_BYTES: Final = 64 * 1024

#: Keyword arguments each kind takes (those of the ModelLogger methods).
ARGUMENTS: Final[dict[str, tuple[str, ...]]] = {
    "prediction": ("features", "prediction", "score", "latency_ms", "segment", "scores"),
    "feedback": ("actual",),
    "explanation": ("attributions", "method", "base_value"),
}


class ModelEvents:
    """Processor: a ``prediction`` / ``feedback`` / ``explanation`` log call -> contract event dict."""

    def __init__(self, builder: EventBuilder) -> None:
        self.builder = builder

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        kind = event_dict.get("event")
        if kind not in MODEL_KINDS:
            return event_dict
        raw = dict(event_dict)
        raw.pop("event")
        when = raw.pop("timestamp", None)
        ts_ns = time.time_ns() if when is None else timestamp_ns(when)
        prediction_id = raw.pop("prediction_id", None)
        if prediction_id is None:
            if kind != "prediction":
                raise ValueError(f"a {kind} event needs prediction_id=")
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
    """Final processor: the event as one orjson line (bytes), cut to ``max_event_bytes``.

    Use with ``structlog.BytesLoggerFactory()``.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, newline: bool = False) -> None:
        self.max_event_bytes = check_limit(max_event_bytes)
        # BytesLogger adds its own newline; the emitter's sinks want it in the line.
        self.newline = newline

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> bytes:
        line = render(event_dict, self.max_event_bytes)
        return line if self.newline else line[:-1]


def model_event_processors(model: str, version: str, *, task: Task = "classification",
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
