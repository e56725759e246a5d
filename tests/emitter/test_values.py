"""Every class of awkward input: kept, coerced or flagged - never a crash."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from mlmon_logging import contract

from .conftest import ListSink


class _Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


class _BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def _quality(event: dict[str, Any], key: str) -> list[str]:
    return event["mlmon"].get("quality", {}).get(key, [])


def test_numpy_and_pandas_values_are_coerced(log_one: Any) -> None:
    event = log_one(features={
        "i64": np.int64(7), "f32": np.float32(0.5), "b": np.bool_(True), "arr0": np.array(2.5),
        "arr1": np.array([3]), "s": np.str_("x"), "ts": pd.Timestamp("2026-01-02T03:04:05.678Z"),
        "cat": pd.Series(["a"], dtype="category").iloc[0],
    }, prediction=np.int64(1), score=np.float64(0.25), latency_ms=Decimal("1.5"))
    feats = event["mlmon"]["features"]
    assert feats["numeric"] == {"i64": 7.0, "f32": 0.5, "arr0": 2.5, "arr1": 3.0}
    assert feats["categorical"] == {"b": "true", "s": "x", "ts": "2026-01-02T03:04:05.678Z", "cat": "a"}
    assert event["mlmon"]["prediction"] == {"label": "1", "score": 0.25, "latency_ms": 1.5,
                                            "id": event["mlmon"]["prediction"]["id"]}
    assert "quality" not in event["mlmon"]


def test_features_from_a_pandas_series(log_one: Any) -> None:
    row = pd.DataFrame({"age": [41], "plan": ["pro"], "score": [np.nan]}).iloc[0]
    event = log_one(features=row)
    assert event["mlmon"]["features"] == {"numeric": {"age": 41.0, "score": None}, "categorical": {"plan": "pro"}}
    assert _quality(event, "null_fields") == ["mlmon.features.numeric.score"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float64("nan"), Decimal("NaN"), 10**400])
def test_non_finite_numbers_become_null_and_are_named(log_one: Any, bad: Any) -> None:
    event = log_one(features={"x": bad, "y": 1.0}, score=bad)
    assert event["mlmon"]["features"]["numeric"] == {"x": None, "y": 1.0}
    assert "score" not in event["mlmon"]["prediction"] or event["mlmon"]["prediction"]["score"] is None
    assert set(_quality(event, "null_fields")) == {"mlmon.features.numeric.x", "mlmon.prediction.score"}


def test_missing_values_are_left_out_without_flags(log_one: Any) -> None:
    event = log_one(features={"a": None, "b": pd.NA, "c": pd.NaT, "d": 1}, segment={"country": None})
    assert event["mlmon"]["features"] == {"numeric": {"d": 1.0}}
    assert "segment" not in event["mlmon"] and "quality" not in event["mlmon"]


def test_unserialisable_objects_are_kept_as_repr_and_flagged(log_one: Any) -> None:
    event = log_one(features={"o": _Opaque(), "broken": _BrokenRepr(), "vec": np.array([1.0, 2.0]),
                              "raw": b"\xff"}, prediction=_Opaque())
    cat = event["mlmon"]["features"]["categorical"]
    assert cat["o"] == "<Opaque thing>"
    assert cat["broken"] == "<unrepresentable _BrokenRepr>"
    assert cat["vec"] == "array([1., 2.])"
    assert cat["raw"] == "b'\\xff'"
    assert event["mlmon"]["prediction"]["label"] == "<Opaque thing>"
    assert set(_quality(event, "unserializable_fields")) == {
        "mlmon.features.categorical.o", "mlmon.features.categorical.broken", "mlmon.features.categorical.vec",
        "mlmon.features.categorical.raw", "mlmon.prediction.label"}


def test_non_numeric_score_is_flagged_not_written(log_one: Any) -> None:
    event = log_one(features={"a": 1}, score="high")
    assert "score" not in event["mlmon"]["prediction"]
    assert _quality(event, "unserializable_fields") == ["mlmon.prediction.score"]


def test_lone_surrogates_are_repaired_and_flagged(log_one: Any) -> None:
    event = log_one(features={"name": "a\udcffb"})
    assert event["mlmon"]["features"]["categorical"]["name"] == "a\\udcffb"
    assert _quality(event, "unserializable_fields") == ["mlmon.features.categorical.name"]


def test_bad_names_are_left_out_flagged_and_warned_once(log_one: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mlmon_logging")
    event = log_one(features={"ok": 1, "has.dot": 2, "has space": 3, "": 4, 5: 6, "x" * 200: 7},
                    segment={"bad/seg": "a", "country": "DE"}, scores={"class a": 0.5, 1: 0.5})
    assert event["mlmon"]["features"] == {"numeric": {"ok": 1.0}}
    assert event["mlmon"]["segment"] == {"country": "DE"}
    assert event["mlmon"]["prediction"]["scores"] == {"1": 0.5}
    assert set(_quality(event, "invalid_names")) == {"has.dot", "has space", "", "5", "x" * 128, "bad/seg", "class a"}
    assert sum("has.dot" in r.getMessage() for r in caplog.records) == 1


def test_declared_categoricals_stay_keywords(log_one: Any) -> None:
    event = log_one({"categorical": ["zip", "flag"]}, features={"zip": 10115, "flag": 1.0, "n": 10115})
    assert event["mlmon"]["features"] == {"numeric": {"n": 10115.0}, "categorical": {"zip": "10115", "flag": "1"}}


def test_regression_task_types_predictions_and_feedback_as_doubles(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(task="regression")
    pid = mlog.log_prediction({"x": 1}, prediction=np.float32(2.5))
    mlog.log_feedback(pid, actual=Decimal("3"))
    mlog.close()
    assert sink.events("mlmon.prediction")[0]["mlmon"]["prediction"]["value"] == 2.5
    assert sink.events("mlmon.feedback")[0]["mlmon"]["feedback"] == {"actual_value": 3.0}


def test_labels_compare_equal_across_int_float_and_bool(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    pid = mlog.log_prediction({"x": 1}, prediction=np.float64(1.0))
    mlog.log_feedback(pid, actual=1)
    mlog.log_feedback(pid, actual=True)
    mlog.close()
    assert sink.events("mlmon.prediction")[0]["mlmon"]["prediction"]["label"] == "1"
    assert [e["mlmon"]["feedback"]["actual"] for e in sink.events("mlmon.feedback")] == ["1", "true"]


def test_oversized_events_are_truncated_within_the_limit_and_flagged(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(max_event_bytes=4096)
    mlog.log_prediction({f"f{i}": float(i) for i in range(400)} | {"text": "y" * 50_000}, prediction=1)
    mlog.log_explanation("p", {f"f{i}": 0.001 * i for i in range(400)})
    mlog.close()
    assert all(len(line) + 1 <= 4096 for line in sink.lines)
    pred, expl = sink.events("mlmon.prediction")[0], sink.events("mlmon.explanation")[0]
    assert pred["mlmon"]["quality"]["truncated"] is True and expl["mlmon"]["quality"]["truncated"] is True
    assert pred["mlmon"]["prediction"]["label"] == "1" and expl["mlmon"]["prediction"]["id"] == "p"
    assert 0 < len(expl["mlmon"]["attributions"]) < 400


def test_family_size_is_capped(log_one: Any) -> None:
    event = log_one(features={f"f{i}": i for i in range(contract.MAX_FAMILY_FIELDS + 10)})
    assert len(event["mlmon"]["features"]["numeric"]) == contract.MAX_FAMILY_FIELDS
    assert event["mlmon"]["quality"]["truncated"] is True


def test_features_that_are_not_a_mapping_are_flagged(log_one: Any) -> None:
    event = log_one(features=[1, 2, 3], prediction=0)
    assert "features" not in event["mlmon"]
    assert _quality(event, "unserializable_fields") == ["mlmon.features"]


def test_caller_dict_mutation_after_logging_does_not_change_the_event(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    mlog._emitter._closing = True  # stop the worker so the event is still queued while mutating
    mlog._emitter._wake.set()
    mlog._emitter._thread.join()  # type: ignore[union-attr]
    mlog._emitter._closing = False
    features = {"age": 41}
    mlog.log_prediction(features, 1)
    features["age"] = 99
    mlog._emitter._thread = None
    mlog.close()
    assert orjson.loads(sink.lines[0])["mlmon"]["features"]["numeric"] == {"age": 41.0}


def test_timestamps_given_by_the_caller(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    mlog.log_feedback("p", 1, timestamp=dt.datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=dt.timezone.utc))
    mlog.log_feedback("p", 1, timestamp=1_800_000_000.5)
    with pytest.raises(ValueError, match="naive"):
        mlog.log_feedback("p", 1, timestamp=dt.datetime(2026, 1, 1))
    mlog.close()
    assert [e["@timestamp"] for e in sink.events()] == ["2026-11-27T10:00:00.123Z", "2027-01-15T08:00:00.500Z"]
