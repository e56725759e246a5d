"""The embedded store lets go of DuckDB's block cache after each batch of windows (issue 19: memory follows
the batch, not the history a backfill walked)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from benchmarks.rounds import T0, build_store, config
from mlmon.jobs import base
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb.store import DuckDBStore


def _cached_mb(store: DuckDBStore) -> float:
    (mb,) = store.con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) / 2 ** 20 FROM duckdb_memory() "
                              "WHERE tag = 'BASE_TABLE'").fetchall()[0]
    return float(mb)


def test_release_cache_evicts_table_blocks_and_keeps_the_memory_limit(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.con.execute("CREATE TABLE big AS SELECT range AS i, random() AS x FROM range(8000000)")
    store.con.execute("CHECKPOINT")
    store.con.execute("SELECT sum(x), max(i) FROM big").fetchall()
    assert _cached_mb(store) > 50  # the scan left the table's blocks in the buffer pool
    store.con.execute("INSERT INTO big VALUES (-1, 0.5)")  # a change in the write-ahead log
    wal = tmp_path / "s.duckdb.wal"
    assert wal.stat().st_size > 0
    (limit,) = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0]
    store.release_cache()
    assert _cached_mb(store) <= 32  # what it lets DuckDB keep
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed first
    store.release_cache()  # idempotent: the limit does not drift
    assert store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0] == (limit,)
    assert store.con.execute("SELECT count(*) FROM big").fetchall() == [(8000001,)]  # the data is all there
    store.close()


def test_a_backfill_releases_the_cache_after_each_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "b.duckdb"
    build_store(path, days=1, per_hour=50)
    monkeypatch.setattr(base, "BATCH_WINDOWS", 4)
    store = DuckDBStore(path)
    calls: list[int] = []
    release = store.release_cache
    monkeypatch.setattr(store, "release_cache", lambda: (calls.append(1), release())[1])
    try:
        Runner(config(), store, clock=lambda: T0 + timedelta(days=2)).backfill(T0, T0 + timedelta(hours=12),
                                                                                progress=False)
        assert len(calls) == 3  # 12 windows in batches of 4
        calls.clear()
        # A round reads its look-back at most and is followed by closing the store: it keeps its cache.
        Runner(config(lookback="1d", maturity_age="1d"), store,
               clock=lambda: T0 + timedelta(hours=13, minutes=2)).round()
        assert calls == []
    finally:
        store.close()
