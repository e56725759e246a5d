"""Multiclass performance on the embedded store, end to end: emitter -> ingest -> DuckDB -> job -> documents.

A three-class model logs per-class probabilities (``scores={...}``) with the real
``mlmon_logging.ModelLogger``; actual classes are drawn from those probabilities
(so the scores are calibrated), some feedback arrives twice (an earlier wrong
label that the later one overrides). The realised metrics the job writes must
equal scikit-learn's on the same joined rows, and the CBPE estimates must be
close to what the labels then show.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlmon.config.model import ModelConfig
from mlmon.ingest import ingest_lines
from mlmon.config.performance import PerformanceConfig
from mlmon.jobs.performance import PerformanceJob
from mlmon.schedule.runner import RoundReport, run_jobs
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon_logging import ModelLogger

T0 = datetime(2025, 4, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
CLASSES = ("cat", "dog", "fox")
REFERENCE = (T0, T0 + 4 * HOUR)
LIVE = [T0 + 4 * HOUR, T0 + 5 * HOUR]
PER_HOUR = 500
AT = T0 + 7 * HOUR
REGIONS = ("north", "south")


def simulate(rng: np.random.Generator) -> pd.DataFrame:
    """One row per prediction: time, class probabilities, predicted and actual class, label time(s)."""
    n = 6 * PER_HOUR
    t = np.sort(rng.random(n)) * 6 * 3600
    # Class-specific concentration so the classes differ in prevalence and separability.
    probs = rng.dirichlet((1.2, 0.8, 0.5), n)
    probs = np.round(probs, 4)
    probs[:, 2] = np.round(1.0 - probs[:, 0] - probs[:, 1], 4)  # rows sum to 1 after rounding
    probs = np.clip(probs, 0.0, 1.0)
    actual = np.array([rng.choice(3, p=p / p.sum()) for p in probs])
    ts = pd.to_datetime(T0) + pd.to_timedelta(np.round(t * 1000), unit="ms")
    reference = ts < pd.Timestamp(REFERENCE[1])
    labelled = reference | (rng.random(n) < 0.7)
    delay = pd.to_timedelta(np.round(rng.uniform(1, 3000, n) * 1000), unit="ms")
    frame = pd.DataFrame({"ts": ts, "p_cat": probs[:, 0], "p_dog": probs[:, 1], "p_fox": probs[:, 2],
                          "pred": np.asarray(CLASSES)[probs.argmax(axis=1)], "actual": np.asarray(CLASSES)[actual],
                          "label_ts": pd.Series(ts + delay).where(labelled),
                          "region": rng.choice(REGIONS, n)})
    frame["duplicate"] = frame.label_ts.notna() & (rng.random(n) < 0.08)
    return frame


def ship(truth: pd.DataFrame, path: Path, db: Path) -> None:
    with ModelLogger("zoo", "3", sink=f"file://{path}", stats_interval=None, queue_size=100_000) as mlog:
        for row in truth.itertuples():
            mlog.log_prediction({"size": float(row.p_dog * 3)}, row.pred,
                                scores={"cat": row.p_cat, "dog": row.p_dog, "fox": row.p_fox},
                                segment={"region": row.region}, timestamp=row.ts.to_pydatetime(),
                                prediction_id=f"z-{row.Index:05d}")
        for row in truth[truth.label_ts.notna()].itertuples():
            if row.duplicate:  # an earlier, wrong label: the later one must win
                wrong = CLASSES[(CLASSES.index(row.actual) + 1) % 3]
                mlog.log_feedback(f"z-{row.Index:05d}", wrong,
                                  timestamp=(row.label_ts - pd.Timedelta(seconds=30)).to_pydatetime())
            mlog.log_feedback(f"z-{row.Index:05d}", row.actual, timestamp=row.label_ts.to_pydatetime())
    with path.open("rb") as lines:
        report = ingest_lines(lines, db)
    assert not report.dead_lettered, report.dead_lettered


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("multiclass")
    db = tmp / "mlmon.duckdb"
    truth = simulate(np.random.default_rng(2025))
    ship(truth, tmp / "events.jsonl", db)
    model = ModelConfig(name="zoo", version="3", window=HOUR, lateness=timedelta(minutes=5))
    cfg = PerformanceConfig(task="classification", classes=CLASSES, segments={"region": None}, min_labelled=50,
                            maturity_age=timedelta(hours=6), lookback=timedelta(hours=7), reference=REFERENCE,
                            cbpe=True)
    store = DuckDBStore(db)
    try:
        job = PerformanceJob(store, DuckDBLabels(store.con), model, cfg, run_id="mc")
        report = run_jobs(store, [job], job.schedule.due(AT), AT)
        docs = store.read_metrics("zoo", limit=100_000)
    finally:
        store.close()
    return {"truth": truth, "report": report, "docs": docs, "db": db, "job": job}


def _stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", ".000Z")


def _doc(docs: list[dict], start: datetime, family: str, metric: str, cls: str = "",
         segment: tuple[str, str] = ("", "")) -> dict:
    found = [d["metric"] for d in docs if d["window"]["start"] == _stamp(start) and d["metric"]["family"] == family
             and d["metric"]["name"] == metric and d["metric"]["class"] == cls
             and (d["metric"]["segment"]["field"], d["metric"]["segment"]["value"]) == segment]
    assert len(found) == 1, (start, family, metric, cls, segment, len(found))
    return found[0]


def _labelled_rows(truth: pd.DataFrame, start: datetime) -> pd.DataFrame:
    rows = truth[(truth.ts >= pd.Timestamp(start)) & (truth.ts < pd.Timestamp(start + HOUR))]
    return rows[rows.label_ts.notna()]


def _scores(rows: pd.DataFrame) -> np.ndarray:
    return rows[["p_cat", "p_dog", "p_fox"]].to_numpy()


def test_the_documents_of_a_window_share_one_computed_at(run: dict) -> None:
    # Computed together, they say so with one time (the store converts each distinct time once).
    store = DuckDBStore(run["db"], read_only=True)
    try:
        job = replace(run["job"], store=store, labels=DuckDBLabels(store.con, read_only=True))
        results = job.windows([(s, s + HOUR) for s in LIVE], AT)
    finally:
        store.close()
    for docs, _ in results:
        assert len(docs) > 20 and len({d.computed_at for d in docs}) == 1
    assert results[0][0][0].computed_at <= results[1][0][0].computed_at


def test_every_window_is_written_once_and_final_or_provisional(run: dict) -> None:
    report: RoundReport = run["report"]
    docs = run["docs"]
    assert report.windows == 6
    ids = [d["metric"]["id"] for d in docs]
    assert len(ids) == len(set(ids))
    assert {_doc(docs, s, "performance", "accuracy")["maturity"] for s in LIVE} == {"provisional"}
    assert _doc(docs, T0, "performance", "accuracy")["maturity"] == "final"   # reference: every label in


@pytest.mark.parametrize("start", [T0 + HOUR, *LIVE])
def test_realised_metrics_equal_sklearn_on_the_joined_rows(run: dict, start: datetime) -> None:
    docs, rows = run["docs"], _labelled_rows(run["truth"], start)
    y, pred, proba = rows.actual.to_numpy(), rows.pred.to_numpy(), _scores(rows)
    labels = list(CLASSES)

    def value(metric: str, cls: str = "") -> float:
        v = _doc(docs, start, "performance", metric, cls)["value"]
        assert v is not None, (metric, cls)
        return float(v)

    assert value("accuracy") == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        per_class = fn(y, pred, labels=labels, average=None)
        for cls, want in zip(CLASSES, per_class):
            assert value(name, cls) == pytest.approx(want, rel=1e-12), (name, cls)
        for avg in ("macro", "weighted", "micro"):
            assert value(name, avg) == pytest.approx(fn(y, pred, labels=labels, average=avg), rel=1e-12), (name, avg)
    assert value("log_loss") == pytest.approx(skm.log_loss(y, proba, labels=labels), rel=1e-9)

    matrix = skm.confusion_matrix(y, pred, labels=labels)
    for i, cls in enumerate(CLASSES):
        row = _doc(docs, start, "performance", "confusion_matrix", cls)
        assert row["details"]["predicted_classes"] == labels
        assert row["details"]["counts"] == matrix[i].tolist()
        assert row["value"] == matrix[i].sum()

    for i, cls in enumerate(CLASSES):
        auc = _doc(docs, start, "performance", "roc_auc", cls)
        exact = skm.roc_auc_score(y == cls, proba[:, i])
        assert abs(auc["value"] - exact) <= auc["details"]["error_bound"] + 1e-12, cls
    macro = _doc(docs, start, "performance", "roc_auc", "macro")
    exact_macro = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)
    assert macro["details"]["error_bound"] < 0.01   # 1000 score bins: a tight bound, not a vacuous one
    assert abs(macro["value"] - exact_macro) <= macro["details"]["error_bound"] + 1e-12


def test_segment_metrics_equal_sklearn_on_the_segment_rows(run: dict) -> None:
    docs, rows = run["docs"], _labelled_rows(run["truth"], LIVE[0])
    for region in REGIONS:
        part = rows[rows.region == region]
        got = _doc(docs, LIVE[0], "performance", "f1", "macro", ("region", region))["value"]
        assert got == pytest.approx(skm.f1_score(part.actual, part.pred, labels=list(CLASSES), average="macro"),
                                    rel=1e-12)
        coverage = _doc(docs, LIVE[0], "label_coverage", "label_coverage", segment=("region", region))
        everything = run["truth"]
        in_window = everything[(everything.ts >= pd.Timestamp(LIVE[0])) & (everything.ts < pd.Timestamp(LIVE[1]))
                               & (everything.region == region)]
        assert coverage["value"] == pytest.approx(len(part) / len(in_window), rel=1e-12)


@pytest.mark.parametrize("start", LIVE)
def test_cbpe_estimates_track_the_realised_metrics_on_calibrated_scores(run: dict, start: datetime) -> None:
    docs = run["docs"]
    every = run["truth"]
    window = every[(every.ts >= pd.Timestamp(start)) & (every.ts < pd.Timestamp(start + HOUR))]
    # Under calibration the expected accuracy is the mean probability of the predicted class.
    expected_accuracy = float(_scores(window).max(axis=1).mean())
    acc = _doc(docs, start, "estimated_performance", "accuracy")
    assert acc["value"] == pytest.approx(expected_accuracy, abs=0.02)
    realised = _doc(docs, start, "performance", "accuracy")["value"]
    assert acc["details"]["lower"] <= realised <= acc["details"]["upper"]
    # Live windows are provisional: their realised value covers part of the rows, so no error yet.
    assert acc["maturity"] == "provisional" and "estimation_error" not in acc["details"]
    assert acc["details"]["estimation_error_note"] == "recorded once the window is final"
    for metric in ("f1", "precision", "recall", "roc_auc"):
        est = _doc(docs, start, "estimated_performance", metric, "macro")["value"]
        real = _doc(docs, start, "performance", metric, "macro")["value"]
        assert est == pytest.approx(real, abs=0.06), metric
    for cls in CLASSES:
        assert 0.0 < _doc(docs, start, "estimated_performance", "recall", cls)["value"] < 1.0
