"""User errors are one line naming the problem and a non-zero exit, never a traceback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import doc, mlmon, store_with


@pytest.mark.parametrize(("store", "needle"), [
    ("mysql://x", "unsupported store URL 'mysql://x' (scheme 'mysql')"),
    ("duckdb://", "store URL 'duckdb://' names no file"),
    ("duckdb:///", "store URL 'duckdb:///' names no file"),
    ("localhost", "store 'localhost' is not a store URL nor a .duckdb file"),
    ("https://", "names no host"),
])
@pytest.mark.parametrize("command", [["metrics"], ["report"], ["reference", "list"], ["run", "--config", "{cfg}"],
                                     ["backfill", "--config", "{cfg}", "--from", "2026-11-01", "--to", "2026-11-02"]])
def test_a_bad_store_url_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str, needle: str,
                                     command: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlmon.yaml").write_text("models: {churn: {}}\n")
    argv = [a.replace("{cfg}", str(tmp_path / "mlmon.yaml")) for a in command]
    line = mlmon([*argv, "--store", store]).one_error_line()
    assert needle in line and "duckdb:///" in line, line
    assert list(tmp_path.iterdir()) == [tmp_path / "mlmon.yaml"]  # nothing created


def test_a_plain_duckdb_path_is_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store_with(tmp_path / "m.duckdb", [doc(0)])
    result = mlmon(["metrics", "--store", "m.duckdb", "--format", "jsonl"])
    assert result.code == 0 and len(result.out.splitlines()) == 1


@pytest.mark.parametrize("command", [["metrics"], ["reference", "list"], ["report"],
                                     ["reference", "build", "--model", "m", "--version", "1",
                                      "--from", "2026-11-01", "--to", "2026-11-02"]])
def test_a_file_that_is_not_a_duckdb_database_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           command: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "notes.duckdb"
    notes.write_text("these are my notes\n" * 200)
    line = mlmon([*command, "--store", f"duckdb:///{notes}"]).one_error_line()
    assert str(notes) in line and "not a valid DuckDB database" in line
    assert notes.read_text() == "these are my notes\n" * 200


def test_a_duckdb_database_that_is_not_an_mlmon_store_is_one_line(tmp_path: Path) -> None:
    import duckdb

    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE t AS SELECT 1 AS x").close()
    line = mlmon(["metrics", "--store", f"duckdb:///{other}"]).one_error_line()
    assert "not an mlmon store" in line and str(other) in line


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "report.html")


def test_a_full_disk_while_writing_the_report_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = store_with(tmp_path / "m.duckdb", [doc(0)])
    monkeypatch.setattr(Path, "write_text", _no_space)
    line = mlmon(["report", "--store", url, "--out", str(tmp_path / "report.html")]).one_error_line()
    assert line == "mlmon report: report.html: No space left on device"


def test_a_full_disk_under_the_listing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = store_with(tmp_path / "m.duckdb", [doc(0)])

    class FullDisk:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self) -> None:
            pass

    from mlmon.cli.main import main

    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert main(["metrics", "--store", url]) == 1
    err = capsys.readouterr().err
    assert err == "mlmon metrics: No space left on device\n"


def test_a_full_disk_under_the_store_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's own write failing (its message on several lines) is one line too."""
    import duckdb

    from mlmon.stores.duckdb import store as duckdb_store

    def refuse(*args: object, **kwargs: object) -> None:
        raise duckdb.IOException("IO Error: Could not write file \"m.duckdb.wal\":\nNo space left on device")

    monkeypatch.setattr(duckdb_store, "ensure_schema", refuse)
    line = mlmon(["reference", "build", "--model", "m", "--version", "1", "--from", "2026-11-01",
                  "--to", "2026-11-02", "--store", f"duckdb:///{tmp_path}/m.duckdb"]).one_error_line()
    assert "No space left on device" in line and "m.duckdb" in line


CONFIG_COMMANDS = [["config", "check", "{cfg}"], ["run", "--config", "{cfg}", "--store", "{store}"],
                   ["backfill", "--config", "{cfg}", "--store", "{store}", "--from", "2026-11-01", "--to", "2026-11-02"]]


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_yaml_syntax_errors_name_file_and_line(tmp_path: Path, command: list[str]) -> None:
    cfg = tmp_path / "mlmon.yaml"
    cfg.write_text("models:\n  churn: {window: 1h\n  other: {}\n")
    argv = [a.replace("{cfg}", str(cfg)).replace("{store}", f"duckdb:///{tmp_path}/m.duckdb") for a in command]
    line = mlmon(argv).one_error_line()
    assert f"{cfg}:" in line and "not valid YAML" in line


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path, command: list[str]) -> None:
    cfg = tmp_path / "mlmon.yaml"
    cfg.write_bytes("models: {caf\u00e9: {}}\n".encode("latin-1"))
    argv = [a.replace("{cfg}", str(cfg)).replace("{store}", f"duckdb:///{tmp_path}/m.duckdb") for a in command]
    line = mlmon(argv).one_error_line()
    assert str(cfg) in line and "not UTF-8 text (byte 0xe9 at offset 12); save it as UTF-8" in line


def test_through_a_real_process_there_is_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mlmon.cli.main", "metrics", "--store", "mysql://x"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mlmon metrics: unsupported store URL 'mysql://x'")
