"""A batch call waits for the writer instead of dropping: every row is written, or counted.

``log_prediction`` drops past ``queue_size`` (it must never block a request); a batch call
is off the request path, so it waits for room, fills the queue to half its bound only
(request-path calls sharing the logger keep the other half), and only ``close()`` makes
it drop - counted, so that ``emitted + dropped`` is every row logged.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlmon_logging import ModelLogger
from tests.emitter_batch.conftest import ListSink, MakeLogger


def test_200k_rows_to_a_file_through_a_small_queue_lose_nothing(tmp_path: Path) -> None:
    rows = 200_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"age": rng.normal(40, 10, rows), "plan": rng.choice(["free", "pro"], rows),
                          "y": rng.integers(0, 2, rows), "p": rng.random(rows)})
    path = tmp_path / "events.jsonl"
    started = time.monotonic()
    with ModelLogger("churn", "3", sink=f"file://{path}", queue_size=1_000, stats_interval=None) as mlog:
        ids = mlog.log_predictions(frame, prediction="y", score="p")
    assert time.monotonic() - started < 60
    assert len(set(ids)) == rows
    assert mlog.stats.emitted == rows and mlog.stats.dropped == 0 and mlog.stats.queued == 0
    with path.open("rb") as lines:
        assert sum(1 for _ in lines) == rows


class SlowSink(ListSink):
    """Takes 1 ms a write: the writer falls behind any caller."""

    def write(self, data: bytes | bytearray) -> None:
        time.sleep(0.001)
        super().write(data)


def test_a_slow_sink_makes_the_batch_wait_and_leaves_room_for_the_request_path() -> None:
    sink = SlowSink()
    mlog = ModelLogger("churn", "3", sink=sink, queue_size=200, batch_size=16, stats_interval=None)
    rows = 3_000
    served = []

    def request_path() -> None:  # a service still answering requests while the batch runs
        for i in range(100):
            served.append(mlog.log_prediction({"age": 1.0}, 1, prediction_id=f"live-{i}"))
            time.sleep(0.002)

    live = threading.Thread(target=request_path)
    live.start()
    ids = mlog.log_predictions({"age": [float(i) for i in range(rows)], "y": [1] * rows}, prediction="y")
    live.join()
    mlog.close()
    assert len(ids) == rows and len(served) == 100
    assert mlog.stats.dropped == 0, mlog.stats.dropped_by_reason
    assert mlog.stats.emitted == len(sink.lines) == rows + 100


class StuckSink(ListSink):
    """Blocks every write until released: close() must give up on it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, data: bytes | bytearray) -> None:
        self.release.wait(10)
        super().write(data)


def test_close_during_a_waiting_batch_counts_every_row() -> None:
    sink = StuckSink()
    mlog = ModelLogger("churn", "3", sink=sink, queue_size=100, stats_interval=None, close_timeout=0.1)
    rows = 5_000
    ids: list[str] = []
    batch = threading.Thread(target=lambda: ids.extend(
        mlog.log_predictions({"age": [1.0] * rows, "y": [0] * rows}, prediction="y")))
    batch.start()
    time.sleep(0.3)  # the batch is waiting for room the stuck writer never makes
    assert batch.is_alive()
    mlog.close()
    batch.join(5)
    sink.release.set()
    assert not batch.is_alive() and len(ids) == rows
    stats = mlog.stats
    assert stats.queued == 0
    assert stats.emitted + stats.dropped == rows, stats
    assert stats.dropped_by_reason["closed"] > 0 and stats.dropped_by_reason["close_timeout"] > 0
