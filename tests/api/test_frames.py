"""Metric and alert documents as flat DataFrames; the API refuses what it cannot do on one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mlmon.api as mm
from mlmon.api.monitor import APIError
from tests.report.docs import alert, doc


def test_metrics_frame_is_flat_with_scalar_details_as_columns() -> None:
    docs = [doc("drift", "wasserstein", 0, 0.3, "alert", feature="age", segment=("region", "rural"),
                details={"p_adjusted": 1e-6, "test": "ks", "groups_left_out": ["a", "b"]}),
            doc("performance", "accuracy", 1, 0.9, "ok", class_label="", maturity="final")]
    frame = mm.metrics_frame(docs)
    first = frame.iloc[0]
    assert (first["segment"], first["segment_field"], first["segment_value"]) == ("region=rural", "region", "rural")
    assert first["details.p_adjusted"] == 1e-6 and first["details.test"] == "ks"
    assert first["details"] == {"groups_left_out": ["a", "b"]}  # lists stay as stored
    assert str(frame["window_end"].dtype) == "datetime64[ms, UTC]" or str(frame["window_end"].dtype).endswith("UTC]")
    assert frame["value"].dtype == "float64" and frame.iloc[1]["maturity"] == "final"
    assert pd.isna(frame.iloc[1]["details.test"])


def test_alerts_frame() -> None:
    frame = mm.alerts_frame([alert(2, "fired", "f1", "performance", class_label="1", segment=("region", "rural"))])
    row = frame.iloc[0]
    assert (row["action"], row["status"], row["metric"], row["class"], row["segment"]) == (
        "fired", "alert", "f1", "1", "region=rural")
    assert row["bad_windows"] == 2 and str(row["window_end"]) == "2026-11-01 03:00:00+00:00"


def test_run_without_config_and_naive_times_are_refused(tmp_path: Path) -> None:
    mon = mm.connect(f"duckdb:///{tmp_path}/m.duckdb")
    with pytest.raises(APIError, match="needs the configuration: connect"):
        mon.run()
    from datetime import datetime
    with pytest.raises(APIError, match="naive"):
        mon.metrics(start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="not a store URL"):
        mm.connect("localhost")


def test_a_feature_view_cut_by_the_read_limit_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timedelta, timezone

    from mlmon.api import monitor
    from mlmon.core.documents import MetricDocument
    from mlmon.stores.duckdb.store import DuckDBStore

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    store = DuckDBStore(tmp_path / "m.duckdb")
    store.write_metrics([MetricDocument(model="churn", model_version="3", family="drift", metric="wasserstein",
                                        window_start=t0 + timedelta(hours=h), window_end=t0 + timedelta(hours=h + 1),
                                        value=0.1, status="ok", n_current=100, run_id="r", code_version="c",
                                        feature="age") for h in range(3)])
    store.close()
    mon = mm.connect(f"duckdb:///{tmp_path}/m.duckdb")
    whole = mon.feature_drift("churn", "age")
    assert "left out" not in repr(whole) and "left out" not in whole.html
    monkeypatch.setattr(monitor, "DEFAULT_LIMIT", 2)
    cut = mon.feature_drift("churn", "age")
    assert "the newest 2 of 3 documents" in repr(cut) and "the newest 2 of 3 documents" in cut.html
