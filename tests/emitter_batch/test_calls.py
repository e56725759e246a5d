"""A batch call that cannot be read raises one clear line before logging anything; a bad row never raises."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmon_logging.frames import BatchCallError
from tests.emitter_batch.conftest import MakeLogger

FRAME = pd.DataFrame({"age": [41.0, 30.0], "y": [1, 0], "at": pd.to_datetime(["2026-11-02T10:00:00Z"] * 2)})


@pytest.mark.parametrize("frame, arguments, message", [
    (FRAME, {"prediction": "label"}, "prediction='label' is not a column of the frame (its columns: 'age', 'y', 'at')"),
    (FRAME, {"prediction": "y", "features": ["age", "agee"]}, "features='agee' is not a column"),
    (FRAME, {"prediction": "y", "features": "age"}, "features='age' must be a list of column names"),
    (FRAME, {"prediction": [1, 0, 1]}, "prediction has 3 values for 2 rows"),
    (FRAME, {"prediction": np.zeros((2, 2))}, "prediction is a 2-dimensional array"),
    (FRAME, {"prediction": "y", "scores": "age"}, "scores='age' must be a dict"),
    (FRAME, {"prediction": None}, "prediction= is required"),
    (FRAME.assign(at=FRAME["at"].dt.tz_localize(None)), {"prediction": "y", "timestamp": "at"},
     "the timestamp column holds naive datetimes"),
    ({"age": [1.0, 2.0], "y": [1]}, {"prediction": "y"}, "the columns differ in length ('age': 2, 'y': 1)"),
    ({"age": 1.0}, {"prediction": "age"}, "column 'age' has no length"),
    ([{"age": 1.0}], {"prediction": "age"}, "takes a pandas DataFrame or a dict of columns"),
    (pd.DataFrame([[1.0, 1]], columns=["a", "a"]), {"prediction": "a"}, "two columns named 'a'"),
])
def test_a_call_that_cannot_be_read_raises_before_logging(make_logger: MakeLogger, frame: Any,
                                                          arguments: dict[str, Any], message: str) -> None:
    mlog, sink = make_logger()
    with pytest.raises(BatchCallError) as raised:
        mlog.log_predictions(frame, **arguments)
    text = str(raised.value)
    assert "\n" not in text and text.startswith("mlmon: log_predictions") and message in text
    mlog.flush()
    assert sink.lines == [] and mlog.stats.dropped == 0


def test_feedback_and_explanations_name_their_own_call(make_logger: MakeLogger) -> None:
    mlog, _ = make_logger()
    with pytest.raises(BatchCallError, match="log_feedback_batch: actual= is required"):
        mlog.log_feedback_batch({"id": ["a"]}, prediction_id="id", actual=None)
    with pytest.raises(BatchCallError, match="log_explanations: no attribution columns"):
        mlog.log_explanations({"id": ["a"]}, prediction_id="id")
    with pytest.raises(BatchCallError, match="method=1 must be the method's name"):
        mlog.log_explanations({"id": ["a"], "age": [0.1]}, prediction_id="id", method=1)  # type: ignore[arg-type]


def test_rows_without_a_usable_time_are_counted_and_reported_once_per_cause(
        make_logger: MakeLogger, caplog: pytest.LogCaptureFixture) -> None:
    mlog, sink = make_logger()
    at = pd.Series(pd.to_datetime(["2026-11-02T10:00:00Z", None, "2026-11-02T10:00:02Z", None], utc=True))
    with caplog.at_level(logging.ERROR, logger="mlmon_logging"):
        ids = mlog.log_predictions({"age": [1.0, 2.0, 3.0, 4.0], "y": [1, 1, 1, 1], "at": at},
                                   prediction="y", timestamp="at", prediction_id=["a", "b", None, None])
        seconds = mlog.log_predictions({"y": [1, 1, 1, 1]}, prediction="y",
                                       timestamp=[1_793_613_600.0, float("nan"), 1_793_613_600_000, None])
    mlog.flush()
    assert ids[:2] == ["a", "b"] and ids[2] and ids[3] == ""  # made for the row with a time, "" without one
    assert seconds[1] == seconds[2] == seconds[3] == ""
    assert [e["mlmon"]["prediction"]["id"] for e in sink.events()] == ["a", ids[2], seconds[0]]
    assert mlog.stats.dropped_by_reason == {"invalid": 5}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no timestamp (NaT)" in m for m in messages) == 1
    assert sum("no timestamp (None, NaN or NaT)" in m for m in messages) == 1
    assert sum("outside the years 1-9999" in m for m in messages) == 1
    assert all(m.startswith("mlmon: log_predictions: model 'churn' version '3': rows with ") for m in messages)


def test_timestamps_read_alike_from_datetimes_pandas_and_seconds(make_logger: MakeLogger) -> None:
    base = dt.datetime(2026, 11, 2, 10, 0, 0, 366000, tzinfo=dt.timezone.utc)  # .timestamp() said .365999
    berlin = dt.timezone(dt.timedelta(hours=1))
    aware = [base, (base + dt.timedelta(microseconds=999)).astimezone(berlin)]
    mlog, sink = make_logger()
    for timestamp in (pd.Series(aware), aware, [t.timestamp() for t in aware]):
        mlog.log_predictions({"y": [1, 1]}, prediction="y", timestamp=timestamp)
    mlog.flush()
    stamps = [e["@timestamp"] for e in sink.events()]
    # Unix seconds are floats: .366 as seconds is the float it is (the caller's choice), not exact.
    assert stamps[:4] == ["2026-11-02T10:00:00.366Z"] * 4


def test_missing_text_is_left_out_not_flagged_as_a_number(make_logger: MakeLogger) -> None:
    mlog, sink = make_logger()
    frame = pd.DataFrame({"plan": ["pro", None], "age": [1.0, np.nan], "y": [1, 1]})  # pandas writes None as NaN
    mlog.log_predictions(frame, prediction="y")
    mlog.flush()
    first, second = (e["mlmon"] for e in sink.events())
    assert first["features"] == {"numeric": {"age": 1.0}, "categorical": {"plan": "pro"}}
    # The text column's missing value is left out; the float column's NaN is flagged, as log_prediction flags it.
    assert second["features"] == {"numeric": {"age": None}}
    assert second["quality"] == {"null_fields": ["mlmon.features.numeric.age"]}


def test_columns_named_by_an_argument_are_not_features(make_logger: MakeLogger) -> None:
    mlog, sink = make_logger()
    frame = pd.DataFrame({"id": ["a"], "age": [41.0], "country": ["DE"], "y": ["churn"], "p": [0.8],
                          "p_churn": [0.8], "p_stay": [0.2], "lat": [3.0],
                          "at": pd.to_datetime(["2026-11-02T10:00:00Z"])})
    mlog.log_predictions(frame, prediction="y", score="p", scores={"churn": "p_churn", "stay": "p_stay"},
                         latency_ms="lat", segment=["country"], timestamp="at", prediction_id="id")
    mlog.flush()
    (event,) = sink.events()
    assert event["mlmon"]["features"] == {"numeric": {"age": 41.0}}
    assert event["mlmon"]["segment"] == {"country": "DE"}
    assert event["mlmon"]["prediction"] == {"label": "churn", "score": 0.8, "latency_ms": 3.0,
                                            "scores": {"churn": 0.8, "stay": 0.2}, "id": "a"}
