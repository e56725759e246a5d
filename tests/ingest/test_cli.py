"""`mlmon ingest` on files, stdin and a growing file (stopped by SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from mlmon.cli.main import main
from mlmon.cli.commands.ingest import store_path
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon.stores.url import open_store
from tests.support.eventually import eventually

MLMON = [sys.executable, "-m", "mlmon.cli.main"]


def test_ingest_files_twice_reports_counts(tmp_path: Path, line_of, capsys) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(line_of("a") + line_of("b") + b"not json\n")
    store = f"duckdb:///{tmp_path}/m.duckdb"  # duckdb:////abs/path: absolute
    assert main(["ingest", str(events), "--store", store, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["stored"] == {"prediction": 2} and first["dead_lettered"] == {"not_json": 1}
    assert main(["ingest", str(events), "--store", store, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["stored"] == {"prediction": 0} and second["duplicates"] == {"prediction": 2}
    con = duckdb.connect(f"{tmp_path}/m.duckdb")
    assert con.execute('SELECT "log.file.path" FROM dead_letters').fetchone() == (str(events.resolve()),)


def test_ingest_reads_stdin(tmp_path: Path, line_of) -> None:
    proc = subprocess.run([*MLMON, "ingest", "-", "--store", str(tmp_path / "m.duckdb"), "--json"],
                          input=line_of("a"), capture_output=True, check=True, timeout=60)
    assert json.loads(proc.stdout)["stored"] == {"prediction": 1}


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no such file"):
        main(["ingest", str(tmp_path / "nope.jsonl"), "--store", str(tmp_path / "m.duckdb")])


@pytest.mark.parametrize(("url", "path"), [("duckdb:////abs/m.duckdb", Path("/abs/m.duckdb")),
                                           ("duckdb:///rel/m.duckdb", Path("rel/m.duckdb")),
                                           ("duckdb://rel/m.duckdb", Path("rel/m.duckdb")),
                                           ("plain.duckdb", Path("plain.duckdb"))])
def test_store_urls(url: str, path: Path) -> None:
    assert store_path(url) == path


@pytest.mark.parametrize("url", ["duckdb:///m.duckdb", "duckdb:///sub/m.duckdb", "duckdb://sub/m.duckdb", "absolute"])
def test_ingest_writes_the_store_the_other_commands_open(url: str, tmp_path: Path, monkeypatch, line_of) -> None:
    """The README's steps pass one --store URL to ingest, run, metrics and report: one file for all."""
    monkeypatch.chdir(tmp_path)
    if url == "absolute":
        url = f"duckdb:///{tmp_path}/abs/m.duckdb"
    events = tmp_path / "events.jsonl"
    events.write_bytes(line_of("a"))
    assert main(["ingest", str(events), "--store", url]) == 0
    store = open_store(url)
    try:
        assert isinstance(store, DuckDBStore)
        assert store.con.execute("SELECT count(*) FROM predictions").fetchone() == (1,)
    finally:
        store.close()
    assert Path(store.path).resolve().is_relative_to(tmp_path.resolve())


def test_a_store_url_without_a_path_names_both_forms() -> None:
    with pytest.raises(SystemExit, match=r"duckdb:///path/to/file.duckdb \(relative\) or duckdb:////abs"):
        store_path("duckdb://")


def test_elasticsearch_store_is_refused() -> None:
    with pytest.raises(SystemExit, match="unsupported store"):
        store_path("https://localhost:9200")


def test_follow_stores_appended_lines_and_stops_cleanly_on_sigterm(tmp_path: Path, line_of) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(line_of("a"))
    db = tmp_path / "m.duckdb"
    with _follower(events, db) as proc:
        time.sleep(2.0)
        with events.open("ab") as f:
            f.write(line_of("b"))
            f.write(line_of("c")[:20])  # a partial line waits for its newline
        time.sleep(1.0)
        with events.open("ab") as f:
            f.write(line_of("c")[20:])
        time.sleep(1.0)
        report, _ = _stopped(proc)
    assert report["stored"] == {"prediction": 3}
    assert duckdb.connect(str(db)).execute("SELECT count(*) FROM predictions").fetchone() == (3,)


@contextmanager
def _follower(events: Path, db: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([*MLMON, "ingest", str(events), "--follow", "--store", str(db), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def _stopped(proc: subprocess.Popen[bytes]) -> tuple[dict, bytes]:
    """SIGTERM, then (the JSON report, stderr); the follower must have stopped cleanly."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return json.loads(out), err


def _predictions(db: Path) -> int:
    """Rows stored so far, opening the store as any other command does (waiting for its turn)."""
    store = DuckDBStore(db, lock_wait=30)
    try:
        return int(store.con.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        store.close()


def test_follow_takes_turns_with_the_other_commands(tmp_path: Path, line_of) -> None:
    """`mlmon ingest --follow` holds the store per batch: other commands open it meanwhile, and
    while one holds it, the follower's next lines wait for its turn (nothing lost)."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(line_of("a"))
    db = tmp_path / "m.duckdb"
    with _follower(events, db) as proc:
        assert eventually(lambda: db.exists() and _predictions(db) == 1)
        held = DuckDBStore(db, lock_wait=30)  # e.g. a jobs round in progress
        with events.open("ab") as f:
            f.write(line_of("b"))
        time.sleep(1.5)  # the follower has read the line and holds it until the store is free
        assert held.con.execute("SELECT count(*) FROM predictions").fetchone() == (1,)
        held.close()
        assert eventually(lambda: _predictions(db) == 2)
        report, _ = _stopped(proc)
    assert report["stored"] == {"prediction": 2}


def test_follow_a_glob_stores_every_workers_file_and_names_the_file_of_a_dead_letter(tmp_path: Path,
                                                                                     line_of) -> None:
    """A pre-fork service with the file sink at events-{pid}.jsonl: one follower for all workers."""
    (tmp_path / "events-11.jsonl").write_bytes(line_of("a"))
    db = tmp_path / "m.duckdb"
    with _follower(tmp_path / "events-*.jsonl", db) as proc:
        time.sleep(1.5)
        (tmp_path / "events-12.jsonl").write_bytes(line_of("b") + b"not json\n")  # a worker started later
        assert eventually(lambda: _predictions(db) == 2)
        report, _ = _stopped(proc)
    assert report["stored"] == {"prediction": 2} and report["dead_lettered"] == {"not_json": 1}
    con = duckdb.connect(str(db))
    assert con.execute('SELECT "log.file.path" FROM dead_letters').fetchall() == [
        (str((tmp_path / "events-12.jsonl").resolve()),)]
