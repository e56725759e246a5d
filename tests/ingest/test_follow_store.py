"""The follower and a store another process holds: it reads ahead, then stores in one turn.

A real second process holds the DuckDB file (a jobs round, say); the follower runs in a
thread of this process on a real file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from mlmon.ingest import follow as follow_module
from mlmon.ingest.core import validator_for
from mlmon.ingest.follow import NotStored, follow_into_store
from mlmon.ingest.report import IngestReport
from mlmon.ingest.sources import StopFlag
from tests.support.duckdb_holder import held_by_another_process, release_after
from tests.support.eventually import eventually

LineOf = Callable[..., bytes]


class Follower:
    """follow_into_store in a thread, with its outcome."""

    def __init__(self, path: Path, db: Path, batch_size: int = 2) -> None:
        self.stop = StopFlag()
        self.parts: list[IngestReport] = []
        self.report: IngestReport | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(path, db, batch_size), daemon=True)
        self.thread.start()

    def _run(self, path: Path, db: Path, batch_size: int) -> None:
        try:
            self.report = follow_into_store(str(path), db, validator_for(), batch_size, self.stop,
                                            self.parts.append)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            self.error = err

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


def _stored(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        con.close()


def _append(path: Path, *lines: bytes) -> None:
    with path.open("ab") as f:
        for line in lines:
            f.write(line)


def _rotate(events: Path, *lines: bytes) -> None:
    """Rotate keeping one copy, as ``FileSink(backups=1)`` does: the older copy is deleted."""
    events.replace(events.with_name(events.name + ".1"))
    events.write_bytes(b"".join(lines))


def test_while_the_store_is_busy_the_follower_reads_ahead_then_stores_it_all(tmp_path: Path, line_of: LineOf) -> None:
    """A long jobs round holds the store while the service's file rotates past its kept copies:
    the follower has read each file before it is deleted, and stores everything afterwards."""
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(line_of("a"))
    follower = Follower(events, db)
    assert eventually(lambda: sum(p.stored["prediction"] for p in follower.parts) == 1)
    with held_by_another_process(db) as holder:
        _append(events, line_of("b"), line_of("c"), line_of("d"))
        for name in ("e", "f", "g"):  # three rotations, one poll or more apart; "e"'s file is deleted
            time.sleep(1.0)
            _rotate(events, line_of(name))
        time.sleep(1.0)
        assert sum(p.lines for p in follower.parts) == 1  # nothing stored meanwhile: the store is held
        release_after(holder, 0)
        assert eventually(lambda: sum(p.stored["prediction"] for p in follower.parts) == 7)
    follower.finish()
    assert follower.error is None and follower.report is not None
    assert follower.report.stored["prediction"] == 7
    assert _stored(db) == 7


def _stored_parts(follower: Follower) -> int:
    return sum(p.stored["prediction"] for p in follower.parts)


def test_past_the_read_ahead_bound_it_waits_for_its_turn(tmp_path: Path, line_of: LineOf,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(follow_module, "READ_AHEAD_BATCHES", 1)
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(line_of("first"))
    follower = Follower(events, db, batch_size=2)
    assert eventually(lambda: _stored_parts(follower) == 1)
    with held_by_another_process(db) as holder:
        _append(events, line_of("a"), line_of("b"), line_of("c"))
        assert eventually(lambda: "waiting for it" in caplog.text)  # 2 lines in hand: the bound
        release_after(holder, 0.5)
        assert eventually(lambda: _stored_parts(follower) == 4)
    follower.finish()
    assert follower.error is None


def test_stopped_with_lines_the_held_store_cannot_take_says_how_many(tmp_path: Path, line_of: LineOf,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_module, "STOP_WAIT_SECONDS", 0.3)
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(line_of("a"))
    follower = Follower(events, db)
    assert eventually(lambda: _stored_parts(follower) == 1)
    with held_by_another_process(db):
        _append(events, line_of("b"))
        time.sleep(1.0)
        follower.finish()
    assert isinstance(follower.error, NotStored)
    assert follower.error.lines == 1 and "in use by another process" in str(follower.error)
    assert follower.error.report.lines == 1  # "a", stored before the store was taken


def test_started_while_the_store_is_held_it_waits_for_the_offsets_then_reads(tmp_path: Path, line_of: LineOf) -> None:
    """Where to resume is in the store: a follower started during a jobs round waits for it."""
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(line_of("a"))
    with held_by_another_process(db) as holder:
        follower = Follower(events, db)
        time.sleep(0.5)
        assert follower.parts == [] and follower.error is None
        release_after(holder, 0)
        assert eventually(lambda: _stored_parts(follower) == 1)
    follower.finish()
    assert follower.error is None


def test_stopped_while_waiting_for_the_store_at_start_it_ends_quietly(tmp_path: Path, line_of: LineOf) -> None:
    events, db = tmp_path / "events.jsonl", tmp_path / "m.duckdb"
    events.write_bytes(line_of("a"))
    with held_by_another_process(db):
        follower = Follower(events, db)
        time.sleep(0.3)
        follower.finish()
    assert follower.error is None and follower.report is not None and follower.report.lines == 0
