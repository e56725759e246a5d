"""Helpers for the batch-logging tests: an in-memory sink, loggers closed after each test."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from mlmon_logging import ModelLogger

_EVENT_ID = re.compile(rb'"event":\{([^{}]*)"id":"[^"]*"')


class ListSink:
    """Keeps written lines in memory, thread-safe."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._lock = threading.Lock()

    def write(self, data: bytes | bytearray) -> None:
        with self._lock:
            self.lines.extend(bytes(line) for line in data.splitlines())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def after_fork(self) -> None:
        pass

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.lines]

    def lines_without_event_id(self) -> list[bytes]:
        """The lines with ``event.id`` blanked: it is fresh per event, everything else must match."""
        return [_EVENT_ID.sub(rb'"event":{\1"id":"-"', line) for line in self.lines]


MakeLogger = Callable[..., tuple[ModelLogger, ListSink]]


@pytest.fixture
def make_logger() -> Iterator[MakeLogger]:
    """A ModelLogger writing into its own ListSink, telemetry off; closed after the test."""
    made: list[ModelLogger] = []

    def make(**options: Any) -> tuple[ModelLogger, ListSink]:
        sink = ListSink()
        options.setdefault("stats_interval", None)
        options.setdefault("host", "test-host")
        mlog = ModelLogger(options.pop("model", "churn"), options.pop("version", "3"), sink=sink, **options)
        made.append(mlog)
        return mlog, sink

    yield make
    for mlog in made:
        mlog.close()
