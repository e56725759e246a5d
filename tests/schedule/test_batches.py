"""Batched rounds and backfills (issue 19) write the documents the per-window path writes.

The same store is backfilled twice, once asking the store window by window
(``BATCH_WINDOWS = 1``, the previous design) and once in batches: every family,
with segments, labels, explanations and fairness. Document ids must be equal and
every value within 1e-12 (DuckDB's parallel sums may differ in the last bit).
The store-level batch answers are checked against single-window answers too, with
a gap in the batch and with the label join cut into several passes.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from benchmarks.rounds import T0, build_store, config
from mlmon.config.model import Config
from mlmon.core.labels import LabelQuery, OrphanFeedback
from mlmon.core.queries import WindowBatch, WindowQuery
from mlmon.jobs import base
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb import labels as duckdb_labels
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon.stores.protocols import StoreError

HOUR = timedelta(hours=1)
AT = T0 + 8 * HOUR + timedelta(minutes=2)   # windows of the first hours: labels of the last ones still arriving
SPAN = 6 * HOUR
RUN_FIELDS = ("job.run_id", "job.computed_at")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batches") / "built.duckdb"
    build_store(path, days=1, per_hour=100)
    return path


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Iterator[DuckDBStore]:
    shutil.copy(built, tmp_path / "s.duckdb")
    s = DuckDBStore(tmp_path / "s.duckdb")
    yield s
    s.close()


def _unversioned(cfg: Config) -> Config:
    return replace(cfg, models=tuple(replace(m, version=None) for m in cfg.models))


def _rows(store: DuckDBStore, table: str, key: str) -> dict[str, dict[str, Any]]:
    rows = store.con.execute(f"SELECT * FROM {table}").fetchall()
    columns = [c[0] for c in store.con.execute(f"DESCRIBE {table}").fetchall()]
    by_id = {str(d[key]): {k: v for k, v in d.items() if k not in RUN_FIELDS}
             for d in (dict(zip(columns, row, strict=True)) for row in rows)}
    assert len(by_id) == len(rows), f"{table}: {len(rows) - len(by_id)} rows repeat an id"
    return by_id


def _documents(path: Path, cfg: Config, batch: int,
               monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The metric documents and the alerts a backfill then a round write, by id."""
    monkeypatch.setattr(base, "BATCH_WINDOWS", batch)
    store = DuckDBStore(path)
    try:
        Runner(cfg, store, clock=lambda: AT).backfill(T0, T0 + SPAN, progress=False)
        Runner(cfg, store, clock=lambda: AT + HOUR).round()   # the label look-back, recomputed in a round
        return _rows(store, "metrics", "metric.id"), _rows(store, "alerts", "alert.id")
    finally:
        store.close()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    if isinstance(a, str) and isinstance(b, str) and a.startswith("{"):
        import json

        return _same(json.loads(a), json.loads(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.mark.parametrize("versioned", [True, False], ids=["version-configured", "per-traffic-version"])
def test_batched_backfill_and_round_write_the_per_window_documents(built: Path, tmp_path: Path, versioned: bool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Maturity age 4h: the older backfilled windows are final by age, the newer provisional.
    cfg = config(lookback="5h", maturity_age="4h")
    cfg = cfg if versioned else _unversioned(cfg)
    paths = [tmp_path / "per_window.duckdb", tmp_path / "batched.duckdb"]
    for p in paths:
        shutil.copy(built, p)
    per_window, per_window_alerts = _documents(paths[0], cfg, 1, monkeypatch)
    # 6 windows in batches of 4: a short last batch
    batched, batched_alerts = _documents(paths[1], cfg, 4, monkeypatch)
    # The alerts too (the engine judges a batch's windows in order, with the context before the batch).
    assert per_window_alerts and per_window_alerts.keys() == batched_alerts.keys()
    assert all(_same(per_window_alerts[k], batched_alerts[k]) for k in per_window_alerts)
    assert per_window.keys() == batched.keys()
    families = {d["metric.family"] for d in per_window.values()}
    assert families >= {"drift", "data_quality", "performance", "estimated_performance", "label_coverage",
                        "explainability", "fairness", "volume"}
    differing = [k for k in per_window if not _same(per_window[k], batched[k])]
    assert not differing, [(k, {f: (per_window[k][f], batched[k][f]) for f in per_window[k]
                                if not _same(per_window[k][f], batched[k][f])}) for k in differing[:3]]


def test_window_statistics_of_a_batch_with_a_gap_equal_single_windows(store: DuckDBStore) -> None:
    reference = store.get_reference("bench")
    assert reference is not None
    windows = ((T0, T0 + HOUR), (T0 + 2 * HOUR, T0 + 3 * HOUR), (T0 + 5 * HOUR, T0 + 6 * HOUR))
    query = WindowQuery("bench", T0, T0 + 6 * HOUR, segment=("region", "rural"),
                        numeric={f: s.edges for f, s in reference.numeric.items()},
                        categorical={f: tuple(s.counts) for f, s in reference.categorical.items()})
    batched = store.window_statistics_batch(query, WindowBatch(windows))
    alone = [store.window_statistics(replace(query, start=s, end=e)) for s, e in windows]
    assert [b.rows for b in batched] == [a.rows for a in alone] and all(a.rows > 0 for a in alone)
    for b, a in zip(batched, alone):
        assert b.categorical == a.categorical
        for f, stats in a.numeric.items():
            got = b.numeric[f]
            assert (got.counts, got.missing, got.minimum, got.maximum) == \
                (stats.counts, stats.missing, stats.minimum, stats.maximum)
            assert got.total == pytest.approx(stats.total, rel=1e-12)
            assert got.total_sq == pytest.approx(stats.total_sq, rel=1e-12)


def test_label_join_cut_into_bounded_passes_equals_single_windows(store: DuckDBStore,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_labels, "MAX_JOIN_ROWS", 250)   # about two windows per pass
    labels = store.labels()
    assert isinstance(labels, duckdb_labels.DuckDBLabels)
    windows = tuple((T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in (0, 1, 2, 4, 5, 6, 7))
    query = LabelQuery("bench", T0, T0 + 8 * HOUR, "classification", segment="region", cbpe=True)
    passes: list[WindowBatch] = []
    bounded = labels._bounded

    def spy(model: str, version: str | None, batch: WindowBatch) -> list[WindowBatch]:
        found = bounded(model, version, batch)
        passes.extend(found)
        return found

    monkeypatch.setattr(labels, "_bounded", spy)
    batched = labels.labelled_windows(query, WindowBatch(windows))
    assert len(passes) >= 3
    monkeypatch.undo()
    alone = [labels.labelled_window(replace(query, start=s, end=e)) for s, e in windows]
    assert len(batched) == len(alone)
    for b, a in zip(batched, alone):
        assert b.keys() == a.keys() == {"urban", "rural"}
        for seg in a:
            assert (b[seg].rows, b[seg].labelled_rows, b[seg].duplicate_feedback) == \
                (a[seg].rows, a[seg].labelled_rows, a[seg].duplicate_feedback)
            assert b[seg].n_labelled == pytest.approx(a[seg].n_labelled, rel=1e-12)
            got, want = b[seg].classification, a[seg].classification
            assert got is not None and want is not None
            assert got.confusion == want.confusion
            assert b[seg].delay == a[seg].delay
    orphans = labels.orphan_feedback_batch("bench", WindowBatch(windows))
    assert orphans == [labels.orphan_feedback("bench", s, e) for s, e in windows]


def test_a_window_alone_and_in_a_batch_gets_the_same_bits(store: DuckDBStore,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The joined rows are summed in one order (the predictions table's) whatever the batch, the passes and the
    # join's threads: a window's statistics are equal, not close, however it is asked.
    labels = store.labels()
    assert isinstance(labels, duckdb_labels.DuckDBLabels)
    windows = tuple((T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in range(8))
    query = LabelQuery("bench", T0, T0 + 8 * HOUR, "classification", cbpe=True)
    batched = labels.labelled_windows_by_segment(query, WindowBatch(windows), {"region": None})
    assert batched == labels.labelled_windows_by_segment(query, WindowBatch(windows), {"region": None})
    # in passes of about two windows, each joined while the one before is folded
    monkeypatch.setattr(duckdb_labels, "MAX_JOIN_ROWS", 250)
    assert len(labels._bounded("bench", None, WindowBatch(windows))) >= 3
    assert labels.labelled_windows_by_segment(query, WindowBatch(windows), {"region": None}) == batched
    monkeypatch.undo()
    for i, (s, e) in enumerate(windows):
        alone = labels.labelled_windows_by_segment(replace(query, start=s, end=e), WindowBatch(((s, e),)),
                                                   {"region": None})
        assert {part: found[0] for part, found in alone.items()} == {part: found[i] for part, found in batched.items()}
        assert batched[None][i][""].labelled_rows > 0 and batched["region"][i].keys() == {"urban", "rural"}


def test_a_failing_pass_is_a_store_error_and_stops_the_join(store: DuckDBStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    labels = store.labels()
    assert isinstance(labels, duckdb_labels.DuckDBLabels)
    monkeypatch.setattr(duckdb_labels, "MAX_JOIN_ROWS", 250)
    joined = labels._joined
    passes = 0

    def second_fails(*args: Any) -> Any:
        nonlocal passes
        passes += 1
        if passes == 2:
            raise duckdb.IOException("disk gone")
        return joined(*args)

    monkeypatch.setattr(labels, "_joined", second_fails)
    query = LabelQuery("bench", T0, T0 + 8 * HOUR, "classification")
    with pytest.raises(StoreError, match="label join of bench .*disk gone"):
        labels.labelled_windows(query, WindowBatch(tuple((T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in range(8))))
    assert passes == 2   # no pass joined after the failure
    monkeypatch.undo()
    assert labels.labelled_window(query)[""].rows > 0   # the connection still answers


def _add_orphans(store: DuckDBStore) -> None:
    """Copies of a seventh of the feedback naming predictions the store does not have."""
    pid, eid = '"mlmon.prediction.id"', '"event.id"'
    store.con.execute(f"INSERT INTO feedback SELECT * REPLACE ('ghost-' || {pid} AS {pid}, 'ghost-' || {eid} AS {eid}) "
                      f"FROM feedback WHERE hash({eid}) % 7 = 0")


@pytest.mark.parametrize("version", [None, "1"])
def test_window_inputs_count_the_orphan_feedback_as_each_window_alone(store: DuckDBStore, version: str | None) -> None:
    _add_orphans(store)
    labels = store.labels()
    assert isinstance(labels, duckdb_labels.DuckDBLabels)
    # A gap, and a last window past the data.
    windows = tuple((T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in (0, 1, 3, 4, 24 * 60))
    alone = [labels.orphan_feedback("bench", s, e, version) for s, e in windows]
    inputs = labels.window_inputs("bench", WindowBatch(windows), version)
    assert [i.orphans for i in inputs] == alone
    assert sum(o.orphans for o in alone) >= 10 and alone[-1] == OrphanFeedback(0, 0)
    assert any(len(o.example_ids) == 5 < o.orphans for o in alone)  # the examples are a few, not all


def test_label_passes_are_cut_by_the_window_inputs_counts(store: DuckDBStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_labels, "MAX_JOIN_ROWS", 250)
    labels = store.labels()
    assert isinstance(labels, duckdb_labels.DuckDBLabels)
    batch = WindowBatch(tuple((T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in (0, 1, 2, 4, 5, 6, 7)))
    counted = labels._bounded("bench", "1", batch)   # by its own count of the predictions
    assert len(counted) >= 3
    labels.window_inputs("bench", batch, "1")
    asked: list[str] = []
    con = labels.con

    class Spy:
        def execute(self, sql: str, *args: Any) -> Any:
            asked.append(sql)
            return con.execute(sql, *args)

    monkeypatch.setattr(labels, "con", Spy())
    assert labels._bounded("bench", "1", batch) == counted
    assert not asked   # the window inputs of the round counted them
    other = WindowBatch(batch.windows[:-1] + ((T0 + 9 * HOUR, T0 + 10 * HOUR),))
    labels._bounded("bench", "1", other)
    assert len(asked) == 1   # a window the inputs did not count: counted again


def test_performance_documents_take_the_orphans_counted_with_the_inputs(built: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(lookback="5h", maturity_age="4h")
    asked: list[WindowBatch] = []
    counting = duckdb_labels.DuckDBLabels.orphan_feedback_batch

    def spy(self: duckdb_labels.DuckDBLabels, model: str, batch: WindowBatch,
            version: str | None = None) -> list[OrphanFeedback]:
        asked.append(batch)
        return counting(self, model, batch, version)

    monkeypatch.setattr(duckdb_labels.DuckDBLabels, "orphan_feedback_batch", spy)
    found = []
    windows = [(T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in range(6)]
    for strip in (False, True):
        asked.clear()
        path = tmp_path / f"{strip}.duckdb"
        shutil.copy(built, path)
        store = DuckDBStore(path)
        _add_orphans(store)
        if strip:   # as a store that does not count them with the inputs: the job asks for them
            inputs = duckdb_labels.DuckDBLabels.window_inputs
            monkeypatch.setattr(duckdb_labels.DuckDBLabels, "window_inputs",
                                lambda *a, **k: [replace(i, orphans=None) for i in inputs(*a, **k)])
        try:
            Runner(cfg, store, clock=lambda: AT).backfill(T0, T0 + SPAN, progress=False)
            found.append(_rows(store, "metrics", "metric.id"))
        finally:
            store.close()
        # Counted with the inputs, but for the windows the backfill settles (older than the maturity age,
        # from the look-back's start), which need no inputs: their orphans are asked.
        assert [w for batch in asked for w in batch.windows] == (windows if strip else windows[:4])
    counted, queried = found
    orphans = {k: d for k, d in counted.items() if d["metric.name"] == "orphan_feedback"}
    assert len(orphans) == 6 and sum(d["metric.value"] for d in orphans.values()) >= 10
    assert counted.keys() == queried.keys()
    assert all(_same(counted[k], queried[k]) for k in counted)


def test_a_first_label_round_reads_no_inputs_of_the_windows_it_settles(store: DuckDBStore,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(lookback="5h", maturity_age="4h")
    read: list[tuple[str, tuple[base.Window, ...]]] = []
    inputs = duckdb_labels.DuckDBLabels.window_inputs

    def spy(self: duckdb_labels.DuckDBLabels, model: str, batch: WindowBatch, version: str | None = None) -> Any:
        read.append((model, batch.windows))
        return inputs(self, model, batch, version)

    monkeypatch.setattr(duckdb_labels.DuckDBLabels, "window_inputs", spy)
    first = Runner(cfg, store, clock=lambda: AT).label_round(cfg.models[0], AT, "first")
    # The look-back starts at 03:00; windows ending 4 h before the round (04:00) settle: 03:00-04:00.
    assert first.windows == 5 and first.final == 1
    young = tuple((T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in range(4, 8))
    assert read == [("bench", young)]   # once for both jobs: fairness plans from the round's cache
    stored = store.con.execute("SELECT key, window_start FROM mlmon_window_fingerprints").fetchall()
    assert sorted(stored) == sorted((k, s) for k in ("performance:bench:1", "fairness:bench:1") for s, _ in young)
    read.clear()
    again = Runner(cfg, store, clock=lambda: AT).label_round(cfg.models[0], AT, "again")
    assert (again.windows, again.unchanged) == (4, 4) and read == [("bench", young)]


def test_attribution_sums_of_a_batch_with_a_segment_equal_single_windows(store: DuckDBStore) -> None:
    explain = store.explain_queries()
    windows = ((T0 + HOUR, T0 + 2 * HOUR), (T0 + 3 * HOUR, T0 + 4 * HOUR))
    batched = explain.attribution_sums_batch("bench", WindowBatch(windows), segment=("region", "urban"))  # type: ignore[attr-defined]
    alone = [explain.attribution_sums("bench", s, e, segment=("region", "urban")) for s, e in windows]
    assert all(s.n > 0 for a in alone for s in a.values())
    for b, a in zip(batched, alone):
        assert b.keys() == a.keys()
        for f in a:
            assert b[f].n == a[f].n
            assert b[f].sum_abs == pytest.approx(a[f].sum_abs, rel=1e-12)


def test_a_batch_refuses_windows_of_other_sizes_or_out_of_order() -> None:
    with pytest.raises(ValueError, match="not aligned"):
        WindowBatch(((T0, T0 + HOUR), (T0 + HOUR, T0 + 3 * HOUR)))
    with pytest.raises(ValueError, match="sorted"):
        WindowBatch(((T0 + HOUR, T0 + 2 * HOUR), (T0, T0 + HOUR)))
    assert WindowBatch(((T0, T0 + HOUR), (T0 + 3 * HOUR, T0 + 4 * HOUR))).slots == (0, 3)
