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


def test_a_feature_view_cut_by_the_read_limit_says_so() -> None:
    from mlmon.api.views import FeatureView

    docs = [doc("drift", "wasserstein", day, 0.1, "ok", feature="age") for day in range(3)]
    whole, cut = FeatureView("churn", "age", docs), FeatureView("churn", "age", docs, total=10)
    assert "left out" not in repr(whole) and "left out" not in whole.html
    assert "the newest 3 of 10 documents" in repr(cut) and "the newest 3 of 10 documents" in cut.html
