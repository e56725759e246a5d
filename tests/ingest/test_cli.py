"""`mlmon ingest` on files, stdin and a growing file (stopped by SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from mlmon.cli import main
from mlmon.commands.ingest import store_path

MLMON = [sys.executable, "-m", "mlmon.cli"]


def test_ingest_files_twice_reports_counts(tmp_path: Path, line_of, capsys) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(line_of("a") + line_of("b") + b"not json\n")
    store = f"duckdb://{tmp_path}/m.duckdb"
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


@pytest.mark.parametrize(("url", "path"), [("duckdb:///abs/m.duckdb", Path("/abs/m.duckdb")),
                                           ("duckdb://rel/m.duckdb", Path("rel/m.duckdb")),
                                           ("plain.duckdb", Path("plain.duckdb"))])
def test_store_urls(url: str, path: Path) -> None:
    assert store_path(url) == path


def test_elasticsearch_store_is_refused() -> None:
    with pytest.raises(SystemExit, match="unsupported store"):
        store_path("https://localhost:9200")


def test_follow_stores_appended_lines_and_stops_cleanly_on_sigterm(tmp_path: Path, line_of) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(line_of("a"))
    db = tmp_path / "m.duckdb"
    proc = subprocess.Popen([*MLMON, "ingest", str(events), "--follow", "--store", str(db), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2.0)
        with events.open("ab") as f:
            f.write(line_of("b"))
            f.write(line_of("c")[:20])  # a partial line waits for its newline
        time.sleep(1.0)
        with events.open("ab") as f:
            f.write(line_of("c")[20:])
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["stored"] == {"prediction": 3}
    assert duckdb.connect(str(db)).execute("SELECT count(*) FROM predictions").fetchone() == (3,)
