"""``follow_lines`` across rotations: nothing written before a rotation is lost.

The generator is stepped by hand: it is paused at an idle tick (``None``) while the
test rotates the file, so each case is deterministic (one poll interval per resume).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmon.ingest.sources import StopFlag, follow_lines
from mlmon_logging.sinks import FileSink


def _until_idle(lines: Iterator[bytes | None]) -> list[bytes]:
    """Lines yielded up to the next idle tick."""
    out: list[bytes] = []
    while (line := next(lines)) is not None:
        out.append(line)
    return out


def test_lines_appended_just_before_a_rename_are_read_from_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"1\n")
    lines = follow_lines(path, StopFlag())
    assert _until_idle(lines) == [b"1\n"]
    with path.open("ab") as f:  # written between two polls, then rotated away
        f.write(b"2\n3\n")
    path.rename(tmp_path / "events.jsonl.1")
    path.write_bytes(b"4\n")
    assert _until_idle(lines) == [b"2\n", b"3\n", b"4\n"]
    lines.close()


def test_a_partial_last_line_of_a_rotated_file_is_passed_on_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"1\n{\"cut")
    lines = follow_lines(path, StopFlag(), drain_seconds=0)  # no grace for a late writer
    assert _until_idle(lines) == [b"1\n"]  # the partial line waits for its newline...
    path.rename(tmp_path / "events.jsonl.1")
    path.write_bytes(b"2\n")
    assert _until_idle(lines) == [b"{\"cut\n", b"2\n"]  # ...until its file is rotated away: then a dead letter
    lines.close()


def test_copy_and_truncate_starts_again_from_the_top(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"1\n2\n")
    lines = follow_lines(path, StopFlag())
    assert _until_idle(lines) == [b"1\n", b"2\n"]
    path.write_bytes(b"3\n")  # truncated and rewritten in place: same inode, smaller
    assert _until_idle(lines) == [b"3\n"]
    lines.close()


def test_while_the_new_file_is_missing_the_old_one_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"1\n")
    lines = follow_lines(path, StopFlag())
    assert _until_idle(lines) == [b"1\n"]
    old = tmp_path / "events.jsonl.1"
    path.rename(old)
    with old.open("ab") as f:  # the writer has not reopened yet
        f.write(b"2\n")
    assert _until_idle(lines) == [b"2\n"]
    path.write_bytes(b"3\n")
    assert _until_idle(lines) == [b"3\n"]
    lines.close()


def test_every_line_of_the_emitters_rotating_file_sink_arrives(tmp_path: Path) -> None:
    """The emitter's own file sink between two polls: a chunk appended, then a rotation.

    Lines of 13 bytes, chunks of 10 lines, rotation past 300 bytes: each round the
    first chunk lands unread in the current file, the second renames that file away
    and starts a new one. Every line must arrive once, in order.
    """
    path = tmp_path / "events.jsonl"
    sink = FileSink(path, max_bytes=300, backups=3)

    def chunk(start: int) -> bytes:
        return b"".join(b'{"n": %5d}\n' % i for i in range(start, start + 10))

    sink.write(chunk(0))
    sink.flush()
    lines = follow_lines(path, StopFlag())
    got = _until_idle(lines)
    n = 10
    for _ in range(5):
        sink.write(chunk(n))
        sink.write(chunk(n + 10))  # rotates: the chunk above is in the renamed file, unread
        sink.flush()
        n += 20
        got += _until_idle(lines)
    sink.close()
    assert (tmp_path / "events.jsonl.1").exists()
    assert got == [b'{"n": %5d}\n' % i for i in range(n)]
    lines.close()


def _numbered(start: int, count: int) -> bytes:
    return b"".join(b'{"n": %5d}\n' % i for i in range(start, start + count))


def test_a_follower_several_rotations_behind_reads_every_file_in_order(tmp_path: Path) -> None:
    """E.g. it waited for the store while the service logged on: three rotations between two polls."""
    path = tmp_path / "events.jsonl"
    sink = FileSink(path, max_bytes=150, backups=5)  # 10 lines of 13 bytes a file
    sink.write(_numbered(0, 10))
    sink.flush()
    lines = follow_lines(path, StopFlag())
    got = _until_idle(lines)
    for start in range(10, 50, 10):  # four more files: three rotated away unread, one current
        sink.write(_numbered(start, 10))
    sink.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"events.jsonl{s}" for s in ("", ".1", ".2", ".3", ".4")]
    got += _until_idle(lines)
    assert got == [b'{"n": %5d}\n' % i for i in range(50)]
    sink.close()
    lines.close()


def test_a_follower_behind_more_rotations_than_kept_reads_what_is_left_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.jsonl"
    sink = FileSink(path, max_bytes=150, backups=2)
    sink.write(_numbered(0, 10))
    sink.flush()
    lines = follow_lines(path, StopFlag())
    got = _until_idle(lines)
    for start in range(10, 50, 10):  # files 10-19 and the one being read fall off the end
        sink.write(_numbered(start, 10))
    sink.flush()
    with caplog.at_level(logging.WARNING):
        got += _until_idle(lines)
    assert got == [b'{"n": %5d}\n' % i for i in [*range(10), *range(20, 50)]]
    assert "rotated past its numbered copies" in caplog.text
    sink.close()
    lines.close()
