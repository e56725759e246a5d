"""With no version configured, each version's traffic gets its own documents, named after it (issue 14, item 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlmon.config.model import parse
from mlmon.core.reference import ReferenceProfile, build_from_frame
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb.store import DuckDBStore
from tests.schedule.conftest import HOUR, T0
from tools.synth import HOUR as PERF_HOUR, T0 as PERF_T0, Traffic, binary_traffic, load_traffic

Doc = dict[str, Any]


def _rows(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
    """(window start, version) -> the drift volume document of all traffic."""
    return {(d["window"]["start"], d["mlmon"]["model"]["version"]): d for d in docs
            if d["metric"]["name"] == "rows" and not d["metric"]["segment"]["field"]}


def test_each_version_is_counted_and_named_alone(store: DuckDBStore,
                                                  references: dict[str, ReferenceProfile]) -> None:
    Runner(parse({"models": {"churn": {}}}), store).backfill(T0, T0 + 2 * HOUR, progress=False)
    rows = _rows(store.read_metrics("churn", limit=100_000))
    h0, h1 = "2025-01-01T00:00:00.000Z", "2025-01-01T01:00:00.000Z"
    # Hour 0 is version 1's traffic only: never labelled with the newest reference's version 2.
    assert set(rows) == {(h0, "1"), (h1, "1"), (h1, "3")}
    assert rows[(h0, "1")]["n"]["current"] == 3_000 and rows[(h1, "1")]["n"]["current"] == 2_000
    assert rows[(h1, "3")]["n"]["current"] == 1_000
    # Each version against its own profile; version 3 has none: the newest, and the document says so.
    assert rows[(h0, "1")]["reference"]["id"] == references["1"].id
    assert rows[(h1, "3")]["reference"]["id"] == references["2"].id
    assert "no reference profile for version 3" in rows[(h1, "3")]["metric"]["details"]["reference_note"]
    assert "reference_note" not in rows[(h1, "1")]["metric"]["details"]


def test_a_configured_version_keeps_one_set_of_documents_and_its_checkpoint_key(store: DuckDBStore) -> None:
    runner = Runner(parse({"models": {"churn": {"version": "1", "lateness": "1m"}}}), store)
    runner.round(at=T0 + 2 * HOUR + 5 * 60 * (HOUR / 3600))
    assert {v for _, v in _rows(store.read_metrics("churn"))} == {"1"}
    assert store.get_checkpoint("drift:churn:1") == T0 + 2 * HOUR


def test_no_version_checkpoint_key_is_stable(store: DuckDBStore) -> None:
    Runner(parse({"models": {"churn": {}}}), store).round(at=T0 + 2 * HOUR + HOUR / 12)
    assert store.get_checkpoint("drift:churn:*") == T0 + 2 * HOUR


def _two_version_store(path: Path) -> DuckDBStore:
    """One hour with 400 predictions of version 1 and 200 of version 2, most of them labelled."""
    rng = np.random.default_rng(41)
    a = binary_traffic(rng, 400, PERF_T0, PERF_HOUR, version="1", label_share=0.9)
    b = binary_traffic(rng, 200, PERF_T0, PERF_HOUR, version="2", label_share=0.9)
    store = DuckDBStore(path)
    load_traffic(store.con, Traffic(pd.concat([a.predictions, b.predictions], ignore_index=True),
                                    pd.concat([a.feedback, b.feedback], ignore_index=True)))
    store.put_reference(build_from_frame(pd.DataFrame({"tenure": rng.normal(size=300)}), "churn", "2", source="t"))
    return store


def test_performance_and_fairness_per_version(tmp_path: Path) -> None:
    store = _two_version_store(tmp_path / "p.duckdb")
    try:
        cfg = parse({"models": {"churn": {"performance": {"task": "classification", "min_labelled": 20},
                                          "fairness": {"attributes": ["country"], "min_group_size": 10}}}})
        Runner(cfg, store, clock=lambda: PERF_T0 + 30 * 24 * PERF_HOUR).backfill(PERF_T0, PERF_T0 + PERF_HOUR,
                                                                                  progress=False)
        docs = store.read_metrics("churn", limit=100_000)
    finally:
        store.close()
    coverage = {d["mlmon"]["model"]["version"]: d["n"]["current"] for d in docs
                if d["metric"]["name"] == "label_coverage" and not d["metric"]["segment"]["field"]}
    assert coverage == {"1": 400, "2": 200}
    assert {d["mlmon"]["model"]["version"] for d in docs if d["metric"]["family"] == "fairness"} == {"1", "2"}
    selection = {d["mlmon"]["model"]["version"]: d["n"]["current"] for d in docs
                 if d["metric"]["name"] == "demographic_parity_difference"}
    assert selection["1"] > selection["2"] > 0  # each from its own version's predictions
