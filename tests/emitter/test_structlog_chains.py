"""The documented structlog chain behind the usual processors, with real structlog configurations.

``model_event_processors`` must never raise in the caller's thread: what a processor before it
adds (a timestamp, the level, a stack, an exception) is logging metadata, not model data, and a
bad log call is one error line on the "mlmon_logging" logger, the event dropped and counted.
Lines are JSON whatever the logger factory: bytes for a BytesLogger, text for the others.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog

from mlmon_logging import new_id
from mlmon_logging.processors import ModelEvents, model_event_processors

from .test_contract_conformance import _check

USUAL_BEFORE: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
    structlog.processors.TimeStamper(fmt="iso"),
]


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _configure(before: list[Any], factory: Any, **options: Any) -> None:
    structlog.configure(processors=[*before, *model_event_processors(model="churn", version="3", **options)],
                        logger_factory=factory, cache_logger_on_first_use=False)


def _log_model_events() -> str:
    log = structlog.get_logger().bind(team="growth")
    pid = new_id()
    log.info("prediction", prediction_id=pid, features={"age": 41, "plan": "pro"}, prediction=1, score=0.8)
    log.info("prediction", prediction_id=new_id(), features={"age": 40}, prediction=0, stack_info=True)
    try:
        raise KeyError("boom")
    except KeyError:
        log.exception("feedback", prediction_id=pid, actual=1)
    log.warning("explanation", prediction_id=pid, attributions={"age": 0.1})
    return pid


def _model_events(lines: list[bytes]) -> list[dict[str, Any]]:
    events = [orjson.loads(line) for line in lines]
    for event in events:
        _check(event)
        assert event["labels"] == {"team": "growth"}
    return events


@pytest.mark.parametrize("before", [[structlog.processors.TimeStamper(fmt="iso")], USUAL_BEFORE,
                                    [structlog.processors.TimeStamper(fmt="iso", utc=False)],
                                    [structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S")],
                                    [structlog.processors.TimeStamper()]],
                         ids=["timestamper-iso", "usual-chain", "local-iso", "custom-format", "unix-seconds"])
def test_the_chain_after_the_usual_processors_writes_contract_events(before: list[Any]) -> None:
    out = io.BytesIO()
    _configure(before, structlog.BytesLoggerFactory(out))
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    _log_model_events()
    events = _model_events(out.getvalue().splitlines())
    assert [e["event"]["dataset"] for e in events] == ["mlmon.prediction", "mlmon.prediction", "mlmon.feedback",
                                                       "mlmon.explanation"]
    for event in events:  # the logging time, whatever form the timestamper gave it
        when = dt.datetime.fromisoformat(event["@timestamp"].replace("Z", "+00:00"))
        assert started <= when <= dt.datetime.now(dt.timezone.utc)


def test_without_a_bytes_logger_lines_are_json_text() -> None:
    out = io.StringIO()
    _configure(USUAL_BEFORE, structlog.PrintLoggerFactory(out))
    _log_model_events()
    structlog.get_logger().info("cache warmed", entries=3, handle=object())  # not a model event
    lines = out.getvalue().splitlines()
    assert not any(line.startswith("b'") for line in lines)
    assert len(_model_events([line.encode() for line in lines[:4]])) == 4
    assert orjson.loads(lines[4])["event"] == "cache warmed"


def test_through_the_stdlib_logger_factory_lines_are_json_text() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    target = logging.getLogger("test.structlog.mlmon")
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    target.propagate = False
    try:
        _configure(USUAL_BEFORE, structlog.stdlib.LoggerFactory())
        structlog.get_logger("test.structlog.mlmon").bind(team="growth").info(
            "prediction", features={"age": 41}, prediction=1)
    finally:
        target.removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    _model_events([line.encode()])


def test_a_bad_model_log_call_is_one_error_line_never_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    out = io.BytesIO()
    _configure(USUAL_BEFORE[:-1], structlog.BytesLoggerFactory(out))  # a TimeStamper would replace timestamp=
    log = structlog.get_logger()
    with caplog.at_level(logging.ERROR, logger="mlmon_logging"):
        log.info("feedback", actual=1)  # no prediction_id
        log.info("feedback", actual=1)
        log.info("prediction", features={"x": 1.0}, prediction=1, timestamp=dt.datetime(2026, 1, 1))  # naive
    assert out.getvalue() == b""
    messages = [r.getMessage() for r in caplog.records if r.name == "mlmon_logging"]
    assert len(messages) == 2 and all("\n" not in m and r.exc_info is None
                                      for m, r in zip(messages, caplog.records))
    assert "prediction_id=" in messages[0] and "aware datetime" in messages[1]
    (events,) = [p for p in structlog.get_config()["processors"] if isinstance(p, ModelEvents)]
    assert events.dropped == 3


def test_a_backdated_timestamp_is_kept_without_a_timestamper() -> None:
    out = io.BytesIO()
    _configure([structlog.processors.add_log_level], structlog.BytesLoggerFactory(out))
    when = dt.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc)
    structlog.get_logger().info("prediction", features={"x": 1.0}, prediction=1, timestamp=when)
    (event,) = _model_events_without_labels(out)
    assert event["@timestamp"] == "2026-03-01T12:00:00.250Z"


def _model_events_without_labels(out: io.BytesIO) -> list[dict[str, Any]]:
    events = [orjson.loads(line) for line in out.getvalue().splitlines()]
    for event in events:
        _check(event)
        assert "labels" not in event
    return events
