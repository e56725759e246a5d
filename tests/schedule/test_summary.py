"""`mlmon run` / `mlmon backfill` say what they evaluated and why it was nothing or little; --fail-on gates CI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from mlmon.cli.main import main
from mlmon.config.model import parse
from mlmon.core.reference import ReferenceProfile
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb.store import DuckDBStore
from tests.schedule.conftest import HOUR, T0
from tools.synth import load_events, make_features, to_events

LATER = T0 + timedelta(days=30, minutes=5)


def _notes(report_store: DuckDBStore, config: dict, at: object = None, backfill: bool = False) -> list[str]:
    runner = Runner(parse(config), report_store)
    report = runner.backfill(T0, T0 + 2 * HOUR, progress=False) if backfill else runner.round(at=at)
    return [line for s in report.models.values() for line in s.lines()]


def test_a_round_on_historical_data_says_where_the_data_is(store: DuckDBStore) -> None:
    lines = _notes(store, {"models": {"churn": {"version": "1"}}}, at=LATER)
    assert "model churn: 1 windows computed, 0 with data" in lines[0]
    assert any("no data in 2025-01-30T23:00:00.000Z .. 2025-01-31T00:00:00.000Z" in n
               and "events span 2025-01-01T00:00:00.000Z" in n
               and "mlmon backfill --from 2025-01-01T00:00:00.000Z --to 2025-01-01T02:00:00.000Z" in n
               for n in lines), lines
    # The next round has nothing due: the checkpoint is past every event, and it says so.
    lines = _notes(store, {"models": {"churn": {"version": "1"}}}, at=LATER + timedelta(minutes=30))
    assert any("is after the last event" in n for n in lines), lines


def test_thin_windows_are_counted_with_their_rows(store: DuckDBStore) -> None:
    lines = _notes(store, {"models": {"churn": {"version": "1", "drift": {"min_rows": 2_500}}}}, backfill=True)
    assert any("1 drift windows below drift.min_rows=2500" in n and "2025-01-01T01:00:00.000Z v1: 2000" in n
               for n in lines), lines


def test_unknown_model_and_version_list_the_known_ones(store: DuckDBStore) -> None:
    lines = _notes(store, {"models": {"nomodel": {}}}, backfill=True)
    assert any("no events of model 'nomodel' in the store; models with events: churn" in n for n in lines), lines
    assert any(n.strip().startswith("drift skipped: no reference profile") for n in lines)
    lines = _notes(store, {"models": {"churn": {"version": "9"}}}, backfill=True)
    assert any("no events of model churn version '9'; versions with events: 1, 3" in n for n in lines), lines


def test_fail_on_gates_ci(tmp_path: Path, references: dict[str, ReferenceProfile],
                          capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "g.duckdb"
    s = DuckDBStore(db)
    s.put_reference(references["1"])
    rng = np.random.default_rng(5)
    load_events(s.con, to_events(make_features(rng, 5_000, shifts={"num_1": 1.0}), "churn", "1", T0, HOUR, rng))
    s.close()
    config = tmp_path / "mlmon.yaml"
    config.write_text(f"store: duckdb:///{db}\nmodels:\n  churn:\n    version: '1'\n")
    args = ["backfill", "--config", str(config), "--from", "2025-01-01T00:00:00Z", "--to", "2025-01-01T01:00:00Z",
            "--no-progress"]
    assert main(args) == 0
    assert main([*args, "--fail-on", "alert"]) == 3
    assert "--fail-on alert:" in capsys.readouterr().err
    assert main([*args[:-1], "--to", "2025-01-01T00:00:00Z", "--fail-on", "alert"]) == 2  # --from not before --to


def test_exit_codes_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "backfill"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "exit codes:" in out and "3  --fail-on STATUS" in out
