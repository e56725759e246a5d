"""Without ``task=``, the first event decides the task; a later regression output is refused.

The rule: a prediction that is a non-integral number (float, numpy float, Decimal) given
without ``score`` / ``scores`` is not a class label. Without ``task=``, the first event
decides: such a prediction (or feedback actual) makes the model a regression; anything else
(a str, bool or int label, an integral float such as 1.0, any prediction with a score)
makes it a classification. Once classification was inferred, such a value is refused - not
turned into a label string: the event is left out, counted as dropped, and one error line
names the fix. A ``task=`` given explicitly is always used as it is.
"""

from __future__ import annotations

import io
import logging
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pytest
import structlog

from mlmon_logging.processors import model_event_processors

from .conftest import ListSink
from .test_contract_conformance import _check


def _tasks(sink: ListSink) -> set[str]:
    return {e["mlmon"]["model"]["task"] for e in sink.events() if "task" in e["mlmon"]["model"]}


@pytest.mark.parametrize("first", [3.7, np.float64(2.5), np.float32(0.25), Decimal("1.5")])
def test_a_first_fractional_prediction_without_score_makes_a_regression(make_logger: Any, sink: ListSink,
                                                                        first: Any) -> None:
    mlog = make_logger()
    pid = mlog.log_prediction({"x": 1.0}, prediction=first)
    mlog.log_prediction({"x": 1.0}, prediction=4.0)  # integral, but a regression's value now
    mlog.log_feedback(pid, actual=4.2)
    mlog.close()
    assert [e["mlmon"]["prediction"]["value"] for e in sink.events("mlmon.prediction")] == [float(first), 4.0]
    assert sink.events("mlmon.feedback")[0]["mlmon"]["feedback"] == {"actual_value": 4.2}
    assert _tasks(sink) == {"regression"}
    for event in sink.events():
        _check(event)


@pytest.mark.parametrize(("first", "score", "label"), [
    (1, None, "1"), ("yes", None, "yes"), (True, None, "true"), (1.0, None, "1"), (np.int64(2), None, "2"),
    (0.5, 0.8, "0.5"),  # a number given with a score is a class label
])
def test_labels_make_a_classification(make_logger: Any, sink: ListSink, first: Any, score: Any, label: str) -> None:
    mlog = make_logger()
    mlog.log_prediction({"x": 1.0}, prediction=first, score=score)
    mlog.close()
    (event,) = sink.events("mlmon.prediction")
    assert event["mlmon"]["prediction"]["label"] == label
    assert _tasks(sink) == {"classification"}


def test_a_regression_output_after_an_inferred_classification_is_refused_and_reported(
        make_logger: Any, sink: ListSink, caplog: pytest.LogCaptureFixture) -> None:
    mlog = make_logger()
    mlog.log_prediction({"x": 1.0}, prediction=1)
    mlog.log_prediction({"x": 1.0}, prediction=3.7)
    mlog.log_prediction({"x": 1.0}, prediction=np.float64(0.25))
    mlog.log_prediction({"x": 1.0}, prediction=2)
    with caplog.at_level(logging.WARNING, logger="mlmon_logging"):
        mlog.close()
    assert [e["mlmon"]["prediction"]["label"] for e in sink.events("mlmon.prediction")] == ["1", "2"]
    assert mlog.stats.dropped == 2
    refusals = [r for r in caplog.records if "task='regression'" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].exc_info is None
    assert "\n" not in refusals[0].getMessage()


def test_an_explicit_task_is_used_as_given(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(task="classification")
    mlog.log_prediction({"x": 1.0}, prediction=1)
    mlog.log_prediction({"x": 1.0}, prediction=3.7)
    mlog.close()
    assert [e["mlmon"]["prediction"]["label"] for e in sink.events("mlmon.prediction")] == ["1", "3.7"]
    assert mlog.stats.dropped == 0


def test_the_structlog_chain_infers_the_same() -> None:
    out = io.BytesIO()
    log = structlog.wrap_logger(structlog.BytesLogger(out), processors=model_event_processors(model="m", version="1"))
    log.info("prediction", features={"x": 1.0}, prediction=3.7)
    (event,) = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert event["mlmon"]["model"]["task"] == "regression"
    assert event["mlmon"]["prediction"]["value"] == 3.7
