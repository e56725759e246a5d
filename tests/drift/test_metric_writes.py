"""Metric documents in the embedded store: one row per id (last write wins), and all-or-nothing batches."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlmon.core.documents import METRIC_FIELDS, MetricDocument, Threshold
from mlmon.stores.protocols import StoreError
from mlmon.stores.duckdb.schema import METRICS_TABLE, quote, sql_type
from mlmon.stores.duckdb.store import DuckDBStore

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _doc(feature: str, value: float) -> MetricDocument:
    return MetricDocument(model="churn", model_version="3", family="drift", metric="psi", feature=feature,
                          window_start=T0, window_end=T0 + timedelta(hours=1), value=value, status="ok",
                          n_current=1000, run_id="r1", code_version="t", threshold=Threshold(0.1, 0.25),
                          details={"p_value": 0.5})


def test_rewriting_a_window_overwrites_and_a_batch_keeps_its_last_copy(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "m.duckdb")
    store.write_metrics([_doc("age", 0.01), _doc("plan", 0.02)])
    store.write_metrics([_doc("age", 0.3), replace(_doc("age", 0.4), run_id="r2")])
    rows = store.read_metrics(model="churn")
    assert len(rows) == 2
    age = next(r for r in rows if r["metric"]["feature"] == "age")
    assert age["metric"]["value"] == 0.4 and age["job"]["run_id"] == "r2"
    assert age["metric"]["details"] == {"p_value": 0.5}
    store.close()


def test_a_failing_batch_writes_nothing(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "m.duckdb")
    # A table that refuses one of the rows: the whole batch must be rolled back.
    cols = ", ".join(f"{quote(n)} {sql_type(t)}" for n, t in METRIC_FIELDS.items())
    store.con.execute(f"DROP TABLE {METRICS_TABLE}")
    store.con.execute(f"CREATE TABLE {METRICS_TABLE} ({cols}, CHECK ({quote('metric.value')} < 100))")
    with pytest.raises(StoreError, match="none written"):
        store.write_metrics([_doc("age", 0.1), _doc("plan", 1000.0)])
    assert store.con.execute(f"SELECT count(*) FROM {METRICS_TABLE}").fetchone() == (0,)
    store.write_metrics([_doc("age", 0.1)])  # the connection is usable afterwards
    assert len(store.read_metrics(model="churn")) == 1
    store.close()


def test_a_document_makes_its_value_and_details_storable() -> None:
    import json

    import numpy as np

    doc = replace(_doc("age", float("nan")), details={"p": np.float64(0.01), "inf": float("inf"),
                                                       "bins": (np.int64(3), 4), "nested": {"x": np.nan}})
    assert doc.value is None
    assert doc.details == {"p": 0.01, "inf": None, "bins": [3, 4], "nested": {"x": None}}
    json.dumps(doc.to_source(), allow_nan=False)  # raises on NaN/inf or numpy values
    # Plain details pass as they are, each non-finite float alone among them is caught, and the
    # document keeps its own copy.
    for bad in (float("-inf"), float("nan")):
        assert replace(_doc("age", 0.1), details={"a": 1.5, "b": bad, "c": "x"}).details == \
            {"a": 1.5, "b": None, "c": "x"}
    mine = {"a": 1.5, "n": 3}
    doc = replace(_doc("age", 0.1), details=mine)
    mine["a"] = 2.5
    assert doc.details == {"a": 1.5, "n": 3}


def _ids(store: DuckDBStore) -> tuple[int, int]:
    (rows, ids), = store.con.execute(f"SELECT count(*), count(DISTINCT {quote('metric.id')}) "
                                     f"FROM {METRICS_TABLE}").fetchall()
    return rows, ids


def test_rewrites_keep_one_row_per_id_across_windows_and_batches(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "m.duckdb")
    days = [replace(_doc(f, 0.1), window_start=T0 + timedelta(days=d), window_end=T0 + timedelta(days=d, hours=1))
            for d in range(10) for f in ("age", "plan")]
    store.write_metrics(days)
    # Windows 3..5 again, with new values: their rows replaced, the others untouched.
    again = [replace(d, value=0.9, run_id="r2") for d in days if 3 <= (d.window_start - T0).days <= 5]
    store.write_metrics(again)
    assert _ids(store) == (20, 20)
    rows = {(r["window"]["start"], r["metric"]["feature"]): r["metric"]["value"] for r in store.read_metrics()}
    assert sorted(v for v in rows.values()) == [0.1] * 14 + [0.9] * 6
    store.close()


def test_concurrent_writers_of_one_file_leave_one_row_per_id(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "m.duckdb"
    stores = [DuckDBStore(path), DuckDBStore(path)]  # one database in this process, two connections
    docs = [_doc(f"f{i}", 0.1) for i in range(300)]
    go = threading.Barrier(4)

    errors: list[Exception] = []

    def write(store: DuckDBStore, k: int) -> None:
        go.wait()
        try:
            for j in range(5):
                store.write_metrics([replace(d, value=float(k * 10 + j)) for d in docs])
        except Exception as err:  # noqa: BLE001 - collected: the assertion below shows it
            errors.append(err)

    threads = [threading.Thread(target=write, args=(stores[k % 2], k)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []  # neither a write-write conflict nor a duplicate row
    assert _ids(stores[0]) == (300, 300)
    for store in stores:
        store.close()


def _back_to_layout_3(path: Path) -> None:
    """The store's metrics as layout 3 kept them: the same rows, out of window order, keyed by metric.id."""
    import duckdb

    con = duckdb.connect(str(path))
    cols = ", ".join(f"{quote(n)} {sql_type(t)}" for n, t in METRIC_FIELDS.items())
    con.execute(f"CREATE TABLE old_rows AS SELECT * FROM {METRICS_TABLE} ORDER BY {quote('window.end')} DESC")
    con.execute(f"DROP TABLE {METRICS_TABLE}")
    con.execute(f"CREATE TABLE {METRICS_TABLE} ({cols}, PRIMARY KEY ({quote('metric.id')}))")
    con.execute(f"INSERT INTO {METRICS_TABLE} SELECT * FROM old_rows")
    con.execute("DROP TABLE old_rows")
    con.execute("UPDATE mlmon_meta SET value = '3' WHERE key = 'store_schema_version'")
    con.close()


def test_a_store_of_layout_3_loses_the_metrics_primary_key_and_keeps_its_rows(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.duckdb"
    store = DuckDBStore(path)
    store.write_metrics([replace(_doc(f, 0.2), window_start=T0 + timedelta(hours=h),
                                 window_end=T0 + timedelta(hours=h + 1)) for h in (5, 1, 3) for f in ("a", "b")])
    store.close()
    _back_to_layout_3(path)

    with caplog.at_level("WARNING", logger="mlmon.stores"):
        store = DuckDBStore(path)
    assert [r.getMessage() for r in caplog.records] == [
        "mlmon: upgrading the store's metrics table to layout 4 (6 rows rewritten, once)"]
    keys = store.con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? "
                             "AND constraint_type = 'PRIMARY KEY'", [METRICS_TABLE]).fetchall()
    assert keys == [(0,)]
    assert store.con.execute("SELECT value FROM mlmon_meta WHERE key = 'store_schema_version'").fetchall() == [("4",)]
    ends = [r[0] for r in store.con.execute(f"SELECT {quote('window.end')} FROM {METRICS_TABLE}").fetchall()]
    assert len(ends) == 6 and ends == sorted(ends)  # rebuilt in window order
    store.write_metrics([replace(_doc("a", 0.7), window_start=T0 + timedelta(hours=3),
                                 window_end=T0 + timedelta(hours=4))])
    assert _ids(store) == (6, 6)
    store.close()


def test_an_empty_metrics_table_of_layout_3_is_upgraded_without_a_word(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.duckdb"
    DuckDBStore(path).close()
    _back_to_layout_3(path)
    with caplog.at_level("WARNING", logger="mlmon.stores"):
        store = DuckDBStore(path)
    assert caplog.records == []  # nothing was rewritten: nothing to say
    assert store.con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? "
                             "AND constraint_type = 'PRIMARY KEY'", [METRICS_TABLE]).fetchall() == [(0,)]
    store.close()
