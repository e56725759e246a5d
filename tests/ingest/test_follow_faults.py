"""``--follow`` under fast rotations and restarts: every line stored exactly once.

A real writer process (``rotating_writer.py``) logs and rotates its file every few tens of
milliseconds, copy-and-truncate or rename, while the follower stores into a real DuckDB file.
Every event id is counted: none missing, none stored twice, no dead letters (a line read
across a truncation would be one).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from mlmon.ingest.core import validator_for
from mlmon.ingest.follow import follow_into_store
from mlmon.ingest.report import IngestReport
from mlmon.ingest.sources import StopFlag
from tests.support.eventually import eventually

WRITER = Path(__file__).with_name("rotating_writer.py")

LineOf = Callable[..., bytes]


class Follower:
    def __init__(self, source: Path, db: Path) -> None:
        self.stop = StopFlag()
        self.db = db
        self.parts: list[IngestReport] = []
        self.report: IngestReport | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(source, db), daemon=True)
        self.thread.start()

    def _run(self, source: Path, db: Path) -> None:
        try:
            self.report = follow_into_store(str(source), db, validator_for(), 500, self.stop, self.parts.append)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            self.error = err

    def finish(self) -> IngestReport:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive() and self.error is None, self.error
        assert self.report is not None
        return self.report


def _write(events: Path, mode: str, lines: int, every: float, start: int = 0, keep: int = 9) -> None:
    proc = subprocess.run([sys.executable, str(WRITER), str(events), mode, str(lines), str(every), str(keep), str(start)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr


def _stored_ids(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [r[0] for r in con.execute('SELECT "event.id" FROM predictions').fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["copytruncate", "rename"])
def test_every_line_is_stored_once_while_the_file_rotates_every_100_ms(tmp_path: Path, mode: str) -> None:
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    follower = _running_follower(events, db)
    _write(events, mode, 6000, 0.1, start=1, keep=100)  # copies kept 10 s: a loaded machine stalls
    rotations = len(list(tmp_path.glob("events.jsonl.*")))
    assert rotations >= 5, "the writer was too slow to rotate: the test would prove nothing"
    assert eventually(lambda: _read_so_far(follower) >= 6001, timeout=60), (_read_so_far(follower), follower.error)
    report = follower.finish()
    assert report.lines == 6001 and report.stored["prediction"] == 6001
    assert not report.duplicates and not report.dead_lettered
    ids = _stored_ids(db)
    assert len(ids) == 6001 and set(ids) == {f"w-{n}" for n in range(6001)}


def _running_follower(events: Path, db: Path) -> Follower:
    """A follower that has stored the file's first line: it is reading before the writer starts
    (a follower still starting up reads only the file as it finds it, not copies made before)."""
    _write(events, "none", 1, 3600)
    follower = Follower(events, db)
    assert eventually(lambda: _read_so_far(follower) == 1), follower.error
    return follower


def _read_so_far(follower: Follower) -> int:
    """Lines stored so far (the store itself is read once the follower is done: DuckDB refuses a
    second, read-only connection to a file this process has open)."""
    return sum(part.lines for part in list(follower.parts))


@pytest.mark.parametrize("mode", ["copytruncate", "rename"])
def test_a_restarted_follower_resumes_where_it_stopped_even_across_rotations(tmp_path: Path, mode: str) -> None:
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    first = _running_follower(events, db)
    _write(events, mode, 1500, 0.05, start=1, keep=100)
    assert eventually(lambda: _read_so_far(first) >= 1501, timeout=60), first.error
    assert first.finish().lines == 1501
    _write(events, mode, 1500, 0.1, start=1501, keep=100)  # logged and rotated while no follower ran
    second = Follower(events, db)
    assert eventually(lambda: _read_so_far(second) >= 1500, timeout=60), second.error
    report = second.finish()
    assert report.lines == 1500, "only what was written since: nothing read twice"
    assert not report.duplicates and not report.dead_lettered
    assert set(_stored_ids(db)) == {f"w-{n}" for n in range(3001)}


def test_a_restart_on_an_unchanged_file_reads_nothing_again(tmp_path: Path, line_of: LineOf) -> None:
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(b"".join(line_of(f"e{i}") for i in range(200)))
    first = Follower(events, db)
    assert eventually(lambda: _read_so_far(first) >= 200)
    assert first.finish().lines == 200
    with events.open("ab") as f:
        f.write(line_of("new"))
    second = Follower(events, db)
    assert eventually(lambda: _read_so_far(second) >= 1)
    time.sleep(0.3)
    assert second.finish().lines == 1


def test_a_file_truncated_and_rewritten_while_stopped_is_read_from_its_start(tmp_path: Path, line_of: LineOf) -> None:
    """Same inode, other content (a different first line): its identity changed, so no offset applies."""
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(b"".join(line_of(f"a{i}") for i in range(50)))
    first = Follower(events, db)
    assert eventually(lambda: _read_so_far(first) >= 50)
    first.finish()
    with events.open("r+b") as f:  # no copy kept: these lines are gone, the new ones must all arrive
        f.truncate(0)
        f.write(b"".join(line_of(f"b{i}") for i in range(60)))
    second = Follower(events, db)
    assert eventually(lambda: _read_so_far(second) >= 60)
    assert second.finish().lines == 60


def test_a_writer_still_appending_to_the_renamed_file_is_read(tmp_path: Path, line_of: LineOf) -> None:
    """logrotate's create mode: renamed, a new file created, the service reopens only later."""
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(line_of("a"))
    follower = Follower(events, db)
    assert eventually(lambda: _read_so_far(follower) >= 1)
    with events.open("ab") as old:
        events.rename(tmp_path / "events.jsonl.1")
        events.write_bytes(line_of("new-file"))
        time.sleep(0.6)  # the follower has switched to the new file by now
        old.write(line_of("late"))  # the service had not reopened yet
    assert eventually(lambda: _read_so_far(follower) >= 3)
    follower.finish()
    assert set(_stored_ids(db)) == {"a", "new-file", "late"}
