"""Building contract events (nested dicts) from what a model service logged.

One :class:`EventBuilder` per model; it holds the parts that never change
(model, service, labels) and turns captured arguments into the nested shape
of :mod:`mlmon_logging.contract`. Feature kinds, value coercion, NaN
cleaning, bad names and the family size cap are all decided here, in one
pass over each user mapping.

Bad user names (not matching ``contract.NAME_PATTERN``: dots, spaces, empty,
not a string, too long) never crash the service: the event is kept, the
offending entry is left out (a dotted name would otherwise nest and break
the mapping) and its name, as ``repr`` if it is not a string, is listed in
``mlmon.quality.invalid_names``; a warning is logged once per name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from mlmon_logging import contract
from mlmon_logging.blocks import RowBlock
from mlmon_logging.clock import TimestampFormatter
from mlmon_logging.ids import uuid7_from_ns
from mlmon_logging.plans import CATEGORICAL as _CATEGORICAL
from mlmon_logging.plans import DECLARED_CATEGORICAL as _DECLARED
from mlmon_logging.plans import INVALID as _INVALID
from mlmon_logging.plans import MAX_CACHED_NAMES as _MAX_CACHED_NAMES
from mlmon_logging.plans import NUMERIC as _NUMERIC
from mlmon_logging.plans import FeatureSplitter
from mlmon_logging.values import (
    MISSING,
    NOT_FINITE,
    Unrepresentable,
    classify,
    is_fractional,
    is_missing,
    safe_repr,
    to_label,
    to_number,
)

Task = Literal["classification", "regression"]
TASKS: Final = ("classification", "regression")
EventDict = dict[str, Any]

_log = logging.getLogger("mlmon_logging")
_NAME = re.compile(contract.NAME_PATTERN)
#: ``event.kind`` and ``event.dataset`` per event kind.
_ECS_KIND_AND_DATASET: Final[dict[str, tuple[str, str]]] = {
    kind: ("metric" if kind == "emitter" else "event", dataset) for kind, dataset in contract.DATASETS.items()}
_SCHEMA_VERSION: Final = contract.SCHEMA_VERSION
#: abs() bound under which an int is converted to float without the general coercion.
_FLOAT_SAFE_INT: Final = 2**53
_MAX_KEYWORD: Final = contract.MAX_KEYWORD_CHARS


def valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.match(name) is not None


def check_name(name: str, what: str) -> str:
    """Validate a name given in configuration (there a bad name is a programming error)."""
    if not valid_name(name):
        raise ValueError(f"{what} {name!r} does not match {contract.NAME_PATTERN}")
    return name


@dataclass(frozen=True)
class ModelIdentity:
    """What every event of one model service carries."""

    model: str
    version: str
    #: None: inferred from the first event (see :class:`EventBuilder`).
    task: Task | None = None
    service: str | None = None
    service_version: str | None = None
    environment: str | None = None
    host: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    categorical: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for what, value in (("model", self.model), ("version", self.version)):
            if not isinstance(value, str) or not value or len(value) > 256:
                raise ValueError(f"{what} must be a non-empty string of at most 256 characters, got {value!r}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS} (or left out to infer it), got {self.task!r}")
        for name in self.labels:
            check_name(name, "label name")
        for name in self.categorical:
            check_name(name, "categorical feature")


class Refused(ValueError):
    """An event ingest would refuse whatever else it carries: it is not written, but counted as dropped.

    The message names the model, the cause and the fix, and says nothing about the value, so
    that one line per cause is enough (callers log each distinct message once).
    """


class TaskMismatch(Refused):
    """A regression output under a classification that was inferred, not given: refused."""


class _Quality:
    """Flags collected while building one event; nothing is allocated until a flag is raised."""

    __slots__ = ("flags",)

    def __init__(self) -> None:
        self.flags: dict[str, Any] | None = None

    def add(self, key: str, field_name: str) -> None:
        if self.flags is None:
            self.flags = {}
        self.flags.setdefault(key, []).append(field_name)

    def truncate(self) -> None:
        if self.flags is None:
            self.flags = {}
        self.flags["truncated"] = True


class EventBuilder:
    """Builds the contract's nested event dicts for one model.

    Each model event has two paths. The *plain* path covers what a service
    logs on almost every request - ``str`` / ``int`` / finite ``float``
    values under valid names, nothing to flag - and builds the final nested
    dict in one pass around sub-dicts that never change (``ecs``,
    ``service``, ``host``, ``labels``, ``mlmon.model``, built once here and
    shared by every event: orjson only reads them). Anything else returns
    None from the plain path and takes the *careful* path, which coerces,
    cleans and flags value by value. Both give the same event for the inputs
    the plain path accepts.

    Without a task in the identity, the first event decides it: a prediction (or
    feedback actual) that is a non-integral number given without a score is a
    regression output; anything else makes a classification. Once classification
    was inferred, such a value raises :class:`TaskMismatch` rather than become a
    label string. Until the first event the plain path declines.

    Not thread-safe: each emitter thread (or formatter) owns one.
    """

    def __init__(self, identity: ModelIdentity, sample_rate: float = 1.0) -> None:
        self.identity = identity
        self.sample_rate = sample_rate
        self._sampled = sample_rate != 1.0
        self._undecided = identity.task is None
        self._inferred = identity.task is None  # a classification inferred, not given, refuses numbers
        self._timestamp = TimestampFormatter()
        self.timestamp_text = self._timestamp  # ``@timestamp`` of a time in ns
        self._ecs = {"version": contract.ECS_VERSION}
        service: dict[str, str] = {"name": identity.service or identity.model}
        if identity.service_version:
            service["version"] = identity.service_version
        if identity.environment:
            service["environment"] = identity.environment
        self._service = service
        host_and_labels: EventDict = {}
        if identity.host:
            host_and_labels["host"] = {"name": identity.host}
        if identity.labels:
            host_and_labels["labels"] = {k: str(v) for k, v in identity.labels.items()}
        self._host_and_labels = host_and_labels
        self._set_task(identity.task or "classification")
        self._emitter_model = {"name": identity.model, "version": identity.version}
        # feature name -> _NUMERIC (has had a number) / _CATEGORICAL (only strings so far) / _DECLARED / _INVALID
        self._routes: dict[object, int] = {name: _DECLARED for name in identity.categorical}
        self._features_plain = FeatureSplitter(self._routes, valid_name)
        self._split_features = self._features_plain.split_features  # bound once: called per event
        # Attributions are numbers whatever the feature's kind: their own splitter, no shared routes.
        self._attributions_plain = FeatureSplitter({}, valid_name)
        self._valid_names: set[str] = set()
        self._warned: set[str] = set()

    def _set_task(self, task: Task) -> None:
        self.task: Task = task
        self._classification = task == "classification"
        self._prediction_key = "label" if self._classification else "value"
        self._model = {"name": self.identity.model, "version": self.identity.version, "task": task}
        self.model_fragment = orjson.Fragment(orjson.dumps(self._model))  # the same, serialised once

    def _check_task(self, value: Any, has_score: bool, what: str, always_decide: bool = False) -> None:
        """Decide an inferred task on the first usable output; refuse a regression output after it.

        A missing or non-finite output (refused anyway) decides nothing, unless ``always_decide``.
        """
        fractional = not has_score and is_fractional(value)
        if self._undecided:
            if not always_decide and (is_missing(value) or to_number(value) is NOT_FINITE):
                return
            self._undecided = False
            self._set_task("regression" if fractional else "classification")
        elif fractional and self._inferred and self._classification:
            raise TaskMismatch(
                f"mlmon: model {self.identity.model!r} version {self.identity.version!r} logged a {what} that is a "
                "fractional number without a score (so not a class label) but its task was "
                "inferred as 'classification' from its first event; such events are dropped: "
                "pass task='regression' (or task='classification' if it is a label) to ModelLogger")

    # --- the common envelope ----------------------------------------------------
    def _envelope(self, kind: contract.Kind, ts_ns: int, mlmon: Any) -> EventDict:
        return self.envelope_of(kind, self._timestamp(ts_ns), uuid7_from_ns(ts_ns), mlmon)

    def envelope_of(self, kind: contract.Kind, timestamp: str, event_id: str, mlmon: Any) -> EventDict:
        """The whole event around ``mlmon``, given its ``@timestamp`` text and ``event.id``."""
        # One dict display: the constant sub-dicts are shared, only the event's own parts are new.
        ecs_kind, dataset = _ECS_KIND_AND_DATASET[kind]
        return {
            "@timestamp": timestamp,
            "ecs": self._ecs,
            "event": {"kind": ecs_kind, "dataset": dataset, "id": event_id, "module": "mlmon"},
            "service": self._service,
            **self._host_and_labels,
            "mlmon": mlmon,
        }

    def _model_event(self, kind: contract.Kind, ts_ns: int, prediction_id: object, quality: _Quality,
                     body: EventDict) -> EventDict:
        mlmon: EventDict = {"schema_version": contract.SCHEMA_VERSION, "model": self._model, **body}
        pid = prediction_id if type(prediction_id) is str else str(prediction_id)
        if len(pid) > _MAX_KEYWORD:
            pid = pid[:_MAX_KEYWORD]
            quality.truncate()
        mlmon.setdefault("prediction", {})["id"] = pid
        if self.sample_rate != 1.0:
            mlmon["sample_rate"] = self.sample_rate
        if quality.flags:
            mlmon["quality"] = quality.flags
        return self._envelope(kind, ts_ns, mlmon)

    # --- the three model events --------------------------------------------------
    def prediction(self, ts_ns: int, prediction_id: object, features: Any, prediction: Any = None,
                   score: Any = None, latency_ms: Any = None, segment: Any = None, scores: Any = None) -> EventDict:
        return (self.plain_prediction(ts_ns, prediction_id, features, prediction, score, latency_ms, segment, scores)
                or self.careful_prediction(ts_ns, prediction_id, features, prediction, score, latency_ms, segment,
                                           scores))

    def plain_prediction(self, ts_ns: int, prediction_id: object, features: Any, prediction: Any,
                         score: Any, latency_ms: Any, segment: Any, scores: Any) -> EventDict | None:
        """The prediction event if every input is plain, else None (then call ``careful_prediction``)."""
        mlmon = self.plain_prediction_body(self._model, (None, ts_ns, prediction_id, features, prediction, score,
                                                         latency_ms, segment, scores))
        return None if mlmon is None else self._envelope("prediction", ts_ns, mlmon)

    def plain_prediction_body(self, model: Any, args: tuple[Any, ...]) -> EventDict | None:
        """The ``mlmon`` object of a plain prediction event, or None.

        ``args`` is ModelLogger's queue tuple: (kind, ts_ns, prediction id, features,
        prediction, score, latency_ms, segment, scores) - one argument instead of eight, as
        this runs once per event. ``model`` is what goes under ``mlmon.model``: the model
        dict, or the same pre-serialised as an ``orjson.Fragment`` (:mod:`mlmon_logging.lines`).
        A row of ``log_predictions`` carries a :class:`~mlmon_logging.blocks.RowBlock` as its
        features and its row number as its segment (:mod:`mlmon_logging.blocks` says why).
        """
        _, _, prediction_id, features, prediction, score, latency_ms, segment, scores = args
        if self._undecided:
            return None  # the careful path decides the task
        # Exact type checks on purpose: bool is an int subclass and numpy floats are float
        # subclasses; both need the careful path's coercion.
        if type(prediction_id) is not str or len(prediction_id) > _MAX_KEYWORD or scores is not None:
            return None
        label: Any
        if prediction is None:
            return None  # refused by the careful path
        elif self._classification:
            if type(prediction) is str:
                if len(prediction) > _MAX_KEYWORD:
                    return None
                label = prediction
            elif type(prediction) is int:
                label = str(prediction)
            else:
                return None
        elif type(prediction) is not float or prediction - prediction != 0.0:  # True for NaN and +-inf
            return None
        else:
            label = prediction
        if score is not None and (type(score) is not float or score - score != 0.0):
            return None
        if latency_ms is not None and (type(latency_ms) is not float or latency_ms - latency_ms != 0.0
                                       or latency_ms < 0.0):
            return None
        # Key order as the careful path writes it: label/value, score, latency_ms, id.
        pred: EventDict
        if score is not None and latency_ms is not None:  # the usual case: one display
            pred = {self._prediction_key: label, "score": score, "latency_ms": latency_ms, "id": prediction_id}
        else:
            pred = {self._prediction_key: label}
            if score is not None:
                pred["score"] = score
            if latency_ms is not None:
                pred["latency_ms"] = latency_ms
            pred["id"] = prediction_id
        mlmon: EventDict = {"schema_version": _SCHEMA_VERSION, "model": model, "prediction": pred}
        if features is not None:
            feats: dict[str, Any] | orjson.Fragment | None  # a RowBlock row's features come rendered
            if type(features) is dict:
                feats = self._split_features(features)
            elif type(features) is RowBlock:  # a row of log_predictions: the segment slot holds its number
                feats = features.features(segment, self._features_plain)
                segment = features.segment(segment) if features.has_segment else None
            else:
                return None
            if feats is None:
                return None
            if feats:
                mlmon["features"] = feats
        if segment is not None:
            if type(segment) is not dict or not self._plain_labels(segment):
                return None
            if segment:
                mlmon["segment"] = dict(segment)
        if self._sampled:
            mlmon["sample_rate"] = self.sample_rate
        return mlmon

    def _plain_labels(self, mapping: dict[Any, Any]) -> bool:
        """True if every value is a str under a valid name: the mapping goes out as it is."""
        if len(mapping) > contract.MAX_FAMILY_FIELDS:
            return False
        known = self._valid_names
        for name, value in mapping.items():
            if type(value) is not str:
                return False
            if name not in known:
                if not valid_name(name):
                    return False
                if len(known) < _MAX_CACHED_NAMES:
                    known.add(name)
        return True

    def careful_prediction(self, ts_ns: int, prediction_id: object, features: Any, prediction: Any,
                            score: Any, latency_ms: Any, segment: Any, scores: Any) -> EventDict:
        self._check_task(prediction, score is not None or scores is not None, "prediction")
        q = _Quality()
        pred: EventDict = {}
        if self._classification:
            self._put_keyword(pred, "label", prediction, "mlmon.prediction.label", q)
        else:
            self._put_number(pred, "value", prediction, "mlmon.prediction.value", q)
        self._require_output(pred.get(self._prediction_key), prediction, "prediction", "prediction=")
        self._put_number(pred, "score", score, "mlmon.prediction.score", q)
        self._put_latency(pred, latency_ms, q)
        if scores is not None:
            class_scores = self._numbers_by_label(scores, "mlmon.prediction.scores.", q)
            if class_scores:
                pred["scores"] = class_scores
        body: EventDict = {"prediction": pred}
        numeric, categorical = self._features_one_by_one(features, q)
        feats: EventDict = {}
        if numeric:
            feats["numeric"] = numeric
        if categorical:
            feats["categorical"] = categorical
        if feats:
            body["features"] = feats
        if segment is not None:
            seg = self._labels_by_name(segment, "mlmon.segment.", q)
            if seg:
                body["segment"] = seg
        return self._model_event("prediction", ts_ns, prediction_id, q, body)

    def feedback(self, ts_ns: int, prediction_id: object, actual: Any) -> EventDict:
        self._check_task(actual, False, "actual")
        q = _Quality()
        fb: EventDict = {}
        if self._classification:
            self._put_keyword(fb, "actual", actual, "mlmon.feedback.actual", q)
        else:
            self._put_number(fb, "actual_value", actual, "mlmon.feedback.actual_value", q)
        self._require_output(fb.get("actual" if self._classification else "actual_value"), actual, "feedback",
                             "actual")
        return self._model_event("feedback", ts_ns, prediction_id, q, {"feedback": fb})

    def explanation(self, ts_ns: int, prediction_id: object, attributions: Any, method: Any = None,
                    base_value: Any = None) -> EventDict:
        if self._undecided:
            self._check_task(None, False, "explanation", always_decide=True)
        q = _Quality()
        expl: EventDict = {}
        if method is not None:
            self._put_keyword(expl, "method", method, "mlmon.explanation.method", q)
        self._put_number(expl, "base_value", base_value, "mlmon.explanation.base_value", q)
        plain = self._attributions_plain.split(attributions) if type(attributions) is dict else None
        if plain is not None and not plain[1]:  # all numbers: no string to flag
            values = plain[0]
        else:
            values = self._numbers_by_name(attributions, "mlmon.attributions.", q)
        body: EventDict = {"attributions": values}
        if expl:
            body["explanation"] = expl
        return self._model_event("explanation", ts_ns, prediction_id, q, body)

    def prediction_error(self, ts_ns: int, prediction_id: object, error: Any, message: Any = None,
                         latency_ms: Any = None) -> EventDict:
        """A prediction the model failed to make: ``error.type`` / ``error.message`` (ECS), no output.

        ``error`` is an exception (its class name is the type, its text the message) or a short
        code string. Carries no task: a failure says nothing about the model's outputs.
        """
        q = _Quality()
        if isinstance(error, BaseException):
            error_type: Any = type(error).__name__
            message = str(error) if message is None else message
        else:
            error_type = error
        err: EventDict = {}
        self._put_keyword(err, "type", error_type, "error.type", q)
        if not err.get("type"):
            err["type"] = "unknown"  # required: a failure without a name is still a failure
        if message is not None:
            self._put_keyword(err, "message", message, "error.message", q)
        pred: EventDict = {}
        self._put_latency(pred, latency_ms, q)
        pid = prediction_id if type(prediction_id) is str else str(prediction_id)
        if len(pid) > _MAX_KEYWORD:
            pid = pid[:_MAX_KEYWORD]
            q.truncate()
        pred["id"] = pid
        mlmon: EventDict = {"schema_version": contract.SCHEMA_VERSION, "model": self._emitter_model,
                            "prediction": pred}
        if q.flags:
            mlmon["quality"] = q.flags
        event = self._envelope("prediction_error", ts_ns, mlmon)
        event["error"] = err
        return event

    def emitter(self, ts_ns: int, counts: Mapping[str, int]) -> EventDict:
        """The emitter's periodic telemetry event (``mlmon.emitter``)."""
        return self._envelope("emitter", ts_ns, {
            "schema_version": contract.SCHEMA_VERSION,
            "model": self._emitter_model,
            "emitter": dict(counts),
        })

    # --- features: the careful path -----------------------------------------------------
    def _features_one_by_one(self, features: Any, q: _Quality) -> tuple[EventDict, EventDict]:
        numeric: EventDict = {}
        categorical: EventDict = {}
        if features is None:
            return numeric, categorical
        routes = self._routes
        for count, (name, value) in enumerate(_items(features, "mlmon.features", q)):
            if count >= contract.MAX_FAMILY_FIELDS:
                q.truncate()
                break
            route = routes.get(name)
            if route == _NUMERIC:
                t = type(value)
                if t is float and value - value == 0.0:  # False for NaN and +-inf
                    numeric[name] = value
                    continue
                if t is int and -_FLOAT_SAFE_INT < value < _FLOAT_SAFE_INT:
                    numeric[name] = float(value)
                    continue
            elif route == _CATEGORICAL and type(value) is str:
                categorical[name] = value
                continue
            if route == _DECLARED:
                self._put_label(categorical, name, value, "mlmon.features.categorical." + name, q)
            elif route == _INVALID:
                self._invalid(name, "feature", q)
            else:
                self._feature_slow(name, value, route, numeric, categorical, q)
        return numeric, categorical

    def _feature_slow(self, name: Any, value: Any, route: int | None, numeric: EventDict,
                      categorical: EventDict, q: _Quality) -> None:
        if route is None:
            if not valid_name(name):
                self._remember(name, _INVALID)
                self._invalid(name, "feature", q)
                return
        kind, coerced = classify(value)
        if coerced is MISSING:
            # Left out: downstream, an absent field and a null count alike as missing,
            # and a missing value says nothing about the feature's kind.
            return
        if isinstance(coerced, Unrepresentable):
            kind = "categorical"  # written as its repr, under the categorical field
        if route is None:
            self._remember(name, _NUMERIC if kind == "numeric" else _CATEGORICAL)
        elif (route == _NUMERIC) != (kind == "numeric"):
            # Each value keeps its own kind; the change is flagged, never coerced away.
            q.add("kind_changed_fields", ("mlmon.features.numeric." if kind == "numeric"
                                          else "mlmon.features.categorical.") + name)
            if kind == "numeric":  # its first number: numeric from now on
                self._routes[name] = _NUMERIC
                self._features_plain.forget_plans()
        target = numeric if kind == "numeric" else categorical
        prefix = "mlmon.features.numeric." if kind == "numeric" else "mlmon.features.categorical."
        if coerced is NOT_FINITE:
            target[name] = None
            q.add("null_fields", prefix + name)
        elif isinstance(coerced, Unrepresentable):
            categorical[name] = str(coerced)
            q.add("unserializable_fields", "mlmon.features.categorical." + name)
        else:
            target[name] = coerced

    def _remember(self, name: object, route: int) -> None:
        if len(self._routes) < _MAX_CACHED_NAMES:
            try:
                self._routes[name] = route
            except TypeError:  # unhashable names are never cached
                pass

    def _invalid(self, name: object, what: str, q: _Quality) -> None:
        shown = name if isinstance(name, str) else safe_repr(name)
        shown = str(shown)[:128]
        q.add("invalid_names", shown)
        if shown not in self._warned and len(self._warned) < _MAX_CACHED_NAMES:
            self._warned.add(shown)
            _log.warning("mlmon: %s name %r does not match %s; left out of the event and listed in "
                         "mlmon.quality.invalid_names", what, shown, contract.NAME_PATTERN)

    # --- other user-named families -------------------------------------------------
    def _numbers_by_name(self, mapping: Any, prefix: str, q: _Quality, labels_as_names: bool = False) -> EventDict:
        out: EventDict = {}
        if mapping is None:
            return out
        for count, (name, value) in enumerate(_items(mapping, prefix.rstrip("."), q)):
            if count >= contract.MAX_FAMILY_FIELDS:
                q.truncate()
                break
            if labels_as_names:
                label = to_label(name)
                name = label if isinstance(label, str) and not isinstance(label, Unrepresentable) else name
            if not valid_name(name):
                self._invalid(name, prefix.rstrip("."), q)
                continue
            self._put_number(out, name, value, prefix + name, q)
        return out

    def _numbers_by_label(self, mapping: Any, prefix: str, q: _Quality) -> EventDict:
        return self._numbers_by_name(mapping, prefix, q, labels_as_names=True)

    def _labels_by_name(self, mapping: Any, prefix: str, q: _Quality) -> EventDict:
        out: EventDict = {}
        for count, (name, value) in enumerate(_items(mapping, prefix.rstrip("."), q)):
            if count >= contract.MAX_FAMILY_FIELDS:
                q.truncate()
                break
            if not valid_name(name):
                self._invalid(name, prefix.rstrip("."), q)
                continue
            self._put_label(out, name, value, prefix + name, q)
        return out

    # --- single values ------------------------------------------------------------
    @staticmethod
    def _put_number(target: EventDict, key: str, value: Any, field_name: str, q: _Quality) -> None:
        if value is None:
            return
        number = to_number(value)
        if number is MISSING:
            return
        if number is NOT_FINITE:
            target[key] = None
            q.add("null_fields", field_name)
        elif isinstance(number, Unrepresentable):
            # Not a number: the field is typed double, so the repr cannot go there.
            q.add("unserializable_fields", field_name)
        else:
            target[key] = number

    @classmethod
    def _put_latency(cls, target: EventDict, value: Any, q: _Quality) -> None:
        """``latency_ms``; a negative one (a clock step, or a bug), which ingest refuses, becomes a flagged null."""
        cls._put_number(target, "latency_ms", value, "mlmon.prediction.latency_ms", q)
        if (target.get("latency_ms") or 0.0) < 0.0:
            target["latency_ms"] = None
            q.add("null_fields", "mlmon.prediction.latency_ms")

    @classmethod
    def _put_keyword(cls, target: EventDict, key: str, value: Any, field_name: str, q: _Quality) -> None:
        """A label-like value of a fixed keyword field, cut to MAX_KEYWORD_CHARS (and flagged) if longer."""
        cls._put_label(target, key, value, field_name, q)
        text = target.get(key)
        if type(text) is str and len(text) > _MAX_KEYWORD:
            target[key] = text[:_MAX_KEYWORD]
            q.truncate()

    def _require_output(self, written: Any, given: Any, kind: str, argument: str) -> None:
        """Refuse a prediction/feedback whose output did not survive coercion: ingest would refuse it."""
        if written is not None:
            return
        number = to_number(given) if given is not None else MISSING
        if given is None or number is MISSING:
            cause = f"no {argument} (None or a missing value)"
        elif number is NOT_FINITE:
            cause = f"a NaN or infinite {argument}"
        else:
            cause = f"a {argument} that is not a number, under task 'regression'"
        fix = ("pass the model's output as prediction=, or log a failed prediction with log_prediction_error()"
               if kind == "prediction" else "pass the ground truth as actual=")
        raise Refused(f"mlmon: model {self.identity.model!r} version {self.identity.version!r} logged a {kind} "
                      f"with {cause}; ingest refuses such events, so they are not written but counted as dropped "
                      f"(reason 'invalid'): {fix}")

    @staticmethod
    def _put_label(target: EventDict, key: str, value: Any, field_name: str, q: _Quality) -> None:
        label = to_label(value)
        if label is MISSING:
            return
        if label is NOT_FINITE:
            target[key] = None
            q.add("null_fields", field_name)
        elif isinstance(label, Unrepresentable):
            target[key] = str(label)
            q.add("unserializable_fields", field_name)
        else:
            target[key] = label


def _items(mapping: Any, what: str, q: _Quality) -> Iterable[tuple[Any, Any]]:
    """(name, value) pairs of a dict, pandas Series or any object with .items().

    Anything else (a list, a bare array) cannot be named: the whole mapping is
    left out and ``what`` (its field path, e.g. ``mlmon.prediction.scores``) flagged.
    """
    if type(mapping) is dict:
        return mapping.items()
    items = getattr(mapping, "items", None)
    if callable(items):
        try:
            return list(items())
        except Exception:
            pass
    q.add("unserializable_fields", what)
    return ()
