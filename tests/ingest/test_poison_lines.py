"""No line takes ingest down: each bad line is one dead letter, the rest of its batch is stored."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from mlmon.cli.main import main
from mlmon.ingest import ingest_lines
from mlmon.ingest.lines import CutLine, LineSplitter, read_lines
from mlmon.ingest.nesting import nests_deeper
from mlmon_logging.contract import MAX_NESTING_DEPTH

MLMON = [sys.executable, "-m", "mlmon.cli.main"]

LineOf = Callable[..., bytes]


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


DEEP_OBJECTS = b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"\n"  # 6 kB: RecursionError in the flatteners


@pytest.mark.parametrize("columnar", [True, False])
def test_a_deeply_nested_line_is_a_dead_letter_and_its_batch_is_stored(tmp_path: Path, line_of: LineOf,
                                                                       columnar: bool) -> None:
    lines = [line_of(f"e{i}") for i in range(40)]
    report = ingest_lines([*lines[:20], DEEP_OBJECTS, *lines[20:]], tmp_path / "m.duckdb", columnar=columnar)
    assert report.stored["prediction"] == 40
    assert dict(report.dead_lettered) == {"not_json": 1}
    assert _rows(tmp_path / "m.duckdb", 'SELECT "error.message" FROM dead_letters') == [
        (f"line nests objects and arrays more than {MAX_NESTING_DEPTH} levels deep",)]


def test_arrays_nested_thousands_deep_do_not_reach_arrows_reader(tmp_path: Path, line_of: LineOf) -> None:
    """20,000 nested arrays (40 kB, under the size limit) crash pyarrow's JSON reader (a segfault):
    a real ``mlmon ingest`` process must survive them."""
    events = tmp_path / "events.jsonl"
    deep = b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}\n"
    events.write_bytes(b"".join(line_of(f"e{i}") for i in range(30)) + deep + line_of("last"))
    proc = subprocess.run([*MLMON, "ingest", str(events), "--store", str(tmp_path / "m.duckdb"), "--json"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    report = json.loads(proc.stdout)
    assert report["stored"] == {"prediction": 31} and report["dead_lettered"] == {"not_json": 1}


def test_nesting_is_measured_outside_strings_and_up_to_the_limit() -> None:
    assert not nests_deeper(b'{"a":' * 100 + b"1" + b"}" * 100, 100)
    assert nests_deeper(b'{"a":' * 101 + b"1" + b"}" * 101, 100)
    brackets_in_a_string = b'{"s": "' + b"[" * 500 + b'\\"' + b"{" * 500 + b'"}'
    assert not nests_deeper(brackets_in_a_string, 100)
    assert nests_deeper(b'{"s": "\\\\", "a":' + b"[" * 101 + b"]" * 101 + b"}", 100)  # an escaped backslash


def test_an_empty_event_id_is_a_dead_letter(tmp_path: Path, line_of: LineOf) -> None:
    empty = line_of("").replace(b'"id": ""', b'"id": ""')
    assert b'"id": ""' in empty
    lines = [line_of(f"e{i}") for i in range(30)] + [empty]
    for columnar in (True, False):
        report = ingest_lines(lines, tmp_path / f"m{columnar}.duckdb", columnar=columnar)
        assert report.stored["prediction"] == 30 and dict(report.dead_lettered) == {"invalid_value": 1}


def test_a_byte_order_mark_opening_a_file_is_skipped_not_dead_lettered(tmp_path: Path, line_of: LineOf, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\xef\xbb\xbf" + line_of("a") + b"\xef\xbb\xbf" + line_of("b"))
    assert main(["ingest", str(events), "--store", str(tmp_path / "m.duckdb"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stored"] == {"prediction": 1}  # a mark inside the file is still refused
    assert report["dead_lettered"] == {"not_json": 1}


@pytest.mark.parametrize("split_at", [1, 2, 3, 4])
def test_a_byte_order_mark_split_across_reads_is_still_skipped(split_at: int) -> None:
    data = b"\xef\xbb\xbf{}\n"
    splitter = LineSplitter(100)
    lines = splitter.feed(data[:split_at]) + splitter.feed(data[split_at:])
    assert lines == [(b"{}\n", 6)]  # the offset is the file's: the mark counts


def test_a_huge_line_without_a_newline_is_read_in_bounded_memory(tmp_path: Path, line_of: LineOf) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as f:
        f.write(line_of("before"))
        block = b"x" * (1 << 20)
        for _ in range(40):  # 40 MB, no newline
            f.write(block)
    tracemalloc.start()
    try:
        with huge.open("rb") as stream:
            lines = list(read_lines(stream, 65_536))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak} bytes for a 40 MB line"
    assert lines[0] == line_of("before")
    cut = lines[1]
    assert isinstance(cut, CutLine) and len(cut) == 65_537 and cut.length == 40 << 20


def test_a_huge_line_is_dead_lettered_as_oversized_with_its_real_size(tmp_path: Path, line_of: LineOf, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(line_of("a") + b'{"x": "' + b"y" * 3_000_000 + b'"}\n' + line_of("b"))
    assert main(["ingest", str(events), "--store", str(tmp_path / "m.duckdb"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stored"] == {"prediction": 2} and report["dead_lettered"] == {"oversized_line": 1}
    [(message, original_size)] = _rows(tmp_path / "m.duckdb",
                                       'SELECT "error.message", strlen("event.original") FROM dead_letters')
    assert message == "line of 3000009 bytes exceeds the limit of 65536 bytes"
    assert original_size == 65_536
