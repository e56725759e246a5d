"""Commands take turns on the embedded store: a DuckDB file one process holds at a time.

A real second process holds the file lock (DuckDB's own), as ``mlmon ingest --follow``
or ``mlmon run`` would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from mlmon.cli.main import main
from mlmon.stores.protocols import StoreError
from mlmon.stores.duckdb.connect import LOCK_WAIT_ENV, StoreLocked, connect
from mlmon.stores.duckdb.store import DuckDBStore
from tests.support.duckdb_holder import held_by_another_process, release_after

def test_a_locked_store_is_waited_for_and_the_wait_is_announced_once(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    told: list[str] = []
    with held_by_another_process(path) as holder:
        release_after(holder, 1.0)
        start = time.monotonic()
        con = connect(path, wait=30, on_wait=told.append)
        waited = time.monotonic() - start
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    assert waited >= 0.9
    assert len(told) == 1 and f"PID {holder.pid}" in told[0]


def test_past_the_wait_the_error_names_the_file_and_how_to_wait_longer(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with held_by_another_process(path):
        with pytest.raises(StoreLocked, match=rf"{path} is in use by another process .* {LOCK_WAIT_ENV}"):
            connect(path, wait=0.3)
        with pytest.raises(StoreError, match="in use by another process"):
            DuckDBStore(path, lock_wait=0.3)


def test_give_up_ends_the_wait(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    asked: list[int] = []
    with held_by_another_process(path):
        with pytest.raises(StoreLocked, match="stopped while waiting"):
            connect(path, wait=float("inf"), give_up=lambda: asked.append(1) or len(asked) > 3)
    assert len(asked) == 4


def test_other_errors_are_not_waited_on(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(duckdb.IOException):
        connect(tmp_path / "no such dir" / "m.duckdb", wait=30)
    assert time.monotonic() - start < 5


def test_the_wait_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.duckdb"
    monkeypatch.setenv(LOCK_WAIT_ENV, "0.2")
    with held_by_another_process(path):
        with pytest.raises(StoreLocked, match="within 0.2 s"):
            connect(path)
    monkeypatch.setenv(LOCK_WAIT_ENV, "soon")
    with pytest.raises(StoreError, match=f"{LOCK_WAIT_ENV}='soon': expected a number of seconds"):
        connect(path)
    with pytest.raises(StoreError, match=f"{LOCK_WAIT_ENV}='soon': expected a number of seconds"):
        DuckDBStore(path)


def test_ingest_names_a_bad_wait_setting_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"")
    monkeypatch.setenv(LOCK_WAIT_ENV, "-1")
    assert main(["ingest", str(events), "--store", str(tmp_path / "m.duckdb")]) == 1
    assert capsys.readouterr().err == f"mlmon ingest: {LOCK_WAIT_ENV}='-1': expected a number of seconds >= 0\n"


def test_a_command_that_cannot_get_the_store_says_so_plainly(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    DuckDBStore(path).close()
    env = {**os.environ, LOCK_WAIT_ENV: "0.3"}
    with held_by_another_process(path) as holder:
        proc = subprocess.run([sys.executable, "-m", "mlmon.cli.main", "metrics", "--store", f"duckdb:///{path}",
                               "--model", "churn"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    waiting, error = proc.stderr.strip().splitlines()
    assert waiting.startswith("mlmon: the store is in use by another process; waiting for it")
    assert error.startswith(f"mlmon metrics: {path} is in use by another process")
    assert f"PID {holder.pid}" in error and LOCK_WAIT_ENV in error
