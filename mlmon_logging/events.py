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
import math
import re
from operator import itemgetter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from mlmon_logging import contract
from mlmon_logging.clock import TimestampFormatter
from mlmon_logging.ids import uuid7_from_ns
from mlmon_logging.values import (
    MISSING,
    NOT_FINITE,
    Unrepresentable,
    classify,
    safe_repr,
    to_label,
    to_number,
)

Task = Literal["classification", "regression"]
TASKS: Final = ("classification", "regression")
EventDict = dict[str, Any]

_log = logging.getLogger("mlmon_logging")
_NAME = re.compile(contract.NAME_PATTERN)
#: Names remembered per builder; past this, names are checked every time
#: (a service logging unbounded names must not grow memory without bound).
_MAX_CACHED_NAMES: Final = 10_000
#: abs() bound under which an int is converted to float on the fast path.
_FLOAT_SAFE_INT: Final = 2**53

#: Feature shapes (names + value types) remembered with their split plan.
_MAX_PLANS: Final = 1024

_NUMERIC: Final = 0
_CATEGORICAL: Final = 1
_INVALID: Final = 2


#: (numeric names, their values getter, categorical names, their values getter)
_Plan = tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]], tuple[str, ...], Callable[[Any], tuple[Any, ...]]]


def _getter(keys: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """itemgetter that returns a tuple for any number of keys (itemgetter('a') returns a scalar)."""
    if not keys:
        return lambda mapping: ()
    if len(keys) == 1:
        only = keys[0]
        return lambda mapping: (mapping[only],)
    return itemgetter(*keys)


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
    task: Task = "classification"
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
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        for name in self.labels:
            check_name(name, "label name")
        for name in self.categorical:
            check_name(name, "categorical feature")


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

    Not thread-safe: each emitter thread (or formatter) owns one.
    """

    def __init__(self, identity: ModelIdentity, sample_rate: float = 1.0) -> None:
        self.identity = identity
        self.sample_rate = sample_rate
        self._timestamp = TimestampFormatter()
        self._ecs = {"version": contract.ECS_VERSION}
        service: dict[str, str] = {"name": identity.service or identity.model}
        if identity.service_version:
            service["version"] = identity.service_version
        if identity.environment:
            service["environment"] = identity.environment
        self._service = service
        self._host = {"name": identity.host} if identity.host else None
        self._labels = {k: str(v) for k, v in identity.labels.items()}
        self._model = {"name": identity.model, "version": identity.version, "task": identity.task}
        self._emitter_model = {"name": identity.model, "version": identity.version}
        # feature name -> _NUMERIC/_CATEGORICAL (kind of its first non-missing value, or declared) /_INVALID
        self._routes: dict[object, int] = {name: _CATEGORICAL for name in identity.categorical}
        self._warned: set[str] = set()
        self._plans: dict[tuple[tuple[Any, ...], tuple[type, ...]], _Plan] = {}

    # --- the common envelope ----------------------------------------------------
    def _envelope(self, kind: contract.Kind, ts_ns: int, mlmon: EventDict) -> EventDict:
        event: EventDict = {
            "@timestamp": self._timestamp(ts_ns),
            "ecs": self._ecs,
            "event": {
                "kind": "metric" if kind == "emitter" else "event",
                "dataset": contract.DATASETS[kind],
                "id": uuid7_from_ns(ts_ns),
                "module": "mlmon",
            },
            "service": self._service,
        }
        if self._host is not None:
            event["host"] = self._host
        if self._labels:
            event["labels"] = self._labels
        event["mlmon"] = mlmon
        return event

    def _model_event(self, kind: contract.Kind, ts_ns: int, prediction_id: object, quality: _Quality,
                     body: EventDict) -> EventDict:
        mlmon: EventDict = {"schema_version": contract.SCHEMA_VERSION, "model": self._model, **body}
        mlmon.setdefault("prediction", {})["id"] = prediction_id if type(prediction_id) is str else str(prediction_id)
        if self.sample_rate != 1.0:
            mlmon["sample_rate"] = self.sample_rate
        if quality.flags:
            mlmon["quality"] = quality.flags
        return self._envelope(kind, ts_ns, mlmon)

    # --- the three model events --------------------------------------------------
    def prediction(self, ts_ns: int, prediction_id: object, features: Any, prediction: Any = None,
                   score: Any = None, latency_ms: Any = None, segment: Any = None, scores: Any = None) -> EventDict:
        q = _Quality()
        pred: EventDict = {}
        if self.identity.task == "classification":
            self._put_label(pred, "label", prediction, "mlmon.prediction.label", q)
        else:
            self._put_number(pred, "value", prediction, "mlmon.prediction.value", q)
        self._put_number(pred, "score", score, "mlmon.prediction.score", q)
        self._put_number(pred, "latency_ms", latency_ms, "mlmon.prediction.latency_ms", q)
        if scores is not None:
            class_scores = self._numbers_by_label(scores, "mlmon.prediction.scores.", q)
            if class_scores:
                pred["scores"] = class_scores
        body: EventDict = {"prediction": pred}
        numeric, categorical = self._features(features, q)
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
        q = _Quality()
        fb: EventDict = {}
        if self.identity.task == "classification":
            self._put_label(fb, "actual", actual, "mlmon.feedback.actual", q)
        else:
            self._put_number(fb, "actual_value", actual, "mlmon.feedback.actual_value", q)
        return self._model_event("feedback", ts_ns, prediction_id, q, {"feedback": fb})

    def explanation(self, ts_ns: int, prediction_id: object, attributions: Any, method: Any = None,
                    base_value: Any = None) -> EventDict:
        q = _Quality()
        expl: EventDict = {}
        if method is not None:
            self._put_label(expl, "method", method, "mlmon.explanation.method", q)
        self._put_number(expl, "base_value", base_value, "mlmon.explanation.base_value", q)
        body: EventDict = {"attributions": self._numbers_by_name(attributions, "mlmon.attributions.", q)}
        if expl:
            body["explanation"] = expl
        return self._model_event("explanation", ts_ns, prediction_id, q, body)

    def emitter(self, ts_ns: int, counts: Mapping[str, int]) -> EventDict:
        """The emitter's periodic telemetry event (``mlmon.emitter``)."""
        return self._envelope("emitter", ts_ns, {
            "schema_version": contract.SCHEMA_VERSION,
            "model": self._emitter_model,
            "emitter": dict(counts),
        })

    # --- features: the hot path -------------------------------------------------------
    def _features(self, features: Any, q: _Quality) -> tuple[EventDict, EventDict]:
        if type(features) is dict and len(features) <= contract.MAX_FAMILY_FIELDS:
            shape = (tuple(features), tuple(map(type, features.values())))
            plan = self._plans.get(shape)
            if plan is None:
                plan = self._plan(shape)
            if plan is not None:
                num_keys, num_values, cat_keys, cat_values = plan
                try:
                    numeric = dict(zip(num_keys, map(float, num_values(features)))) if num_keys else {}
                    finite = math.isfinite(math.fsum(numeric.values()))
                except OverflowError:  # an int beyond float range, or finite values whose sum overflows
                    finite = False
                if finite:
                    return numeric, (dict(zip(cat_keys, cat_values(features))) if cat_keys else {})
        return self._features_one_by_one(features, q)

    def _plan(self, shape: tuple[tuple[Any, ...], tuple[type, ...]]) -> _Plan | None:
        """How to split features of this shape (names and value types) with C-level calls only.

        Only shapes of valid names with plain float/int/str values get a plan;
        anything else (bools, numpy values, bad names) goes one by one.
        """
        names, types = shape
        num_keys: list[str] = []
        cat_keys: list[str] = []
        for name, t in zip(names, types):
            if not valid_name(name):
                return None
            if self._routes.get(name) == _CATEGORICAL:
                if t is not str:
                    return None
                cat_keys.append(name)
            elif t is float or t is int:
                num_keys.append(name)
            elif t is str:
                cat_keys.append(name)
            else:
                return None
        plan = (tuple(num_keys), _getter(num_keys), tuple(cat_keys), _getter(cat_keys))
        if len(self._plans) < _MAX_PLANS:
            self._plans[shape] = plan
        return plan

    def _features_one_by_one(self, features: Any, q: _Quality) -> tuple[EventDict, EventDict]:
        numeric: EventDict = {}
        categorical: EventDict = {}
        if features is None:
            return numeric, categorical
        routes = self._routes
        for count, (name, value) in enumerate(_items(features, "features", q)):
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
            if route == _CATEGORICAL:
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
        if route is None:
            self._remember(name, _NUMERIC if kind == "numeric" else _CATEGORICAL)
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
    left out and flagged.
    """
    if type(mapping) is dict:
        return mapping.items()
    items = getattr(mapping, "items", None)
    if callable(items):
        try:
            return list(items())
        except Exception:
            pass
    q.add("unserializable_fields", f"mlmon.{what}")
    return ()
