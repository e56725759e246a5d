"""Events dropped over a logger's life are reported at close(), and history can be logged in bulk."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

from .conftest import ListSink

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _backfill(mlog: Any, n: int, flush_every: int | None = None) -> None:
    for i in range(n):
        mlog.log_prediction({"x": float(i)}, prediction=i % 2, score=0.5, timestamp=START + dt.timedelta(seconds=i))
        if flush_every and (i + 1) % flush_every == 0:
            assert mlog.flush(timeout=60)


def _close_warnings(mlog: Any, caplog: pytest.LogCaptureFixture) -> list[str]:
    with caplog.at_level(logging.WARNING, logger="mlmon_logging"):
        mlog.close()
    return [r.getMessage() for r in caplog.records if r.name == "mlmon_logging" and r.levelno == logging.WARNING]


def test_a_burst_past_the_queue_is_reported_at_close(make_logger: Any, sink: ListSink,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    mlog = make_logger(queue_size=100, drain_interval=1.0)
    mlog._emitter._wake_at = 10**9  # the burst must outrun the writer, whatever the machine's speed
    _backfill(mlog, 5_000)
    warnings = _close_warnings(mlog, caplog)
    dropped = mlog.stats.dropped
    assert dropped > 0 and len(sink.events("mlmon.prediction")) == 5_000 - dropped
    (warning,) = [w for w in warnings if "dropped" in w]
    assert f"{dropped} events" in warning and "queue_size=100" in warning and "flush()" in warning
    assert "\n" not in warning


def test_nothing_dropped_nothing_said(make_logger: Any, sink: ListSink, caplog: pytest.LogCaptureFixture) -> None:
    mlog = make_logger()
    _backfill(mlog, 100)
    assert not [w for w in _close_warnings(mlog, caplog) if "dropped" in w]


def test_history_in_bulk_with_flush_loses_nothing(make_logger: Any, sink: ListSink) -> None:
    """The README's recipe: flush() every half queue; backdated with timestamp=."""
    mlog = make_logger(queue_size=1_000)
    _backfill(mlog, 20_000, flush_every=500)
    mlog.close()
    assert mlog.stats.dropped == 0
    events = sink.events("mlmon.prediction")
    assert len(events) == 20_000
    assert events[0]["@timestamp"] == "2026-01-01T00:00:00.000Z"
    assert events[-1]["@timestamp"] == "2026-01-01T05:33:19.000Z"
