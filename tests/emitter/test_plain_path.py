"""The plain (fast) path builds exactly the event the careful path builds, or declines.

Two builders see the same sequence of predictions: one as ModelLogger's writer
thread does (plain path, careful path when it declines), one careful only. Their
events must be byte-for-byte the same JSON apart from ``event.id``, which is
fresh per event. Names come from a small pool so that feature kinds learned by
one path are exercised by the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmon_logging import contract, plans
from mlmon_logging.events import EventBuilder, ModelIdentity, Refused
from mlmon_logging.lines import PredictionLines
from mlmon_logging.render import render

TS = 1_800_000_000_123_456_789


@pytest.fixture(autouse=True, params=["c-speedup", "pure-python"])
def split_implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the C extension's split (when built) and without it."""
    if request.param == "pure-python":
        monkeypatch.setattr(plans, "APPLY_PLAN", None)
    elif plans.APPLY_PLAN is None:
        pytest.skip("mlmon_logging._speedups is not built here (tests/emitter/test_speedups.py says whether it must be)")
    return str(request.param)

VALID = ["age", "plan", "zip", "income", "x"]
BAD = ["has.dot", "", "x" * 130, 5]

# Mostly what the plain path takes, with everything it must decline mixed in.
plain_values = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                         st.integers(min_value=-(2**60), max_value=2**60), st.text(max_size=4))
odd_values = st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none(),
                       st.builds(np.float64, st.floats()), st.builds(np.int64, st.integers(-5, 5)),
                       st.just(10**400), st.just("a\udcffb"))


def mostly(plain: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """plain nine times in ten: most calls then take the plain path, the rest test declining."""
    return st.sampled_from([False] * 9 + [True]).flatmap(lambda is_odd: odd if is_odd else plain)


values = mostly(plain_values, odd_values)
names = mostly(st.sampled_from(VALID), st.sampled_from(BAD))
feature_dicts = st.dictionaries(names, values, max_size=6)
predictions = st.fixed_dictionaries({
    "features": mostly(feature_dicts, st.none()),
    "prediction": mostly(st.one_of(st.integers(0, 3), st.text(max_size=3), st.floats(-1, 1), st.none()), values),
    "score": mostly(st.one_of(st.none(), st.floats(0, 1)), st.one_of(st.floats(), st.integers(0, 1))),
    "latency_ms": mostly(st.one_of(st.none(), st.floats(0, 1e4)), st.floats()),
    "segment": mostly(st.one_of(st.none(), st.dictionaries(st.just("country"), st.text(max_size=3), max_size=1)),
                      st.dictionaries(st.sampled_from(["country", "bad/seg"]), values, max_size=2)),
    "scores": mostly(st.none(), st.dictionaries(st.sampled_from([0, 1, "a"]), st.floats(0, 1), max_size=2)),
})


def _builders(task: str, sample_rate: float) -> tuple[EventBuilder, EventBuilder]:
    def make() -> EventBuilder:
        identity = ModelIdentity("churn", "3", task=task, host="h", labels={"team": "growth"},  # type: ignore[arg-type]
                                 categorical=frozenset({"zip"}))
        return EventBuilder(identity, sample_rate)
    return make(), make()


def _arguments(call: dict[str, Any]) -> tuple[Any, ...]:
    return (TS, "pid-1", call["features"], call["prediction"], call["score"], call["latency_ms"],
            call["segment"], call["scores"])


def prediction_sequences(test: Callable[..., None]) -> Callable[..., None]:
    """Run ``test(calls, task, sample_rate)`` on generated sequences of predictions."""
    return settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(calls=st.lists(predictions, min_size=1, max_size=8),
              task=st.sampled_from(["classification", "regression", None]),
              sample_rate=st.sampled_from([1.0, 0.25]))(test))


def _or_refused(build: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any] | None:
    try:
        return build(*args)
    except Refused:  # a fractional value under an inferred classification, or no usable output
        return None


def _json_without_event_id(event: dict[str, Any]) -> bytes:
    event["event"] = {k: v for k, v in event["event"].items() if k != "id"}
    return render(event, 1 << 20)  # as the writer thread does: repairs what orjson refuses


@prediction_sequences
def test_plain_path_matches_the_careful_path_or_declines(calls: list[dict[str, Any]], task: str,
                                                         sample_rate: float) -> None:
    fast, reference = _builders(task, sample_rate)
    for call in calls:
        args = _arguments(call)
        expected = _or_refused(reference.careful_prediction, *args)
        event = _or_refused(fast.prediction, *args)
        if expected is None or event is None:  # refused: no usable output, or a misplaced fractional value
            assert expected is None and event is None
            continue
        assert _json_without_event_id(event) == _json_without_event_id(expected)


@prediction_sequences
def test_plain_lines_are_the_careful_events_json_or_decline(calls: list[dict[str, Any]], task: str,
                                                            sample_rate: float) -> None:
    """What ModelLogger's writer does per prediction: a ready line, else the dict paths."""
    fast, reference = _builders(task, sample_rate)
    lines = PredictionLines(fast)
    for call in calls:
        args = _arguments(call)
        line = lines.line((0, *args))
        expected = _or_refused(reference.careful_prediction, *args)
        if expected is None:
            assert line is None and _or_refused(fast.prediction, *args) is None
            continue
        if line is None:
            line = render(fast.prediction(*args), 1 << 20)
        expected["event"]["id"] = orjson.loads(line)["event"]["id"]
        assert line == render(expected, 1 << 20)


class _Float(float):
    pass


class _Str(str):
    pass


def test_lines_check_each_value_when_only_the_types_change() -> None:
    """While the names repeat, the last shape's plan is applied first (in C where built) and
    only what it declines is looked at again: every value that breaks that plan must still
    reach the careful path's result."""
    fast, reference = _builders("classification", 1.0)
    lines = PredictionLines(fast)
    plain = {"x": 1.5, "age": 41, "plan": "pro", "zip": "10115"}
    changes: list[dict[str, Any]] = [
        {}, {"x": 2}, {}, {"x": True}, {"x": np.float64(2.5)}, {"x": _Float(2.5)}, {"x": None}, {"x": "a"},
        {"x": math.nan}, {"x": math.inf}, {"x": 1e308, "age": 10**308}, {"age": 41.5}, {"age": False},
        {"age": 2**70}, {"plan": _Str("pro")}, {"plan": None}, {"zip": 10115}, {}]

    def check(change: dict[str, Any]) -> None:
        args = (TS, "p", plain | change, 1, 0.5, None, None, None)
        line = lines.line((0, *args))
        if line is None:
            line = render(fast.prediction(*args), 1 << 20)
        expected = reference.careful_prediction(*args)
        expected["event"]["id"] = orjson.loads(line)["event"]["id"]
        assert line == render(expected, 1 << 20), change

    for change in changes:
        check(change)
    assert lines.line((0, TS, "p", dict(plain), 1, 0.5, None, None, None)) is not None  # the plain shape still is
    check({"plan": 3})  # the first number of a categorical feature: numeric from now on, flagged
    line = lines.line((0, TS, "p", dict(plain), 1, 0.5, None, None, None))
    assert line is None  # so "pro" is now a string for a numeric feature: the careful path flags it
    check({})
    check({"plan": 4})
    assert lines.line((0, TS, "p", plain | {"plan": 5}, 1, 0.5, None, None, None)) is not None


def test_a_plain_line_is_byte_for_byte_the_dict_paths_json() -> None:
    builder, _ = _builders("classification", 0.25)
    features = {"num": 1.5, "age": 41, "plan": "pro", "zip": "10115", "city": "Zürich \"Süd\""}
    args = (TS, "pid-7", features, 1, 0.83, 4.2, {"country": "DE"}, None)
    line = PredictionLines(builder).line((0, *args))
    assert line is not None and line.endswith(b"}\n") and line.count(b"\n") == 1
    event = builder.plain_prediction(*args)
    assert event is not None
    event["event"]["id"] = orjson.loads(line)["event"]["id"]
    assert line == orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)


def test_a_line_over_the_limit_or_with_a_lone_surrogate_is_left_to_the_dict_path() -> None:
    builder, _ = _builders("classification", 1.0)
    lines = PredictionLines(builder)
    plain = (0, TS, "p", {"a": 1.0, "b": "x" * 5000}, 1, None, None, None, None)
    size = len(lines.line(plain) or b"")
    assert size > 5000
    chunk = bytearray(b"kept")
    assert not lines.write(plain, chunk, size - 1)
    assert not lines.write((0, TS, "p", {"a": 1.0, "b": "a\udcffb"}, 1, None, None, None, None), chunk, 1 << 20)
    assert chunk == b"kept"  # nothing half-written
    assert lines.write(plain, chunk, size)  # exactly at the limit: kept
    assert len(chunk) == 4 + size


def test_lines_of_a_logger_with_odd_identity_strings_match_the_dict_path() -> None:
    identity = ModelIdentity('churn "β"', "3\\n", task="classification", service="svc/ü", service_version="1.0", environment="prod",
                             host="h\u00e9", labels={"team": 'gr"owth'})
    builder = EventBuilder(identity, 1.0)
    args = (TS, "pid-\"x\"", {"a": 1.0}, "yes", None, None, None, None)
    line = PredictionLines(builder).line((0, *args))
    event = builder.plain_prediction(*args)
    assert line is not None and event is not None
    event["event"]["id"] = orjson.loads(line)["event"]["id"]
    assert line == orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)


@settings(max_examples=100, deadline=None)
@given(attributions=st.dictionaries(names, values, max_size=6))
def test_plain_attributions_match_the_careful_ones(attributions: dict[str, Any]) -> None:
    fast, reference = _builders("classification", 1.0)
    event = fast.explanation(TS, "p", attributions, "shap", 0.5)
    # The careful path is the one taken for anything that is not a dict.
    expected = reference.explanation(TS, "p", _AsMapping(attributions), "shap", 0.5)
    assert _json_without_event_id(event) == _json_without_event_id(expected)


class _AsMapping:
    """A mapping that is not a dict: forces the careful path for the same items."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def items(self) -> Any:
        return self._data.items()


def test_common_shapes_take_the_plain_path() -> None:
    builder, _ = _builders("classification", 1.0)
    features = {f"num_{i}": 0.5 * i for i in range(15)} | {"age": 41} | {f"cat_{i}": "DE" for i in range(4)}
    event = builder.plain_prediction(TS, "p", features, 1, 0.83, 4.2, {"country": "DE"}, None)
    assert event is not None
    assert event["mlmon"]["features"]["numeric"]["age"] == 41.0
    assert type(event["mlmon"]["features"]["numeric"]["age"]) is float
    assert event["mlmon"]["features"]["categorical"] == {f"cat_{i}": "DE" for i in range(4)}
    assert event["mlmon"]["prediction"] == {"label": "1", "score": 0.83, "latency_ms": 4.2, "id": "p"}
    assert event["mlmon"]["segment"] == {"country": "DE"}


def test_the_plain_path_declines_what_needs_a_flag_or_coercion() -> None:
    builder, _ = _builders("classification", 1.0)
    plain = {"a": 1.0, "b": "x"}
    for features in ({"a": math.nan, "b": "x"}, {"a": True, "b": "x"}, {"a": np.float64(1.0), "b": "x"},
                     {"a": 1.0, "b": None}, {"has.dot": 1.0}, {"zip": 10115},
                     {f"f{i}": 1.0 for i in range(contract.MAX_FAMILY_FIELDS + 1)}, {"a": 10**400}):
        assert builder.plain_prediction(TS, "p", features, 1, None, None, None, None) is None, features
    assert builder.plain_prediction(TS, "p", plain, 1, None, None, None, None) is not None
    assert builder.plain_prediction(TS, "p", plain, True, None, None, None, None) is None
    assert builder.plain_prediction(TS, "p", plain, 1, math.inf, None, None, None) is None
    assert builder.plain_prediction(TS, "p", plain, 1, None, None, {"country": 1}, None) is None


def test_the_plain_path_does_not_touch_the_callers_dicts() -> None:
    builder, _ = _builders("classification", 1.0)
    features = {"a": 1, "b": "x"}
    segment = {"country": "DE"}
    event = builder.prediction(TS, "p", features, 1, segment=segment)
    event["mlmon"]["features"]["numeric"]["a"] = 99.0
    event["mlmon"]["segment"]["country"] = "FR"
    assert features == {"a": 1, "b": "x"} and segment == {"country": "DE"}
