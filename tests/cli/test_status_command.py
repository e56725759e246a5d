"""``mlmon status``: each job's last run and last success, exit 1 when one failed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mlmon.core.job_runs import JobRun
from mlmon.stores.duckdb.store import DuckDBStore
from tests.cli.helpers import mlmon

T = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _store(path: Path, *runs: JobRun) -> str:
    store = DuckDBStore(path)
    try:
        store.record_job_runs(runs)
    finally:
        store.close()
    return f"duckdb:///{path}"


def test_a_failing_job_is_shown_with_its_last_success_and_exits_1(tmp_path: Path) -> None:
    url = _store(tmp_path / "s.duckdb",
                 JobRun("churn", "drift", T, T + timedelta(seconds=2), 1.5, True, 1, 40),
                 JobRun("churn", "performance", T, T, 0.1, True, 1, 9))
    _store(tmp_path / "s.duckdb", JobRun("churn", "drift", T + timedelta(hours=1), T + timedelta(hours=1), 0.2,
                                         False, 0, 0, "reference lacks feature 'age'"))
    result = mlmon(["status", "--store", url])
    assert result.code == 1, result.err
    drift = next(line for line in result.out.splitlines() if " drift " in line)
    assert "FAILED" in drift and "2026-11-01 00:00:02Z" in drift and drift.endswith("reference lacks feature 'age'")
    assert " ok " in next(line for line in result.out.splitlines() if "performance" in line)
    fields = json.loads(mlmon(["status", "--store", url, "--format", "json"]).out)
    assert [(f["family"], f["last_ok"]) for f in fields] == [("drift", False), ("performance", True)]


def test_a_store_no_round_ran_on_says_so(tmp_path: Path) -> None:
    DuckDBStore(tmp_path / "e.duckdb").close()
    result = mlmon(["status", "--store", f"duckdb:///{tmp_path / 'e.duckdb'}"])
    assert (result.code, result.out) == (0, "")
    [line] = result.err.splitlines()
    assert "no job has run" in line and "mlmon run" in line
