"""Issue 15, stdlib logging: a bad model-event record is counted as dropped with one warning, never a traceback.

Before the fix both ``ModelEventHandler`` and ``ModelEventFormatter`` let the error reach
``logging.Handler.handleError``, which prints a traceback on stderr for every bad record
and counts nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from mlmon_logging.stdlib import ModelEventFormatter, ModelEventHandler


@pytest.fixture
def events_logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("mlmon.test.stdlib")
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mlmon_logging" and r.levelno >= logging.WARNING]


def test_the_handler_counts_a_bad_record_as_dropped_with_one_warning(
        events_logger: logging.Logger, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.jsonl"
    handler = ModelEventHandler("churn", "3", sink=f"file://{path}", stats_interval=None)
    events_logger.addHandler(handler)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), caplog.at_level(logging.WARNING, logger="mlmon_logging"):
        for _ in range(3):
            events_logger.info("feedback", extra={"actual": 1})  # no prediction_id: cannot be joined
        events_logger.info("prediction", extra={"prediction_id": "p1", "prediction": 1})
        handler.flush()
    stats = handler.model_logger.stats
    assert "Traceback" not in stderr.getvalue()
    assert stats.emitted == 1 and stats.dropped == 3 and dict(stats.dropped_by_reason) == {"invalid": 3}
    bad = [w for w in _warnings(caplog) if "prediction_id" in w]
    assert len(bad) == 1 and "\n" not in bad[0] and "feedback" in bad[0]
    assert [r.exc_info for r in caplog.records if r.name == "mlmon_logging"] == [None] * len(caplog.records)


def test_the_formatter_counts_a_bad_record_as_dropped_with_one_warning(
        events_logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter = ModelEventFormatter("churn", "3")
    handler.setFormatter(formatter)
    events_logger.addHandler(handler)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), caplog.at_level(logging.WARNING, logger="mlmon_logging"):
        for _ in range(2):
            events_logger.info("feedback", extra={"actual": 1})  # no prediction_id
        events_logger.info("prediction", extra={"prediction_id": "p1"})  # no prediction: ingest refuses it
        events_logger.info("prediction", extra={"prediction_id": "p2", "prediction": 1})
    assert "Traceback" not in stderr.getvalue()
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert [orjson.loads(line)["mlmon"]["prediction"]["id"] for line in lines] == ["p2"]
    assert formatter.dropped == 3 and formatter.dropped_by_reason == {"invalid": 3}
    warnings = _warnings(caplog)
    assert len(warnings) == 2  # one per distinct cause
    assert all("\n" not in w for w in warnings)
