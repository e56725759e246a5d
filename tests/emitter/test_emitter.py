"""The queue and background thread: bounded, exact counts, nothing queued lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlmon_logging import ModelLogger

from .conftest import ListSink


class SlowSink(ListSink):
    """Counts lines only, and records the queue length it sees, pausing per write."""

    def __init__(self, pause: float) -> None:
        super().__init__(keep=False)
        self.pause = pause
        self.max_seen_queue = 0
        self.logger: ModelLogger | None = None

    def write(self, data: bytes | bytearray) -> None:
        if self.logger is not None:
            self.max_seen_queue = max(self.max_seen_queue, len(self.logger._emitter._queue))
        time.sleep(self.pause)
        super().write(data)


def test_burst_of_a_million_events_stays_bounded_and_counts_drops_exactly() -> None:
    # A sink slower than the callers, so the queue fills and stays full; feedback
    # events keep the caller loop cheap enough for the test to take seconds.
    sink = SlowSink(pause=0.005)
    mlog = ModelLogger("m", "1", sink=sink, queue_size=1000, batch_size=100, stats_interval=None)
    sink.logger = mlog
    log = mlog.log_feedback
    max_queue = 0
    for i in range(1_000_000):
        log("p", 1)
        if i % 10_000 == 0:
            max_queue = max(max_queue, len(mlog._emitter._queue))
    during = mlog.stats
    mlog.close()
    final = mlog.stats
    assert max_queue <= 1000 and sink.max_seen_queue <= 1000  # one caller thread: the bound is exact
    assert during.dropped > 0
    assert final.queued == 0 and final.errors == 0
    assert final.emitted + final.dropped == 1_000_000
    assert sink.count == final.emitted  # everything accepted reached the sink, close included


def test_concurrent_callers_are_counted_exactly() -> None:
    sink = SlowSink(pause=0.0005)
    mlog = ModelLogger("m", "1", sink=sink, queue_size=200, batch_size=50, stats_interval=None)

    def work() -> None:
        for _ in range(20_000):
            mlog.log_feedback("p", 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mlog.close()
    stats = mlog.stats
    assert stats.emitted + stats.dropped == 80_000 and sink.count == stats.emitted and stats.dropped > 0


def test_flush_waits_for_everything_logged_before_it(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    for i in range(5000):
        mlog.log_prediction({"x": float(i)}, 1)
    assert mlog.flush(timeout=10)
    assert len(sink.lines) == 5000 and mlog.stats.queued == 0
    assert not sink.closed


class FlakySink(ListSink):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write(self, data: bytes | bytearray) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk full")
        super().write(data)


def test_write_failures_are_retried_counted_and_lose_nothing() -> None:
    sink = FlakySink(failures=3)
    mlog = ModelLogger("m", "1", sink=sink, stats_interval=None, retry_initial=0.01)
    for _ in range(10):
        mlog.log_prediction({"x": 1.0}, 1)
    mlog.close()
    assert len(sink.lines) == 10
    assert mlog.stats.errors == 3 and mlog.stats.emitted == 10 and mlog.stats.dropped == 0


def test_close_gives_up_on_a_dead_sink_after_the_timeout_and_counts_the_loss() -> None:
    sink = FlakySink(failures=10**9)
    mlog = ModelLogger("m", "1", sink=sink, stats_interval=None, retry_initial=0.01, close_timeout=0.2)
    for _ in range(7):
        mlog.log_prediction({"x": 1.0}, 1)
    started = time.monotonic()
    mlog.close()
    assert time.monotonic() - started < 2
    assert mlog.stats.dropped == 7 and mlog.stats.emitted == 0 and mlog.stats.queued == 0


def test_events_after_close_are_dropped_and_counted(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    mlog.close()
    mlog.log_prediction({"x": 1.0}, 1)
    assert mlog.log_feedback("p", 1) is False
    assert mlog.stats.dropped == 2 and sink.lines == []


def test_a_render_failure_is_counted_and_does_not_stop_the_emitter(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    original = mlog._builder.feedback

    def broken(*args: Any) -> Any:
        raise RuntimeError("bug")

    mlog._builder.feedback = broken  # type: ignore[method-assign]
    mlog.log_feedback("p", 1)
    mlog.flush()
    mlog._builder.feedback = original  # type: ignore[method-assign]
    mlog.log_feedback("p", 1)
    mlog.close()
    assert len(sink.lines) == 1 and mlog.stats.errors == 1 and mlog.stats.dropped == 1


def test_periodic_telemetry_reports_drops(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(stats_interval=0.05, queue_size=5)
    mlog._emitter._closing = True  # hold the worker so the queue overflows
    mlog._emitter._wake.set()
    mlog._emitter._thread.join()  # type: ignore[union-attr]
    mlog._emitter._closing = False
    mlog._emitter._thread = None
    for _ in range(8):
        mlog.log_feedback("p", 1)
    mlog._emitter.start()
    time.sleep(0.3)
    mlog.close()
    telemetry = sink.events("mlmon.emitter")
    assert len(telemetry) >= 2  # periodic ones and the final one
    assert telemetry[-1]["event"]["kind"] == "metric"
    assert telemetry[-1]["mlmon"]["emitter"] == {"emitted": 5, "dropped": 3, "queued": 0, "errors": 0,
                                                 "sampled_out": 0}
    assert telemetry[-1]["mlmon"]["model"] == {"name": "churn", "version": "3"}


def test_interpreter_exit_writes_everything_queued(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    script = textwrap.dedent(f"""
        from mlmon_logging import ModelLogger
        mlog = ModelLogger("m", "1", sink="file://{path}", stats_interval=None, queue_size=100_000)
        for i in range(20_000):
            mlog.log_prediction({{"x": float(i)}}, 1)
        # no flush, no close: the atexit hook must write the queue
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 20_000
    assert orjson.loads(lines[-1])["mlmon"]["features"]["numeric"]["x"] == 19_999.0


def test_a_forked_child_gets_its_own_worker_and_file(tmp_path: Path) -> None:
    template = tmp_path / "events-{pid}.jsonl"
    mlog = ModelLogger("m", "1", sink=f"file://{template}", stats_interval=None)
    mlog.log_prediction({"who": "parent"}, 1)
    mlog.flush()
    child = os.fork()
    if child == 0:
        try:
            mlog.log_prediction({"who": "child"}, 1)
            mlog.close()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    mlog.close()
    parent_lines = (tmp_path / f"events-{os.getpid()}.jsonl").read_bytes().splitlines()
    child_lines = (tmp_path / f"events-{child}.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["mlmon"]["features"]["categorical"]["who"] for x in parent_lines] == ["parent"]
    assert [orjson.loads(x)["mlmon"]["features"]["categorical"]["who"] for x in child_lines] == ["child"]


def _wait_for(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_steady_traffic_is_written_in_few_batches(make_logger: Any, sink: ListSink) -> None:
    # The worker naps between drains instead of being woken per event: fewer GIL hand-offs.
    mlog = make_logger(drain_interval=0.05)
    for i in range(200):
        mlog.log_prediction({"x": float(i)}, 1)
        time.sleep(0.002)
    assert mlog.flush(timeout=10)
    assert len(sink.lines) == 200
    assert sink.writes <= 30  # about one chunk per nap (0.4 s / 0.05 s), not one per event


def test_a_few_events_a_second_do_not_make_callers_wake_the_worker(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger()
    mlog.log_feedback("p", 1)  # the worker was idle: this one wakes it
    assert _wait_for(lambda: sink.count == 1)
    wake = mlog._emitter._wake
    caller_wakes = 0
    original_set = wake.set

    def counting_set() -> None:
        nonlocal caller_wakes
        caller_wakes += 1
        original_set()

    wake.set = counting_set  # type: ignore[method-assign]
    for _ in range(10):
        time.sleep(0.02)
        mlog.log_feedback("p", 1)
    wakes_while_logging = caller_wakes
    assert mlog.flush(timeout=10) and sink.count == 11
    assert wakes_while_logging <= 2  # the worker keeps napping between events (a stall may cost one)


def test_a_burst_wakes_a_napping_worker_before_the_queue_fills(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(queue_size=100, drain_interval=1.0)
    mlog.log_feedback("p", 1)  # wakes the idle worker; after writing it naps for a second
    assert _wait_for(lambda: sink.count == 1)
    started = time.monotonic()
    for _ in range(99):
        mlog.log_feedback("p", 1)  # passing half the bound wakes it early
    assert _wait_for(lambda: sink.count >= 51, timeout=0.8)
    assert time.monotonic() - started < 0.8
    assert mlog.stats.dropped == 0


def test_flush_wakes_a_napping_worker_and_flushes_the_sink(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    mlog = ModelLogger("m", "1", sink=f"file://{path}", stats_interval=None, drain_interval=1.0)
    mlog.log_feedback("p", 1)
    assert _wait_for(lambda: mlog.stats.emitted == 1)
    for _ in range(3):
        mlog.log_feedback("p", 1)  # a few small lines: they would sit in the file's buffer
    started = time.monotonic()
    assert mlog.flush(timeout=5)
    assert time.monotonic() - started < 0.8
    assert len(path.read_bytes().splitlines()) == 4  # readable by another process now, not at close
    mlog.close()


@pytest.mark.parametrize("bad", [-0.1, 2.0])
def test_drain_interval_is_checked(bad: float) -> None:
    with pytest.raises(ValueError, match="drain_interval"):
        ModelLogger("m", "1", sink=ListSink(), stats_interval=None, drain_interval=bad)
