"""Helpers for the emitter tests: an in-memory sink and event flattening."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from mlmon_logging import ModelLogger


class ListSink:
    """Keeps written lines in memory (or only counts them), thread-safe."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.lines: list[bytes] = []
        self.count = 0
        self.writes = 0
        self.closed = False
        self._lock = threading.Lock()

    def write(self, data: bytes | bytearray) -> None:
        with self._lock:
            self.writes += 1
            self.count += data.count(b"\n")
            if self.keep:
                self.lines.extend(bytes(line) for line in data.splitlines())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def after_fork(self) -> None:
        pass

    def events(self, dataset: str | None = None) -> list[dict[str, Any]]:
        parsed = [orjson.loads(line) for line in self.lines]
        return [e for e in parsed if dataset is None or e["event"]["dataset"] == dataset]


def flatten(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested event -> {dotted name: value} (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def make_logger(sink: ListSink) -> Iterator[Callable[..., ModelLogger]]:
    """ModelLogger writing into ``sink``, telemetry off unless asked; closed after the test."""
    made: list[ModelLogger] = []

    def make(**options: Any) -> ModelLogger:
        options.setdefault("stats_interval", None)
        options.setdefault("host", "test-host")
        mlog = ModelLogger(options.pop("model", "churn"), options.pop("version", "3"),
                           sink=options.pop("sink", sink), **options)
        made.append(mlog)
        return mlog

    yield make
    for mlog in made:
        mlog.close()


@pytest.fixture
def log_one(make_logger: Callable[..., ModelLogger], sink: ListSink) -> Callable[..., dict[str, Any]]:
    """Log one prediction with the given arguments and return the parsed event."""

    def run(logger_options: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        mlog = make_logger(**(logger_options or {}))
        kwargs.setdefault("prediction", 1)  # without one ingest refuses the event, and so does the emitter
        mlog.log_prediction(**kwargs)
        mlog.close()
        (event,) = sink.events("mlmon.prediction")
        return event

    return run
