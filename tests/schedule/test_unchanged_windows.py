"""Rounds skip look-back windows whose inputs did not change, and end exactly where full recomputations do.

Two stores get the same traffic in the same steps and the same label rounds; one runner skips unchanged
windows (the default), the other recomputes the whole look-back each round. Their metric documents (but
for the run fields) and their alerts must be identical after every round, while the skipping one computes
far fewer windows. Labels arrive late, windows turn final by age during the sequence, and some rounds see
no new event at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmon.config.model import Config, parse
from mlmon.schedule.runner import RoundReport, Runner
from mlmon.stores.duckdb.store import DuckDBStore
from tools.synth import HOUR, T0, Traffic, binary_traffic, load_traffic

RUN_FIELDS = ("job.run_id", "job.computed_at")
HOURS = 10


def _traffic() -> Traffic:
    rng = np.random.default_rng(1919)
    parts = [binary_traffic(rng, 300, T0 + h * HOUR, HOUR, label_share=0.9, duplicate_share=0.05)
             for h in range(HOURS)]
    preds = pd.concat([p.predictions for p in parts], ignore_index=True)
    fb = pd.concat([p.feedback for p in parts], ignore_index=True)
    pred_ts = fb["mlmon.prediction.id"].map(preds.set_index("mlmon.prediction.id")["@timestamp"])
    delay = pd.to_timedelta(rng.uniform(0, 4 * 3600, len(fb)), unit="s")
    fb["@timestamp"] = (pred_ts + delay).dt.floor("ms").to_numpy()
    return Traffic(preds, fb)


def _config() -> Config:
    section = {"task": "classification", "positive_label": "1", "min_labelled": 20, "lookback": "20h",
               "maturity": {"coverage": 0.95, "age": "8h"}, "cbpe": True,
               "segments": {"country": ["DE", "FR", "US"]},
               "reference": {"from": T0.isoformat(), "to": (T0 + 2 * HOUR).isoformat()},
               "thresholds": {"accuracy": {"relative": True, "warning": -0.01, "alert": -0.02}}}
    return parse({"models": {"churn": {"version": "1", "lateness": "1m", "performance": section,
                                       "fairness": {"attributes": {"country": ["DE", "FR", "US"]},
                                                    "positive_label": "1", "min_group_size": 10}}}})


def _arrived(traffic: Traffic, after: datetime | None, until: datetime) -> Traffic:
    def part(frame: pd.DataFrame) -> pd.DataFrame:
        ts = frame["@timestamp"]
        keep = (ts <= pd.Timestamp(until)) & (True if after is None else ts > pd.Timestamp(after))
        return frame[keep].reset_index(drop=True)
    return Traffic(part(traffic.predictions), part(traffic.feedback))


#: Every 2 hours while predictions and labels arrive, then rounds with nothing new (windows only age).
TIMES = [T0 + timedelta(hours=h, minutes=5) for h in (3, 5, 6, 8, 11, 14, 17, 21, 22, 23, 26, 27)]


def _rounds(path: Path, traffic: Traffic, reuse: bool) -> Iterator[tuple[RoundReport, dict[str, Any], list[Any]]]:
    config = _config()
    previous: datetime | None = None
    for k, at in enumerate(TIMES):
        store = DuckDBStore(path)
        try:
            load_traffic(store.con, _arrived(traffic, previous, at))
            runner = Runner(config, store, clock=lambda: at, reuse_unchanged=reuse)
            report = runner.label_round(config.models[0], at, f"round-{k}")
            docs = {d["metric"]["id"]: d for d in store.read_metrics("churn", limit=100_000)}
            alerts = sorted((a["alert"]["id"], a["alert"]["action"], a["alert"]["fired_at"], a["metric"]["id"])
                            for a in store.alert_store().recent_alerts("churn", limit=10_000))
            yield report, docs, alerts
        finally:
            store.close()
        previous = at


def _without_run_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "job": {k: v for k, v in doc["job"].items() if f"job.{k}" not in RUN_FIELDS}}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[tuple[RoundReport, dict[str, Any], list[Any]], ...]]:
    traffic = _traffic()
    root = tmp_path_factory.mktemp("unchanged")
    return list(zip(_rounds(root / "skip.duckdb", traffic, True), _rounds(root / "full.duckdb", traffic, False)))


def test_rounds_that_skip_unchanged_windows_write_what_full_recomputations_write(
        both: list[tuple[tuple[RoundReport, dict[str, Any], list[Any]], ...]]) -> None:
    for at, ((_, skip_docs, skip_alerts), (_, full_docs, full_alerts)) in zip(TIMES, both):
        assert set(skip_docs) == set(full_docs), at
        differing = [i for i in full_docs if _without_run_fields(skip_docs[i]) != _without_run_fields(full_docs[i])]
        assert not differing, (at, differing[:3], [(skip_docs[i]["metric"], full_docs[i]["metric"])
                                                   for i in differing[:1]])
        assert skip_alerts == full_alerts, at
    assert both[-1][1][2], "the sequence raises alerts (the accuracy threshold is tight)"


def test_unchanged_windows_are_skipped_and_counted(
        both: list[tuple[tuple[RoundReport, dict[str, Any], list[Any]], ...]]) -> None:
    skipped = [skip.unchanged for (skip, _, _), _ in both]
    assert all(full.unchanged == 0 for _, (full, _, _) in both)
    assert skipped[0] == 0  # nothing stored yet
    assert sum(skipped) > 30, skipped
    for (skip, _, _), (full, _, _) in both:
        assert skip.windows == full.windows  # counted as windows of the round all the same
        assert skip.documents < full.documents or skip.unchanged == 0


def test_windows_turning_final_by_age_are_written_though_their_inputs_did_not_change(
        both: list[tuple[tuple[RoundReport, dict[str, Any], list[Any]], ...]]) -> None:
    # Hour 9's events are all in by 14:00 (labels within 4 h); it is 8 h old at 18:00: the 17:05 round
    # skips it (provisional, unchanged), the 21:05 round must write it again as final.
    start = (T0 + 9 * HOUR).isoformat().replace("+00:00", ".000Z")
    seen = []
    for (_, docs, _), _ in both:
        found = [d for d in docs.values() if d["window"]["start"] == start
                 and d["metric"]["name"] == "label_coverage" and not d["metric"]["segment"]["field"]]
        seen.append((found[0]["metric"]["maturity"], found[0]["job"]["run_id"]) if found else None)
    by_time = dict(zip(TIMES, seen))
    assert by_time[T0 + timedelta(hours=14, minutes=5)] == ("provisional", "round-5"), seen
    assert by_time[T0 + timedelta(hours=17, minutes=5)] == ("provisional", "round-5"), seen  # skipped
    assert by_time[T0 + timedelta(hours=21, minutes=5)] == ("final", "round-7"), seen
