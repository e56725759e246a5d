"""Issue 15, values ingest always rejects: flagged and repaired at the emitter, or refused there and counted.

Every line the emitter writes must pass ingest's own validator (``mlmon.ingest.validate``,
the twin of the Logstash filter); an event that cannot be repaired is not written, is
counted as dropped (reason ``invalid``) and its cause is logged once. Before the fix each
of these inputs was written and then dead-lettered downstream, with ``dropped=0`` here.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import numpy as np
import pytest

from mlmon.ingest.spec import load_spec
from mlmon.ingest.timestamps import Instant
from mlmon.ingest.validate import Accepted, Validator
from mlmon_logging import contract

from .conftest import ListSink

VALIDATOR = Validator(load_spec())


def _ingest(sink: ListSink, now: Instant | None = None) -> list[Accepted]:
    """Every written line through ingest's validator; a rejected line fails the test."""
    accepted = []
    for line in sink.lines:
        verdict = VALIDATOR.process(line, now or Instant.now())
        assert isinstance(verdict, Accepted), (verdict.error_type, verdict.error_message)
        accepted.append(verdict)
    return accepted


def test_a_negative_latency_is_written_as_null_and_flagged(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    mlog.log_prediction({"x": 1.0}, 1, 0.5, latency_ms=-3.0)
    mlog.log_prediction({"x": 1.0}, 1, 0.5, latency_ms=np.float32(-0.5))
    mlog.close()
    for event in _ingest(sink):
        assert event.fields["mlmon.prediction.latency_ms"] is None
        assert event.fields["mlmon.quality.null_fields"] == ["mlmon.prediction.latency_ms"]


@pytest.mark.parametrize(("task", "output"), [
    ("classification", None), ("classification", math.nan), ("classification", np.float64("nan")),
    ("classification", float("inf")), ("regression", None), ("regression", math.nan), ("regression", "high"),
])
def test_a_prediction_without_a_usable_output_is_refused_counted_and_said_once(
        make_logger: Any, sink: ListSink, caplog: pytest.LogCaptureFixture, task: str, output: Any) -> None:
    mlog = make_logger(task=task)
    with caplog.at_level(logging.ERROR, logger="mlmon_logging"):
        for _ in range(3):
            mlog.log_prediction({"x": 1.0}, output)
        mlog.log_prediction({"x": 1.0}, 1)
        mlog.close()
    assert len(_ingest(sink)) == 1
    assert mlog.stats.dropped == 3 and dict(mlmon_reasons(mlog)) == {"invalid": 3}
    (said,) = [r.getMessage() for r in caplog.records if r.name == "mlmon_logging"]
    assert "prediction=" in said and "log_prediction_error()" in said


def mlmon_reasons(mlog: Any) -> dict[str, int]:
    return dict(mlog.stats.dropped_by_reason)


@pytest.mark.parametrize("actual", [None, math.nan, np.float32("nan")])
def test_feedback_without_a_usable_actual_is_refused_and_counted(make_logger: Any, sink: ListSink,
                                                                 actual: Any) -> None:
    mlog = make_logger(task="classification")
    mlog.log_feedback("p1", actual)
    mlog.log_feedback("p1", 0)
    mlog.close()
    assert [e.fields["mlmon.feedback.actual"] for e in _ingest(sink)] == ["0"]
    assert mlmon_reasons(mlog) == {"invalid": 1}


def test_a_refused_first_output_does_not_decide_the_task(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    mlog.log_prediction({"x": 1.0}, math.nan)
    mlog.log_prediction({"x": 1.0}, 2.5)  # the first usable output: a regression
    mlog.close()
    (event,) = _ingest(sink)
    assert event.fields["mlmon.model.task"] == "regression" and event.fields["mlmon.prediction.value"] == 2.5


@pytest.mark.parametrize("when", [
    1.7e12,  # Unix milliseconds passed as seconds: year 55,840
    -7e10,  # before year 1
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # year 0 in UTC
])
def test_a_timestamp_outside_years_1_to_9999_is_refused_at_the_call(make_logger: Any, when: Any) -> None:
    mlog = make_logger()
    with pytest.raises(ValueError, match="years 1-9999"):
        mlog.log_prediction({"x": 1.0}, 1, timestamp=when)
    with pytest.raises(ValueError, match="not milliseconds"):
        mlog.log_feedback("p", 1, timestamp=when)


@pytest.mark.parametrize("when", [dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
                                  dt.datetime(999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc),
                                  dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)])
def test_the_first_and_last_years_are_written_as_ingest_reads_them(make_logger: Any, sink: ListSink,
                                                                   when: dt.datetime) -> None:
    """Years before 1000 were written without their leading zeros ("1-01-01T..."), which ingest refuses."""
    mlog = make_logger()
    mlog.log_feedback("p", 1, timestamp=when)
    mlog.close()
    (event,) = _ingest(sink, now=Instant(253_402_300_799, 0))  # ingested in 9999: no event is from the future
    assert event.fields["@timestamp"].startswith(f"{when.year:04d}-")


@pytest.mark.parametrize("length", [contract.MAX_KEYWORD_CHARS + 1, 100_000])
def test_a_too_long_label_or_prediction_id_is_cut_and_flagged_not_dropped(make_logger: Any, sink: ListSink,
                                                                           length: int) -> None:
    mlog = make_logger(task="classification")
    long_id = "p" * length
    mlog.log_prediction({"x": 1.0}, "L" * length, 0.5, prediction_id=long_id)
    mlog.log_feedback(long_id, "A" * length)
    mlog.log_explanation(long_id, {"x": 0.1}, method="m" * length)
    mlog.close()
    assert mlog.stats.dropped == 0
    prediction, feedback, explanation = _ingest(sink)
    cut = contract.MAX_KEYWORD_CHARS
    assert prediction.fields["mlmon.prediction.label"] == "L" * cut
    assert feedback.fields["mlmon.feedback.actual"] == "A" * cut
    assert explanation.fields["mlmon.explanation.method"] == "m" * cut
    for event in (prediction, feedback, explanation):
        assert event.fields["mlmon.prediction.id"] == "p" * cut  # the same cut: feedback still joins
        assert event.fields["mlmon.quality.truncated"] is True


def test_a_label_of_exactly_the_limit_is_kept_whole_and_unflagged(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(task="classification")
    mlog.log_prediction({"x": 1.0}, "L" * contract.MAX_KEYWORD_CHARS, 0.5, prediction_id="q" * 1024)
    mlog.close()
    (event,) = _ingest(sink)
    assert "mlmon.quality.truncated" not in event.fields


@pytest.mark.parametrize(("arguments", "flag"), [
    ({"scores": [0.2, 0.8]}, "mlmon.prediction.scores"),
    ({"segment": ["DE"]}, "mlmon.segment"),
    ({"features": [1.0, 2.0]}, "mlmon.features"),
])
def test_an_unnamed_mapping_is_flagged_under_its_own_path(log_one: Any, arguments: dict[str, Any], flag: str) -> None:
    """The flag was written as 'mlmon.mlmon.prediction.scores' / 'mlmon.mlmon.segment'."""
    event = log_one(**arguments)
    assert event["mlmon"]["quality"]["unserializable_fields"] == [flag]
