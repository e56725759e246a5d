"""A simulated model service with delayed labels, through the real emitter, ingest, store and job.

The service logs with ``mlmon_logging.ModelLogger`` to a JSON-lines file (explicit
``timestamp=`` per call), ``mlmon.ingest`` loads each batch into a DuckDB file,
and the performance job runs after each batch. Labels arrive with a random
delay, some twice (the later one wins), some for predictions shipped later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlmon.config.model import ModelConfig
from mlmon.ingest import ingest_lines
from mlmon.config.performance import MetricRule, PerformanceConfig
from mlmon.metrics.rules import Rule
from mlmon.jobs.performance import PerformanceJob
from mlmon.schedule.runner import RoundReport, run_jobs
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon_logging import ModelLogger

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
REFERENCE = (T0, T0 + 6 * HOUR)           # labelled quickly: the reference period
LIVE = (T0 + 6 * HOUR, T0 + 10 * HOUR)     # monitored: labels trickle in
ROUNDS = [T0 + 11 * HOUR, T0 + 14 * HOUR, T0 + 20 * HOUR, T0 + 32 * HOUR]
PER_HOUR = 700


@dataclass
class Simulation:
    truth: pd.DataFrame      # one row per prediction: id, time, score, pred, actual, label time (NaT: never)
    dup_times: pd.Series     # prediction id -> time of an earlier, wrong label


def simulate(rng: np.random.Generator) -> Simulation:
    n_ref = 6 * PER_HOUR
    n_live = 4 * PER_HOUR
    t = np.concatenate([np.sort(rng.random(n_ref)) * 6 * 3600, 6 * 3600 + np.sort(rng.random(n_live)) * 4 * 3600])
    score = np.round(rng.beta(2, 3, n_ref + n_live), 4)
    actual = np.where(rng.random(score.size) < score, "1", "0")
    delay = np.concatenate([rng.uniform(1, 600, n_ref), rng.exponential(4 * 3600, n_live)])
    labelled = np.concatenate([np.ones(n_ref, bool), rng.random(n_live) < 0.85])
    ts = pd.to_datetime(T0) + pd.to_timedelta(np.round(t * 1000), unit="ms")
    label_ts = pd.Series(ts + pd.to_timedelta(np.round(delay * 1000), unit="ms")).where(labelled)
    truth = pd.DataFrame({"ts": ts, "score": score, "pred": np.where(score >= 0.5, "1", "0"), "actual": actual,
                          "label_ts": label_ts, "ship_late": False})
    # A few live predictions reach the store only in the last batch, after their labels did.
    late = rng.choice(np.flatnonzero(labelled[n_ref:]) + n_ref, 15, replace=False)
    truth.loc[late, "ship_late"] = True
    dups = truth.index[(truth.label_ts.notna()) & (rng.random(len(truth)) < 0.05)]
    return Simulation(truth, truth.loc[dups, "label_ts"] - pd.Timedelta(seconds=20))


def ship(sim: Simulation, lo: datetime, hi: datetime, last: bool, path: Path, db: Path) -> None:
    """Log everything that happened in (lo, hi] with the real emitter, then ingest the file."""
    truth = sim.truth
    lo_ts, hi_ts = pd.Timestamp(lo), pd.Timestamp(hi)
    with ModelLogger("churn", "1", sink=f"file://{path}", stats_interval=None, queue_size=200_000) as mlog:
        shipped_now = ((truth.ts > lo_ts) & (truth.ts <= hi_ts) & ~truth.ship_late) | (truth.ship_late & last)
        for row in truth[shipped_now].itertuples():
            mlog.log_prediction({"tenure": float(row.score * 10)}, row.pred, float(row.score),
                                segment={"plan": "pro" if row.Index % 3 else "basic"},
                                timestamp=row.ts.to_pydatetime(), prediction_id=f"p-{row.Index:06d}")
        for i, when in sim.dup_times.items():
            if lo_ts < when <= hi_ts:
                wrong = "0" if truth.at[i, "actual"] == "1" else "1"
                mlog.log_feedback(f"p-{i:06d}", wrong, timestamp=when.to_pydatetime())
        fresh = truth.label_ts.notna() & (truth.label_ts > lo_ts) & (truth.label_ts <= hi_ts)
        for row in truth[fresh].itertuples():
            mlog.log_feedback(f"p-{row.Index:06d}", row.actual, timestamp=row.label_ts.to_pydatetime())
        mlog.log_feedback("p-unknown-1", "1", timestamp=(hi - timedelta(minutes=5)))  # never predicted
    with path.open("rb") as lines:
        report = ingest_lines(lines, db)
    assert not report.dead_lettered, report.dead_lettered


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("e2e")
    db = tmp / "mlmon.duckdb"
    sim = simulate(np.random.default_rng(7))
    model = ModelConfig(name="churn", version="1", window=HOUR, lateness=timedelta(minutes=5))
    cfg = PerformanceConfig(task="classification", positive_label="1", min_labelled=50,
                            maturity_coverage=0.8, maturity_age=timedelta(hours=20), lookback=timedelta(days=1),
                            reference=REFERENCE, cbpe=True,
                            thresholds=(MetricRule("accuracy", None, Rule(0.6, 0.5, "below", source="config")),
                                        MetricRule("roc_auc", None, Rule(None, None, "below", calibrated_sd=(2.0, 3.0))),
                                        MetricRule("f1", "1", Rule(-0.05, -0.1, "below", relative=True))))
    records: list[logging.LogRecord] = []
    collector = logging.Handler(logging.INFO)
    collector.emit = records.append  # type: ignore[method-assign]
    perf_log = logging.getLogger("mlmon.performance")
    perf_log.addHandler(collector)
    previous_level = perf_log.level
    perf_log.setLevel(logging.INFO)
    reports: list[RoundReport] = []
    snapshots: list[list[dict[str, object]]] = []
    previous = T0 - HOUR
    for k, at in enumerate(ROUNDS):
        ship(sim, previous, at, k == len(ROUNDS) - 1, tmp / f"batch{k}.jsonl", db)
        previous = at
        store = DuckDBStore(db)
        try:
            job = PerformanceJob(store, DuckDBLabels(store.con), model, cfg, run_id=f"round-{k}")
            reports.append(run_jobs(store, [job], job.schedule.due(at), at))
            snapshots.append(store.read_metrics("churn", limit=100_000))
        finally:
            store.close()
    perf_log.removeHandler(collector)
    perf_log.setLevel(previous_level)
    return {"sim": sim, "reports": reports, "snapshots": snapshots, "db": db, "records": records}


def _docs(snapshot: list[dict], window_start: datetime, family: str, metric: str, cls: str = "",
          seg: str = "") -> list[dict]:
    start = window_start.isoformat().replace("+00:00", ".000Z")
    return [d for d in snapshot if d["window"]["start"] == start and d["metric"]["family"] == family
            and d["metric"]["name"] == metric and d["metric"]["class"] == cls and d["metric"]["segment"]["field"] == seg]


def test_coverage_rises_and_provisional_turns_final(run: dict) -> None:
    snaps = run["snapshots"]
    w = LIVE[0]  # first live window: labels trickle in over the rounds
    coverage = [_docs(s, w, "label_coverage", "label_coverage")[0]["metric"] for s in snaps]
    values = [c["value"] for c in coverage]
    assert values == sorted(values) and values[0] < values[-1], values
    assert coverage[0]["maturity"] == "provisional"
    assert coverage[-1]["maturity"] == "final"
    # Reference-period windows were labelled within minutes: final on the first round, by coverage.
    first = _docs(snaps[0], T0 + 5 * HOUR, "label_coverage", "label_coverage")[0]["metric"]
    assert first["maturity"] == "final" and first["details"]["maturity_reason"].startswith("coverage")


def test_late_windows_recomputed_without_duplicates(run: dict) -> None:
    reports, snaps = run["reports"], run["snapshots"]
    assert reports[0].recomputed == 0
    assert all(r.recomputed > 0 for r in reports[1:3])
    ids = [d["metric"]["id"] for d in snaps[-1]]
    assert len(ids) == len(set(ids))
    # Same measurement, same id: a window's documents in round 2 are the round-1 ones, overwritten.
    w = LIVE[0].isoformat().replace("+00:00", ".000Z")
    first = {d["metric"]["id"] for d in snaps[0] if d["window"]["start"] == w}
    last = {d["metric"]["id"] for d in snaps[-1] if d["window"]["start"] == w}
    assert first <= last
    accuracy = [_docs(s, LIVE[0], "performance", "accuracy")[0]["metric"] for s in snaps]
    runs = [_docs(s, LIVE[0], "performance", "accuracy")[0]["job"]["run_id"] for s in snaps]
    became_final = next(k for k, a in enumerate(accuracy) if a["maturity"] == "final")
    assert became_final > 0
    assert len(set(runs[:became_final + 1])) == became_final + 1   # recomputed every round until final ...
    assert set(runs[became_final:]) == {runs[became_final]}        # ... then left alone
    # A window final by coverage (the reference's, labelled within minutes) is still recomputed while it is
    # younger than the maturity age (20 h), so labels arriving meanwhile count, as they would in a backfill;
    # by the last round it has left the 1-day look-back.
    ref_runs = [_docs(s, T0 + 5 * HOUR, "performance", "accuracy")[0]["job"]["run_id"] for s in snaps]
    assert ref_runs == ["round-0", "round-1", "round-2", "round-2"]


def joined_at(sim: Simulation, cutoff: datetime) -> pd.DataFrame:
    """Each prediction with the latest label logged by ``cutoff`` (the wrong duplicates included)."""
    truth = sim.truth
    labels = pd.concat([
        pd.DataFrame({"i": truth.index, "actual": truth.actual, "at": truth.label_ts}),
        pd.DataFrame({"i": sim.dup_times.index, "at": sim.dup_times.to_numpy(),
                      "actual": np.where(truth.loc[sim.dup_times.index, "actual"] == "1", "0", "1")}),
    ]).dropna(subset=["at"])
    labels = labels[labels["at"] <= pd.Timestamp(cutoff)].sort_values("at").groupby("i").last()
    return truth.join(labels[["actual"]].rename(columns={"actual": "actual_joined"}))


def test_final_metrics_equal_sklearn_on_joined_data(run: dict) -> None:
    sim, snap = run["sim"], run["snapshots"][-1]
    for k in range(4):
        start = LIVE[0] + k * HOUR
        acc = _docs(snap, start, "performance", "accuracy")[0]
        assert acc["metric"]["maturity"] == "final"
        cutoff = ROUNDS[int(acc["job"]["run_id"].split("-")[1])]   # the round that last computed the window
        window = joined_at(sim, cutoff)
        window = window[(window.ts >= start) & (window.ts < start + HOUR)]
        if cutoff < ROUNDS[-1]:
            window = window[~window.ship_late]   # shipped with the last batch only
        rows = window[window.actual_joined.notna()]
        y, pred, score = rows.actual_joined.to_numpy(), rows.pred.to_numpy(), rows.score.to_numpy()

        def value(metric: str, cls: str = "") -> float:
            docs = _docs(snap, start, "performance", metric, cls)
            assert len(docs) == 1 and docs[0]["metric"]["maturity"] == "final"
            return docs[0]["metric"]["value"]

        assert value("accuracy") == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
        assert value("precision", "1") == pytest.approx(skm.precision_score(y, pred, pos_label="1"), rel=1e-12)
        assert value("recall", "1") == pytest.approx(skm.recall_score(y, pred, pos_label="1"), rel=1e-12)
        assert value("f1", "macro") == pytest.approx(skm.f1_score(y, pred, average="macro"), rel=1e-12)
        assert value("log_loss") == pytest.approx(skm.log_loss(y == "1", score), rel=1e-9)
        auc = _docs(snap, start, "performance", "roc_auc", "1")[0]["metric"]
        assert abs(auc["value"] - skm.roc_auc_score(y == "1", score)) <= auc["details"]["error_bound"] + 1e-12
        coverage = _docs(snap, start, "label_coverage", "label_coverage")[0]
        assert coverage["n"]["current"] == len(window)
        assert coverage["metric"]["value"] == pytest.approx(len(rows) / len(window))


def test_cbpe_estimates_kept_next_to_realised_with_their_error(run: dict) -> None:
    snaps = run["snapshots"]
    est = _docs(snaps[-1], LIVE[0], "estimated_performance", "accuracy")[0]["metric"]
    real = _docs(snaps[-1], LIVE[0], "performance", "accuracy")[0]["metric"]
    assert est["details"]["realised"] == pytest.approx(real["value"])
    assert est["details"]["estimation_error"] == pytest.approx(est["value"] - real["value"])
    # Calibrated scores and no concept drift: the estimate is close to the truth.
    assert abs(est["details"]["estimation_error"]) < 0.05
    # The youngest window has an estimate in the first round already (labels barely started).
    young = _docs(snaps[0], LIVE[1] - HOUR, "estimated_performance", "accuracy")
    assert young and young[0]["metric"]["value"] is not None


def test_thresholds_from_config_reference_and_reference_windows(run: dict) -> None:
    snap = run["snapshots"][-1]
    acc = _docs(snap, LIVE[0], "performance", "accuracy")[0]["metric"]
    assert acc["threshold"] == {"warning": 0.6, "alert": 0.5, "direction": "below", "source": "config"}
    assert acc["status"] == "ok"
    f1 = _docs(snap, LIVE[0], "performance", "f1", "1")[0]["metric"]
    assert f1["threshold"]["source"] == "reference_relative"
    assert f1["threshold"]["alert"] == pytest.approx(f1["threshold"]["warning"] - 0.05)
    auc = _docs(snap, LIVE[0], "performance", "roc_auc", "1")[0]["metric"]
    assert auc["threshold"]["source"] == "calibrated" and auc["threshold"]["alert"] < auc["threshold"]["warning"]


def test_feedback_for_unknown_predictions_counted_then_rejoined(run: dict) -> None:
    snaps, sim = run["snapshots"], run["sim"]
    truth = sim.truth
    late = truth[truth.ship_late]
    orphans_before = sum(d["metric"]["value"] for d in snaps[2] if d["metric"]["name"] == "orphan_feedback")
    orphans_after = sum(d["metric"]["value"] for d in snaps[3] if d["metric"]["name"] == "orphan_feedback")
    labelled_late = int((late.label_ts <= ROUNDS[2]).sum())
    assert labelled_late > 0
    # Every round adds one never-predicted label per batch; late-shipped predictions' labels leave the count.
    assert orphans_before >= labelled_late + 1
    assert orphans_after < orphans_before


def test_small_windows_are_insufficient_data(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "empty.duckdb")
    try:
        model = ModelConfig(name="churn", version="1", window=HOUR)
        cfg = PerformanceConfig(task="classification", min_labelled=10,
                                thresholds=(MetricRule("accuracy", None, Rule(0.9, 0.8, "below", source="config")),))
        job = PerformanceJob(store, DuckDBLabels(store.con), model, cfg, run_id="r")
        docs, maturity = job.window(T0, T0 + HOUR, T0 + 2 * HOUR)
        acc = [d for d in docs if d.metric == "accuracy"]
        cov = [d for d in docs if d.metric == "label_coverage"][0]
        assert maturity == "provisional" and cov.value is None and cov.n_current == 0
        assert all(d.status == "insufficient_data" for d in acc)
    finally:
        store.close()


def test_recomputation_is_logged(run: dict) -> None:
    recomputed = [r for r in run["records"] if r.getMessage() == "performance window recomputed with late labels"]
    assert len(recomputed) == sum(r.recomputed for r in run["reports"])
    assert {getattr(r, "model") for r in recomputed} == {"churn"}
    assert all(0 <= getattr(r, "coverage") <= 1 for r in recomputed if getattr(r, "coverage") is not None)
