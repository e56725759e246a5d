"""The drift job end to end on the embedded store: statistics, documents, upserts, checkpoints, CLI."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from mlmon.cli.main import main
from mlmon.config.model import parse
from mlmon.core.reference import ReferenceProfile
from mlmon.schedule.runner import Runner, checkpoint_key, run_every
from mlmon.core.stats import CategoryStats, NumericStats
from mlmon.stores.protocols import StoreError
from mlmon.core.queries import WindowQuery
from mlmon.stores.duckdb.store import DuckDBStore
from tests.drift.conftest import HOUR, T0


def test_window_statistics_equal_the_numpy_oracle(store: DuckDBStore, reference: ReferenceProfile) -> None:
    f = "mlmon.features.numeric.num_1"
    # Edges placed ON observed values: the bin convention at ties must match [e[i-1], e[i]).
    raw = store.con.execute(f'SELECT "{f}" FROM predictions WHERE "@timestamp" < ?', [T0 + HOUR]).fetchnumpy()[f]
    edges = tuple(float(v) for v in np.unique(raw)[::500])
    q = WindowQuery(model="churn", start=T0, end=T0 + HOUR, numeric={f: edges},
                    categorical={"mlmon.features.categorical.cat_0": ("a", "b")}, max_unseen=2)
    got = store.window_statistics(q)
    want = NumericStats.from_values(raw, edges)
    assert got.rows == 5_000
    assert got.numeric[f].counts == want.counts
    assert got.numeric[f].total == pytest.approx(want.total) and got.numeric[f].maximum == want.maximum
    cats = got.categorical["mlmon.features.categorical.cat_0"]
    assert set(cats.counts) == {"a", "b", "c", "d"} and cats.present == 5_000 and cats.other > 0


def test_round_flags_the_shifted_window_only(store: DuckDBStore) -> None:
    runner = Runner(parse({"models": {"churn": {}}}), store)
    runner.backfill(T0, T0 + 2 * HOUR, progress=False)
    docs = store.read_metrics("churn", limit=1000)
    alerts = {(d["window"]["start"], d["metric"]["feature"], d["metric"]["name"])
              for d in docs if d["metric"]["status"] == "alert"}
    second = "2025-01-01T01:00:00.000Z"
    assert (second, "num_1", "wasserstein") in alerts and (second, "cat_0", "l_infinity") in alerts
    assert not [a for a in alerts if a[0] != second], "the clean hour raised an alert"
    assert {a[1] for a in alerts} <= {"num_1", "cat_0", ""}


def test_rerun_overwrites_and_checkpoint_follows_written_windows(store: DuckDBStore) -> None:
    runner = Runner(parse({"models": {"churn": {"lateness": "1m"}}}), store)
    runner.round(at=T0 + HOUR + timedelta(minutes=5))       # first round: just the last complete window
    n1 = store.con.execute("SELECT count(*) FROM metrics").fetchone()[0]
    assert store.get_checkpoint(checkpoint_key(runner.config.models[0])) == T0 + HOUR
    runner.backfill(T0, T0 + HOUR, progress=False)           # same window again: same ids
    assert store.con.execute("SELECT count(*) FROM metrics").fetchone()[0] == n1
    report = runner.round(at=T0 + 2 * HOUR + timedelta(minutes=5))  # resumes after the checkpoint
    assert report.windows == 1 and store.get_checkpoint("drift:churn:*") == T0 + 2 * HOUR


def test_failed_write_leaves_the_window_unfinished(store: DuckDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner(parse({"models": {"churn": {}}}), store)

    def broken(docs: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(store, "write_metrics", broken)
    with pytest.raises(StoreError):
        runner.round(at=T0 + HOUR + timedelta(minutes=5))
    assert store.get_checkpoint("drift:churn:*") is None


def test_every_holds_the_store_only_during_its_rounds_and_stops_cleanly(store: DuckDBStore) -> None:
    """Between rounds another process (``mlmon ingest --follow``) can open the file; a round
    that cannot open it is skipped, and the next one runs."""
    path = store.path
    store.close()
    opened: list[DuckDBStore | None] = []
    free_between_rounds: list[bool] = []
    stop = threading.Event()

    def open_store() -> DuckDBStore:
        if opened:  # the previous round is over: an outsider may take the file now
            try:
                duckdb.connect(path).close()
                free_between_rounds.append(True)
            except duckdb.IOException:
                free_between_rounds.append(False)
        if len(opened) == 1:
            opened.append(None)
            raise StoreError("held by another process past the wait")
        if len(opened) == 3:
            stop.set()  # the round in progress still finishes
        round_store = DuckDBStore(path)
        opened.append(round_store)
        return round_store

    rounds = run_every(parse({"models": {"churn": {}}}), open_store, timedelta(seconds=0.01), stop,
                       clock=lambda: T0 + HOUR + timedelta(minutes=2))
    stores = [s for s in opened if s is not None]
    assert rounds == len(stores) == 3  # the second attempt was skipped, the last one finished after stop
    assert free_between_rounds == [True, True, True]
    for closed in stores:
        with pytest.raises(duckdb.ConnectionException):
            closed.con.execute("SELECT 1")
    again = DuckDBStore(path)
    assert again.get_checkpoint("drift:churn:*") == T0 + HOUR
    again.close()


def test_small_windows_are_insufficient_data_not_alerts(store: DuckDBStore) -> None:
    cfg = parse({"models": {"churn": {"drift": {"min_rows": 10_000}}}})
    Runner(cfg, store).backfill(T0 + HOUR, T0 + 2 * HOUR, progress=False)
    statuses = {d["metric"]["status"] for d in store.read_metrics("churn")
                if d["metric"]["family"] in ("drift", "data_quality")}
    assert statuses == {"insufficient_data"}


def test_calibrated_thresholds_are_recorded_with_their_source(store: DuckDBStore) -> None:
    cfg = parse({"models": {"churn": {"drift": {"calibrate": True, "calibration_samples": 50,
                                                 "features": ["num_0"]}}}})
    Runner(cfg, store).backfill(T0, T0 + HOUR, progress=False)
    ks = [d for d in store.read_metrics("churn") if d["metric"]["name"] == "ks"][0]
    assert ks["metric"]["threshold"]["source"] == "calibrated" and ks["metric"]["status"] == "ok"


def test_cli_reference_run_metrics(tmp_path: Path, store: DuckDBStore, capsys: pytest.CaptureFixture[str]) -> None:
    store.close()
    url = f"duckdb:///{tmp_path / 'm.duckdb'}"
    data = tmp_path / "train.csv"
    rng = np.random.default_rng(1)
    data.write_text("num_0,cat_0\n" + "".join(f"{rng.normal():.5f},{rng.choice(list('abcde'))}\n"
                                              for _ in range(2_000)))
    assert main(["reference", "build", "--model", "churn", "--version", "2", "--data", str(data),
                 "--store", url]) == 0
    cfg = tmp_path / "mlmon.yaml"
    cfg.write_text(f"store: {url}\nmodels:\n  churn:\n    version: '2'\n")
    assert main(["backfill", "--config", str(cfg), "--from", "2025-01-01T00:00:00Z", "--to",
                 "2025-01-01T01:00:00Z", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["metrics", "--store", url, "--model", "churn", "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {d["metric"]["feature"] for d in lines} >= {"num_0", "cat_0"}
    assert all(d["mlmon"]["model"]["version"] == "2" for d in lines)
    assert main(["reference", "build", "--model", "churn", "--version", "2", "--data",
                 str(tmp_path / "nope.csv"), "--store", url]) == 1


def test_reference_document_round_trip(reference: ReferenceProfile, tmp_path: Path) -> None:
    s = DuckDBStore(tmp_path / "r.duckdb")
    s.put_reference(reference)
    s.put_reference(reference)  # content-addressed id: no duplicate
    back = s.get_reference("churn")
    assert back is not None and back.id == reference.id and back.numeric == reference.numeric
    assert len(s.list_references("churn")) == 1
    assert isinstance(back.categorical["mlmon.features.categorical.cat_0"], CategoryStats)


def test_window_statistics_with_nulls_nan_and_many_batches(tmp_path: Path, reference: ReferenceProfile,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mlmon.stores.duckdb import store as duckdb_store
    from tools.synth import load_events as load, make_features, to_events

    monkeypatch.setattr(duckdb_store, "ARROW_BATCH_ROWS", 700)  # several Arrow batches per window
    rng = np.random.default_rng(3)
    feats = make_features(rng, 3_000, missing=0.1)
    feats.loc[5, "num_0"] = np.nan  # stored as NaN (not NULL): missing, like NumericStats.from_values
    s = DuckDBStore(tmp_path / "n.duckdb")
    load(s.con, to_events(feats, "churn", "1", T0, HOUR, rng,
                          segment={"country": np.where(np.arange(3_000) % 3 == 0, "DE", "FR")}))
    f, absent = "mlmon.features.numeric.num_0", "mlmon.features.numeric.never_logged"
    edges = reference.numeric[f].edges
    q = WindowQuery(model="churn", start=T0, end=T0 + HOUR, numeric={f: edges, absent: edges},
                    segment=("country", "DE"))
    got = s.window_statistics(q)
    de = feats["num_0"].to_numpy()[::3]
    want = NumericStats.from_values(de, edges)
    assert got.rows == 1_000 and got.numeric[f].counts == want.counts and got.numeric[f].missing == want.missing
    assert got.numeric[f].total == pytest.approx(want.total) and got.numeric[f].minimum == want.minimum
    assert got.numeric[f].below_sum == pytest.approx(want.below_sum)
    assert np.allclose(got.numeric[f].offset_sums, want.offset_sums, rtol=1e-12, atol=1e-12)
    assert got.numeric[absent].offset_sums == (0.0,) * (len(edges) + 1)
    assert got.numeric[absent].missing == 1_000 and got.numeric[absent].present == 0
    empty = s.window_statistics(WindowQuery(model="churn", start=T0 + HOUR, end=T0 + 2 * HOUR, numeric={f: edges}))
    assert empty.rows == 0 and empty.numeric[f].present == 0
    s.close()
