"""The structlog-processor path, the stdlib logging / dictConfig path and the CLI commands."""

from __future__ import annotations

import io
import logging
import logging.config
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog

from mlmon_logging import contract, new_id
from mlmon_logging.processors import model_event_processors

from .test_contract_conformance import _check


def test_structlog_processors_render_contract_events() -> None:
    out = io.BytesIO()
    chain = model_event_processors(model="churn", version="3", categorical=["zip"],
                                   redact={"email": "drop"}, max_event_bytes=8192)
    log = structlog.wrap_logger(structlog.BytesLogger(out), processors=chain).bind(team="growth")
    pid = new_id()
    log.info("prediction", prediction_id=pid, features={"age": 41, "zip": 10115, "email": "a@b"}, prediction=1)
    log.info("feedback", prediction_id=pid, actual=1)
    log.info("explanation", prediction_id=pid, attributions={"age": 0.2})
    log.info("cache warmed", entries=3)  # not a model event: passes through
    lines = out.getvalue().splitlines()
    events = [orjson.loads(line) for line in lines[:3]]
    for event in events:
        _check(event)
        assert event["labels"] == {"team": "growth"}
    assert events[0]["mlmon"]["features"] == {"numeric": {"age": 41.0}, "categorical": {"zip": "10115"}}
    assert events[0]["mlmon"]["quality"]["redacted_fields"] == ["mlmon.features.categorical.email"]
    assert {e["mlmon"]["prediction"]["id"] for e in events} == {pid}
    assert orjson.loads(lines[3]) == {"team": "growth", "event": "cache warmed", "entries": 3}


def test_structlog_sampling_is_consistent_with_model_logger() -> None:
    out = io.BytesIO()
    log = structlog.wrap_logger(structlog.BytesLogger(out),
                                processors=model_event_processors(model="m", version="1", sample_rate=0.5))
    ids = [new_id() for _ in range(400)]
    for pid in ids:
        log.info("prediction", prediction_id=pid, features={"x": 1.0}, prediction=1)
        log.info("feedback", prediction_id=pid, actual=0)
    events = [orjson.loads(line) for line in out.getvalue().splitlines()]
    predicted = [e["mlmon"]["prediction"]["id"] for e in events if e["event"]["dataset"] == "mlmon.prediction"]
    fed_back = [e["mlmon"]["prediction"]["id"] for e in events if e["event"]["dataset"] == "mlmon.feedback"]
    assert predicted == fed_back and 120 < len(predicted) < 280


def test_structlog_feedback_without_prediction_id_is_an_error_line_not_an_exception(
        caplog: pytest.LogCaptureFixture) -> None:
    out = io.BytesIO()
    log = structlog.wrap_logger(structlog.BytesLogger(out), processors=model_event_processors(model="m", version="1"))
    with caplog.at_level(logging.ERROR, logger="mlmon_logging"):
        log.info("feedback", actual=1)  # the caller's thread never sees an exception
    assert out.getvalue() == b""
    assert any("prediction_id=" in r.getMessage() for r in caplog.records)


@pytest.fixture
def clean_logging() -> Iterator[None]:
    yield
    for name in ("mlmon.events", "mlmon.formatted"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)


def test_dictconfig_handler_queues_model_events_to_a_file(tmp_path: Path, clean_logging: None) -> None:
    path = tmp_path / "events.jsonl"
    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"mlmon": {"()": "mlmon_logging.stdlib.ModelEventHandler", "model": "churn", "version": "3",
                               "sink": f"file://{path}", "stats_interval": None, "categorical": ["zip"]}},
        "loggers": {"mlmon.events": {"handlers": ["mlmon"], "level": "INFO", "propagate": False}},
    })
    log = logging.getLogger("mlmon.events")
    pid = new_id()
    log.info("prediction", extra={"prediction_id": pid, "features": {"age": 41, "zip": 10115}, "prediction": 1,
                                  "score": 0.8, "latency_ms": 2.0, "segment": {"country": "DE"}})
    log.info("feedback", extra={"prediction_id": pid, "actual": 0})
    log.info("explanation", extra={"prediction_id": pid, "attributions": {"age": 0.1}, "method": "shap"})
    log.info("an ordinary line")  # ignored by the handler
    logging.getLogger("mlmon.events").handlers[0].close()
    events = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [e["event"]["dataset"] for e in events] == ["mlmon.prediction", "mlmon.feedback", "mlmon.explanation"]
    for event in events:
        _check(event)
        assert event["mlmon"]["prediction"]["id"] == pid
    assert events[0]["mlmon"]["features"]["categorical"] == {"zip": "10115"}
    assert events[0]["mlmon"]["segment"] == {"country": "DE"}


def test_dictconfig_formatter_with_sample_filter(clean_logging: None) -> None:
    stream = io.StringIO()
    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"mlmon": {"()": "mlmon_logging.stdlib.ModelEventFormatter", "model": "churn", "version": "3",
                                 "redact": {"email": "hash"}, "redaction_key": "k"}},
        "filters": {"sample": {"()": "mlmon_logging.stdlib.SampleFilter", "rate": 0.5}},
        "handlers": {"out": {"class": "logging.StreamHandler", "stream": stream, "formatter": "mlmon",
                             "filters": ["sample"]}},
        "loggers": {"mlmon.formatted": {"handlers": ["out"], "level": "INFO", "propagate": False}},
    })
    log = logging.getLogger("mlmon.formatted")
    ids = [new_id() for _ in range(200)]
    for pid in ids:
        log.info("prediction", extra={"prediction_id": pid, "features": {"email": "a@b.c", "x": 1},
                                      "prediction": 1})
    log.warning("plain %s", "text")
    lines = stream.getvalue().splitlines()
    events = [orjson.loads(line) for line in lines[:-1]]
    assert 60 < len(events) < 140
    for event in events:
        _check(event)
        assert len(event["mlmon"]["features"]["categorical"]["email"]) == 32
    assert orjson.loads(lines[-1]) == {"message": "plain text"}


def _mlmon(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlmon.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def test_emit_sample_writes_every_kind_following_the_contract() -> None:
    done = _mlmon("emit-sample", "-n", "2", "--seed", "1")
    assert done.returncode == 0, done.stderr
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert {e["event"]["dataset"] for e in events} == set(contract.DATASETS.values())
    for event in events:
        _check(event)
    regression = [orjson.loads(line) for line in _mlmon("emit-sample", "--task", "regression").stdout.splitlines()]
    assert "value" in regression[0]["mlmon"]["prediction"]
