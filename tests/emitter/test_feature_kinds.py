"""A feature's kind is decided per value: numbers stay numeric, a change of kind is flagged.

A feature is numeric once it has had a number (declared categoricals excepted); while it has
had only strings it is categorical. Every value is written under its own kind, and a value of
the other kind than the feature's - a string for a numeric feature, the first number of a
feature that had only strings - is listed in ``mlmon.quality.kind_changed_fields``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlmon_logging import contract, plans
from mlmon_logging.events import EventBuilder, ModelIdentity

from .conftest import ListSink
from .test_contract_conformance import _check

FLAG = "kind_changed_fields"


@pytest.fixture(autouse=True, params=["c-speedup", "pure-python"])
def split_implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pure-python":
        monkeypatch.setattr(plans, "APPLY_PLAN", None)
    elif plans.APPLY_PLAN is None:
        pytest.skip("mlmon_logging._speedups is not built here")
    return str(request.param)


def _log_all(make_logger: Any, sink: ListSink, values: list[Any], **options: Any) -> list[dict[str, Any]]:
    mlog = make_logger(**options)
    for value in values:
        mlog.log_prediction(features={"x": value, "age": 41}, prediction=1, score=0.5)
    mlog.close()
    events = sink.events("mlmon.prediction")
    for event in events:
        _check(event)
    return [event["mlmon"] for event in events]


def _where(mlmon: dict[str, Any]) -> tuple[str, Any, list[str]]:
    feats = mlmon["features"]
    kind = "numeric" if "x" in feats.get("numeric", {}) else "categorical"
    return kind, feats[kind]["x"], mlmon.get("quality", {}).get(FLAG, [])


def test_numbers_after_a_first_string_stay_numeric_and_the_change_is_flagged(make_logger: Any,
                                                                             sink: ListSink) -> None:
    got = [_where(m) for m in _log_all(make_logger, sink, ["n/a", 3.5, 4, 2.0, "n/a", 7])]
    assert got == [
        ("categorical", "n/a", []),
        ("numeric", 3.5, ["mlmon.features.numeric.x"]),  # the change of kind
        ("numeric", 4.0, []),
        ("numeric", 2.0, []),
        ("categorical", "n/a", ["mlmon.features.categorical.x"]),  # a string for a numeric feature
        ("numeric", 7.0, []),
    ]


def test_a_string_for_a_numeric_feature_is_flagged_every_time(make_logger: Any, sink: ListSink) -> None:
    got = [_where(m) for m in _log_all(make_logger, sink, [1.5, "n/a", "n/a", np.float64(2.5), True])]
    assert got == [
        ("numeric", 1.5, []),
        ("categorical", "n/a", ["mlmon.features.categorical.x"]),
        ("categorical", "n/a", ["mlmon.features.categorical.x"]),
        ("numeric", 2.5, []),
        ("categorical", "true", ["mlmon.features.categorical.x"]),
    ]


def test_declared_categoricals_take_numbers_as_labels_unflagged(make_logger: Any, sink: ListSink) -> None:
    got = [_where(m) for m in _log_all(make_logger, sink, ["10115", 10115, 75001.0], categorical=["x"])]
    assert got == [("categorical", "10115", []), ("categorical", "10115", []), ("categorical", "75001", [])]


def test_the_flag_is_in_the_contract() -> None:
    field = contract.FIELDS_BY_NAME["mlmon.quality." + FLAG]
    assert field.type == "keyword" and field.array and "prediction" in field.kinds


def test_one_builder_learns_the_same_whichever_path_runs() -> None:
    """The plain path declines a change of kind; the careful path flags it and re-plans."""
    builder = EventBuilder(ModelIdentity("m", "1", host="h"))
    first = builder.prediction(1, "p", {"x": "n/a"}, "1")
    assert first["mlmon"]["features"] == {"categorical": {"x": "n/a"}}
    assert builder.plain_prediction(2, "p", {"x": 1.0}, "1", None, None, None, None) is None
    second = builder.prediction(2, "p", {"x": 1.0}, "1")
    assert second["mlmon"]["quality"] == {FLAG: ["mlmon.features.numeric.x"]}
    third = builder.plain_prediction(3, "p", {"x": 2.0}, "1", None, None, None, None)
    assert third is not None and third["mlmon"]["features"] == {"numeric": {"x": 2.0}}
    assert builder.plain_prediction(4, "p", {"x": "n/a"}, "1", None, None, None, None) is None
