"""``mlmon backfill`` computes performance and fairness for windows older than the look-back.

The store holds six hours of binary traffic with labels; the runner's clock is
set well after them, so the rounds' look-back no longer reaches those windows:
only a backfill computes them, final by age, with the same ids on every re-run,
and without moving the performance checkpoints backwards.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlmon.cli.main import main
from mlmon.config.model import Config, parse
from mlmon.core.reference import build_from_frame
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb.store import DuckDBStore
from tools.synth import HOUR, T0, Traffic, binary_traffic, joined
from tools.synth import load_traffic as load

HOURS = 6
LATER = T0 + timedelta(days=30)          # the runner's "now": a month after the traffic
FINAL_KEY = "performance-final:churn:1"
COMPUTED_KEY = "performance:churn:1"


def _traffic() -> Traffic:
    rng = np.random.default_rng(31)
    parts = [binary_traffic(rng, 300, T0 + h * HOUR, HOUR, label_share=0.6) for h in range(HOURS)]
    return Traffic(pd.concat([p.predictions for p in parts], ignore_index=True),
                   pd.concat([p.feedback for p in parts], ignore_index=True))


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return _traffic()


def _store(path: Path, traffic: Traffic) -> DuckDBStore:
    store = DuckDBStore(path)
    load(store.con, traffic)
    # Drift needs a reference profile; its one feature is absent from the traffic (performance is the subject).
    rng = np.random.default_rng(5)
    store.put_reference(build_from_frame(pd.DataFrame({"tenure": rng.normal(size=500)}), "churn", "1", source="t"))
    return store


def _config(**performance: Any) -> Config:
    section = {"task": "classification", "positive_label": "1", "min_labelled": 20, "lookback": "3h",
               "maturity": {"coverage": 0.95, "age": "2h"}, **performance}
    return parse({"models": {"churn": {"version": "1", "performance": section,
                                       "fairness": {"attributes": ["country"], "min_group_size": 10}}}})


@pytest.fixture
def store(tmp_path: Path, traffic: Traffic) -> DuckDBStore:
    s = _store(tmp_path / "m.duckdb", traffic)
    yield s
    s.close()


def _perf(store: DuckDBStore) -> list[dict]:
    return [d for d in store.read_metrics("churn", limit=100_000)
            if d["metric"]["family"] in ("performance", "label_coverage", "fairness")]


def test_backfill_computes_performance_and_fairness_beyond_the_look_back(store: DuckDBStore,
                                                                         traffic: Traffic) -> None:
    runner = Runner(_config(), store, clock=lambda: LATER)
    assert runner.label_round(runner.config.models[0], LATER, "round").documents > 0  # the look-back: empty hours
    assert not [d for d in _perf(store) if d["window"]["start"] < (T0 + HOURS * HOUR).isoformat()]

    report = runner.backfill(T0, T0 + HOURS * HOUR, progress=False)
    docs = _perf(store)
    accuracy = {d["window"]["start"]: d["metric"] for d in docs
                if d["metric"]["name"] == "accuracy" and d["metric"]["family"] == "performance"
                and not d["metric"]["segment"]["field"]}
    assert len(accuracy) == HOURS and report.windows == HOURS
    assert {a["maturity"] for a in accuracy.values()} == {"final"}   # judged at backfill time: by age
    fairness = {d["window"]["start"] for d in docs if d["metric"]["family"] == "fairness"
                and d["metric"]["name"] == "demographic_parity_difference" and d["window"]["start"] < "2025-03-02"}
    assert len(fairness) == HOURS

    # The realised values are sklearn's on the joined rows of the window.
    rows = joined(traffic)
    for h in (0, HOURS - 1):
        start = T0 + h * HOUR
        w = rows[(rows["@timestamp"] >= start) & (rows["@timestamp"] < start + HOUR) & rows.actual.notna()]
        got = accuracy[start.isoformat().replace("+00:00", ".000Z")]["value"]
        assert got == pytest.approx(skm.accuracy_score(w.actual, w["mlmon.prediction.label"]), rel=1e-12)


def test_rerunning_a_backfill_overwrites_and_keeps_the_checkpoints(store: DuckDBStore) -> None:
    settled = LATER - 2 * HOUR
    store.set_checkpoint(FINAL_KEY, settled)         # as the rounds left them
    store.set_checkpoint(COMPUTED_KEY, LATER - HOUR)
    runner = Runner(_config(), store, clock=lambda: LATER)
    runner.backfill(T0, T0 + 2 * HOUR, progress=False)
    first = {d["metric"]["id"]: d["job"]["run_id"] for d in store.read_metrics("churn", limit=100_000)}
    n_rows = store.con.execute("SELECT count(*) FROM metrics").fetchone()[0]

    Runner(_config(), store, clock=lambda: LATER).backfill(T0, T0 + 2 * HOUR, progress=False)
    second = {d["metric"]["id"]: d["job"]["run_id"] for d in store.read_metrics("churn", limit=100_000)}
    assert store.con.execute("SELECT count(*) FROM metrics").fetchone()[0] == n_rows
    assert second.keys() == first.keys()
    assert set(second.values()) != set(first.values())             # overwritten by the second run
    assert store.get_checkpoint(FINAL_KEY) == settled               # never moved back
    assert store.get_checkpoint(COMPUTED_KEY) == LATER - HOUR


def test_backfill_never_settles_a_window_it_left_provisional(store: DuckDBStore) -> None:
    """Look-back starts at T0+2h; windows ending by T0+3h are final by age, T0+3h.. are provisional.

    The final checkpoint may advance over final windows contiguous with the look-back's start
    (T0+2h -> T0+3h) and must stop at the first provisional one, or the rounds would skip it.
    """
    at = T0 + 8 * HOUR
    cfg = _config(lookback="6h", maturity={"coverage": 0.95, "age": "5h"})
    Runner(cfg, store, clock=lambda: at).backfill(T0, T0 + HOURS * HOUR, progress=False)
    assert store.get_checkpoint(FINAL_KEY) == T0 + 3 * HOUR
    maturity = {d["window"]["start"]: d["metric"]["maturity"] for d in _perf(store)
                if d["metric"]["name"] == "accuracy" and not d["metric"]["segment"]["field"]}
    assert [maturity[(T0 + h * HOUR).isoformat().replace("+00:00", ".000Z")] for h in range(HOURS)] == \
        ["final"] * 3 + ["provisional"] * 3
    # A round then picks up exactly the unsettled windows of its look-back.
    report = Runner(cfg, store, clock=lambda: at).label_round(cfg.models[0], at, "round")
    assert report.windows == 4   # [T0+3h, T0+7h): T0+7h..8h is not complete after the lateness


def test_backfill_with_a_pre_traffic_start_before_any_round_sets_no_final_checkpoint(store: DuckDBStore) -> None:
    """Windows older than the look-back are not contiguous with anything settled: no checkpoint from them."""
    Runner(_config(), store, clock=lambda: LATER).backfill(T0 - 2 * HOUR, T0 + HOUR, progress=False)
    assert store.get_checkpoint(FINAL_KEY) is None


def test_cli_backfill_writes_performance(tmp_path: Path, traffic: Traffic, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.duckdb"
    _store(db, traffic).close()
    config = tmp_path / "mlmon.yaml"
    config.write_text(f"store: duckdb:///{db}\nmodels:\n  churn:\n    version: '1'\n    performance:\n"
                      "      task: classification\n      min_labelled: 20\n")
    assert main(["backfill", "--config", str(config), "--from", "2025-03-01T00:00:00Z",
                 "--to", "2025-03-01T02:00:00Z", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("2 windows")
    store = DuckDBStore(db)
    try:
        names = {(d["window"]["start"], d["metric"]["name"]) for d in store.read_metrics("churn", limit=100_000)
                 if d["metric"]["family"] == "performance"}
    finally:
        store.close()
    assert {("2025-03-01T00:00:00.000Z", "accuracy"), ("2025-03-01T01:00:00.000Z", "roc_auc")} <= names
