"""A label round joins each batch of windows once (issue 19): all traffic and every segment from one join,
and fairness reads the performance job's joins instead of joining the same windows again.

The answers must be those of the separate questions: ``labelled_windows_by_segment`` is checked against one
``labelled_windows`` call per segment (weights from a sample rate, duplicate and early feedback, rows without
a segment, a segment no prediction carries, a batch with a gap, a join cut into passes; classification and
regression), and the documents of a round with shared joins against those of a round without.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.rounds import T0, build_store, config
from mlmon.core.labels import LabelQuery
from mlmon.core.perf_stats import uniform_edges
from mlmon.core.queries import WindowBatch
from mlmon.ingest import ingest_lines
from mlmon.jobs import base
from mlmon.jobs.performance import PerformanceJob
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb import labels as duckdb_labels
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon_logging import ModelLogger

HOUR = timedelta(hours=1)
START = datetime(2025, 5, 1, tzinfo=timezone.utc)
REGIONS = ("north", "south", "east")


def _ship(db: Path, tmp: Path) -> None:
    """Two models over four hours: ``clf`` (binary, scores) and ``reg`` (regression), sampled at 0.5 (weight 2),
    segments ``region`` (always) and ``tier`` (on two rows of three); some feedback twice, some before its
    prediction, some never."""
    rng = np.random.default_rng(7)
    path = tmp / "events.jsonl"
    with ModelLogger("clf", "1", sink=f"file://{path}", stats_interval=None, queue_size=100_000,
                     sample_rate=0.5) as clf, \
            ModelLogger("reg", "1", sink=f"file://{path}", stats_interval=None, queue_size=100_000,
                        sample_rate=0.5) as reg:
        for i in range(1_600):
            when = START + (i / 1_600) * 4 * HOUR
            segment: dict[str, Any] = {"region": REGIONS[i % 3]}
            if i % 3:
                segment["tier"] = "gold" if i % 2 else "basic"
            score = float(rng.uniform())
            clf.log_prediction({"x": score}, "1" if score > 0.5 else "0", score, segment=segment,
                               prediction_id=f"c-{i}", timestamp=when)
            value = float(rng.normal(10, 2))
            reg.log_prediction({"x": value}, value, segment=segment, prediction_id=f"r-{i}", timestamp=when)
            if i % 5 == 0:
                continue  # never labelled
            delay = timedelta(seconds=-30) if i % 11 == 0 else timedelta(minutes=float(rng.exponential(40)))
            actual = "1" if rng.uniform() < score else "0"
            clf.log_feedback(f"c-{i}", actual, timestamp=when + delay)
            reg.log_feedback(f"r-{i}", value + float(rng.normal(0, 1)), timestamp=when + delay)
            if i % 7 == 0:  # a correction later: the latest feedback wins
                clf.log_feedback(f"c-{i}", "0" if actual == "1" else "1", timestamp=when + delay + HOUR)
                reg.log_feedback(f"r-{i}", value, timestamp=when + delay + HOUR)
    with path.open("rb") as lines:
        report = ingest_lines(lines, db)
    assert not report.dead_lettered, report.dead_lettered


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("joins")
    _ship(tmp / "mlmon.duckdb", tmp)
    return tmp / "mlmon.duckdb"


@pytest.fixture
def labels(shipped: Path, tmp_path: Path) -> Iterator[DuckDBLabels]:
    shutil.copy(shipped, tmp_path / "s.duckdb")
    store = DuckDBStore(tmp_path / "s.duckdb")
    found = store.labels()
    assert isinstance(found, DuckDBLabels)
    yield found
    store.close()


QUERIES = {
    "classification": LabelQuery("clf", START, START + 4 * HOUR, "classification", version="1", positive_label="1",
                                 score_edges=uniform_edges(20), cbpe=True),
    "regression": LabelQuery("reg", START, START + 4 * HOUR, "regression", version="1", shift=10.0,
                             error_edges=uniform_edges(10, -3.0, 3.0)),
}
SEGMENTS = {"region": ("north", "east"), "tier": None, "absent": None}


@pytest.mark.parametrize("task", list(QUERIES))
@pytest.mark.parametrize("hours", [(0, 1, 2, 3), (0, 2, 3)], ids=["contiguous", "with-a-gap"])
@pytest.mark.parametrize("max_rows", [duckdb_labels.MAX_JOIN_ROWS, 300], ids=["one-pass", "cut-into-passes"])
def test_one_join_answers_all_traffic_and_each_segment_as_separate_joins_do(
        labels: DuckDBLabels, monkeypatch: pytest.MonkeyPatch, task: str, hours: tuple[int, ...],
        max_rows: int) -> None:
    monkeypatch.setattr(duckdb_labels, "MAX_JOIN_ROWS", max_rows)
    query = QUERIES[task]
    batch = WindowBatch(tuple((START + h * HOUR, START + (h + 1) * HOUR) for h in hours))
    joined = labels.labelled_windows_by_segment(query, batch, SEGMENTS)
    assert joined.keys() == {None, *SEGMENTS}
    assert joined[None] == labels.labelled_windows(query, batch)
    for segment, values in SEGMENTS.items():
        alone = labels.labelled_windows(replace(query, segment=segment, segment_values=values), batch)
        assert joined[segment] == alone, segment
    # The data are what the comparison needs: weights, every segment value asked and no other, rows
    # without a tier, duplicate and early feedback.
    overall = joined[None][0][""]
    assert overall.n_predictions == 2 * overall.rows and overall.duplicate_feedback > 0
    assert overall.delay.underflow > 0
    assert all(found.keys() == {"north", "east"} for found in joined["region"])
    assert all(found.keys() == {"gold", "basic"} for found in joined["tier"])
    assert all(found == {} for found in joined["absent"])
    assert sum(w.rows for w in joined["tier"][0].values()) < overall.rows


def test_a_segment_in_the_query_is_refused(labels: DuckDBLabels) -> None:
    batch = WindowBatch(((START, START + HOUR),))
    with pytest.raises(ValueError, match="segments apart"):
        labels.labelled_windows_by_segment(replace(QUERIES["classification"], segment="region"), batch, {})


# --- the round --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("round") / "built.duckdb"
    build_store(path, days=1, per_hour=100)
    return path


def _round(bench: Path, path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], int]:
    """The label documents of a first round (30 hourly windows of look-back, in two batches) and the joins made."""
    shutil.copy(bench, path)
    joins = 0
    join = DuckDBLabels._joined

    def counted(self: DuckDBLabels, *args: Any) -> Any:
        nonlocal joins
        joins += 1
        return join(self, *args)

    monkeypatch.setattr(DuckDBLabels, "_joined", counted)
    monkeypatch.setattr(base, "BATCH_WINDOWS", 24)
    store = DuckDBStore(path)
    try:
        at = T0 + 20 * HOUR + timedelta(minutes=2)
        report = Runner(config(lookback="30h", maturity_age="4h"), store, clock=lambda: at).round()
        assert report.job_windows["performance"] == report.job_windows["fairness"] == 30
        rows = store.con.execute(
            'SELECT "metric.id", "metric.family", "metric.value", "metric.status", "n.current", "metric.details" '
            "FROM metrics WHERE \"metric.family\" IN ('performance', 'estimated_performance', 'label_coverage', "
            "'fairness')").fetchall()
        docs = {row[0]: row[1:] for row in rows}
    finally:
        store.close()
    return docs, joins


def test_a_label_round_joins_each_batch_once_and_fairness_documents_do_not_change(
        bench: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared, joins = _round(bench, tmp_path / "shared.duckdb", monkeypatch)
    # The labelled reference (one batch of 24 windows) and the two batches of the look-back: once each, for
    # all traffic, the region segment and both jobs (before: all traffic and region apart, per job).
    assert joins == 3
    # Without the performance job's joins, fairness joins itself and writes the same documents.
    monkeypatch.setattr(PerformanceJob, "_share", lambda *args: None)
    alone, joins_alone = _round(bench, tmp_path / "alone.duckdb", monkeypatch)
    assert joins_alone == 5
    assert {family for family, *_ in shared.values()} == {"performance", "estimated_performance", "label_coverage",
                                                          "fairness"}
    assert shared == alone
