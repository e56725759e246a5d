"""R² of targets with a large offset (1e6 + N(0, 1)): the regression sums keep their precision.

The sums behind R²'s total sum of squares are taken around a shift near the
actuals (the store centres them on the window's own mean), so sum_sq - sum²/n
never cancels catastrophically, with or without a performance reference.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from mlmon.config.model import ModelConfig
from mlmon.config.performance import PerformanceConfig
from mlmon.core.perf_stats import RegressionSums
from mlmon.ingest import ingest_lines
from mlmon.jobs.performance import PerformanceJob
from mlmon.metrics.performance import regression_metrics
from mlmon.schedule.runner import run_jobs
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon_logging import ModelLogger

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
OFFSET = 1e6


def _targets(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    actual = OFFSET + rng.normal(0, 1, n)
    return actual, actual + rng.normal(0, 0.5, n)


def test_r2_of_offset_targets_from_raw_rows_matches_sklearn() -> None:
    actual, predicted = _targets(np.random.default_rng(31), 5_000)
    m = regression_metrics(RegressionSums.from_arrays(actual, predicted))
    assert m.value("r2") == pytest.approx(skm.r2_score(actual, predicted), abs=1e-9)


def test_sums_added_across_windows_and_shifts_keep_r2() -> None:
    rng = np.random.default_rng(32)
    parts = [_targets(rng, 1_000) for _ in range(4)]
    total = RegressionSums.empty()  # shift 0: adding must not move centred sums back to it
    for shift, (a, p) in zip((None, OFFSET, OFFSET - 2, OFFSET + 3), parts):
        total = total + RegressionSums.from_arrays(a, p, shift=shift)
    actual = np.concatenate([a for a, _ in parts])
    predicted = np.concatenate([p for _, p in parts])
    assert total.n == actual.size
    assert regression_metrics(total).value("r2") == pytest.approx(skm.r2_score(actual, predicted), abs=1e-6)


def _ship(db: Path, tmp: Path, actual: np.ndarray, predicted: np.ndarray) -> None:
    path = tmp / "events.jsonl"
    n = actual.size
    with ModelLogger("house", "1", sink=f"file://{path}", stats_interval=None, queue_size=200_000) as mlog:
        for i in range(n):
            when = T0 + (i / n) * 2 * HOUR  # two hours: the first is the reference period
            mlog.log_prediction({"rooms": float(i % 7)}, float(predicted[i]), timestamp=when,
                                prediction_id=f"p-{i:06d}")
            mlog.log_feedback(f"p-{i:06d}", float(actual[i]), timestamp=when + timedelta(seconds=30))
    with path.open("rb") as lines:
        report = ingest_lines(lines, db)
    assert not report.dead_lettered, report.dead_lettered


@pytest.mark.parametrize("with_reference", [False, True], ids=["no reference", "with a reference"])
def test_r2_of_offset_targets_through_the_duckdb_store(tmp_path: Path, with_reference: bool) -> None:
    actual, predicted = _targets(np.random.default_rng(33), 4_000)
    db = tmp_path / "mlmon.duckdb"
    _ship(db, tmp_path, actual, predicted)
    model = ModelConfig(name="house", version="1", window=HOUR, lateness=timedelta(minutes=5))
    cfg = PerformanceConfig(task="regression", min_labelled=50, maturity_coverage=0.5,
                            maturity_age=timedelta(hours=1), lookback=timedelta(days=1),
                            reference=(T0, T0 + HOUR) if with_reference else None, cbpe=False)
    at = T0 + 4 * HOUR
    store = DuckDBStore(db)
    try:
        job = PerformanceJob(store, DuckDBLabels(store.con), model, cfg, run_id="r2")
        run_jobs(store, [job], job.schedule.due(at), at)
        docs = store.read_metrics("house", limit=100_000)
    finally:
        store.close()
    second = [d for d in docs if d["metric"]["name"] == "r2" and d["window"]["start"].startswith("2025-03-01T01:00")
              and d["metric"]["segment"]["field"] == ""]
    assert len(second) == 1, [d["metric"] for d in docs if d["metric"]["name"] == "r2"]
    half = actual.size // 2
    assert second[0]["metric"]["value"] == pytest.approx(skm.r2_score(actual[half:], predicted[half:]), abs=1e-6)
