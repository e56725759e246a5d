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
    store.con.execute(f"CREATE TABLE {METRICS_TABLE} ({cols}, PRIMARY KEY ({quote('metric.id')}), "
                      f"CHECK ({quote('metric.value')} < 100))")
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
