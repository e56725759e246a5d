"""One model's (or job's) failure is reported and the rest run (items 2 and 3 of issue 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlmon.cli.main import main
from mlmon.config.model import parse
from mlmon.core.reference import build_from_frame
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb.store import DuckDBStore
from tests.schedule.conftest import HOUR, T0
from tools.synth import HOUR as PERF_HOUR, T0 as PERF_T0, binary_traffic, load_traffic, make_features


def _versions(docs: list[dict], family: str) -> set[str]:
    return {d["mlmon"]["model"]["name"] for d in docs if d["metric"]["family"] == family}


def test_a_failing_model_does_not_stop_the_next(store: DuckDBStore) -> None:
    # "first" asks for a feature its reference lacks: its drift fails; "churn" still gets its documents.
    store.put_reference(build_from_frame(make_features(np.random.default_rng(1), 500), "first", "1", source="t"))
    cfg = parse({"models": {"first": {"drift": {"features": ["nope"]}}, "churn": {"version": "1"}}})
    report = Runner(cfg, store).backfill(T0, T0 + HOUR, progress=False)
    docs = store.read_metrics(limit=100_000)
    assert _versions(docs, "drift") == {"churn"}
    [failure] = report.failures
    assert (failure.model, failure.job) == ("first", "drift") and "nope" in failure.error


def test_cli_reports_the_failure_and_exits_1(tmp_path: Path, store: DuckDBStore,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = store.path
    store.close()
    config = tmp_path / "mlmon.yaml"
    config.write_text(f"store: duckdb:///{path}\nmodels:\n  ghost:\n    drift: {{min_rows: 5}}\n"
                      "  churn:\n    version: '1'\n")
    code = main(["run", "--config", str(config), "--at", "2025-01-01T02:05:00Z"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "model ghost, job drift: model ghost: no reference profile" in err
    assert "1 job(s) failed (ghost)" in err
    assert "model churn: 1 windows computed, 1 with data" in out


def _labelled_store(path: Path) -> DuckDBStore:
    rng = np.random.default_rng(7)
    store = DuckDBStore(path)
    load_traffic(store.con, binary_traffic(rng, 300, PERF_T0, PERF_HOUR, label_share=0.9))
    return store


def test_performance_and_fairness_run_without_a_reference_profile(tmp_path: Path) -> None:
    """No drift section, no reference profile: drift is skipped with a note; the label jobs run."""
    store = _labelled_store(tmp_path / "l.duckdb")
    try:
        cfg = parse({"models": {"churn": {"version": "1",
                                          "performance": {"task": "classification", "min_labelled": 20},
                                          "fairness": {"attributes": ["country"], "min_group_size": 10}}}})
        report = Runner(cfg, store, clock=lambda: PERF_T0 + 40 * PERF_HOUR).backfill(
            PERF_T0, PERF_T0 + PERF_HOUR, progress=False)
        families = {d["metric"]["family"] for d in store.read_metrics("churn", limit=100_000)}
    finally:
        store.close()
    assert {"performance", "fairness"} <= families and "drift" not in families
    assert not report.failures
    assert any(n.startswith("drift skipped: no reference profile") for n in report.models["churn"].notes)


def test_an_empty_drift_section_asks_for_drift(tmp_path: Path) -> None:
    """`drift: {}` is a request: with no reference profile it is a drift failure, not a skip."""
    store = _labelled_store(tmp_path / "d.duckdb")
    try:
        cfg = parse({"models": {"churn": {"version": "1", "drift": {},
                                          "performance": {"task": "classification", "min_labelled": 20}}}})
        report = Runner(cfg, store, clock=lambda: PERF_T0 + 40 * PERF_HOUR).backfill(
            PERF_T0, PERF_T0 + PERF_HOUR, progress=False)
    finally:
        store.close()
    assert [(f.model, f.job) for f in report.failures] == [("churn", "drift")]


def test_fairness_without_a_performance_section_has_its_own_schedule(tmp_path: Path) -> None:
    store = _labelled_store(tmp_path / "f.duckdb")
    try:
        cfg = parse({"models": {"churn": {"version": "1", "fairness": {"attributes": ["country"],
                                                                       "min_group_size": 10, "lookback": "1d"}}}})
        at = PERF_T0 + 3 * PERF_HOUR
        report = Runner(cfg, store, clock=lambda: at).round(at=at)
        fairness = [d for d in store.read_metrics("churn", limit=100_000) if d["metric"]["family"] == "fairness"]
    finally:
        store.close()
    assert not report.failures
    assert {d["window"]["start"] for d in fairness} >= {"2025-03-01T00:00:00.000Z"}
