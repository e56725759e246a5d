"""``follow_matching``: every file of a glob, e.g. the ``events-{pid}.jsonl`` files of a pre-fork server.

Stepped by hand like test_follow_rotation: each ``None`` is an idle round.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmon.ingest import sources
from mlmon.ingest.sources import StopFlag, follow_matching
from mlmon.ingest.tail import Read


def _until_idle(items: Iterator[Read | None]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    while (item := next(items)) is not None:
        out.append((item.path, item.line))
    return out


def _names(items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(Path(name).name, line) for name, line in items]


def test_every_matching_file_is_followed_new_ones_included(tmp_path: Path) -> None:
    (tmp_path / "events-101.jsonl").write_bytes(b"a1\n")
    (tmp_path / "events-102.jsonl").write_bytes(b"b1\n")
    (tmp_path / "other.jsonl").write_bytes(b"x\n")
    items = follow_matching(str(tmp_path / "events-*.jsonl"), StopFlag())
    assert _names(_until_idle(items)) == [("events-101.jsonl", b"a1\n"), ("events-102.jsonl", b"b1\n")]
    (tmp_path / "events-103.jsonl").write_bytes(b"c1\n")  # a new worker
    with (tmp_path / "events-101.jsonl").open("ab") as f:
        f.write(b"a2\n")
    assert sorted(_names(_until_idle(items))) == [("events-101.jsonl", b"a2\n"), ("events-103.jsonl", b"c1\n")]
    items.close()


def test_a_busy_file_does_not_starve_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "FAIR_SHARE", 2)
    (tmp_path / "w-1.jsonl").write_bytes(b"".join(b"a%d\n" % i for i in range(6)))
    (tmp_path / "w-2.jsonl").write_bytes(b"b0\n")
    items = follow_matching(str(tmp_path / "w-*.jsonl"), StopFlag())
    got = [line for _, line in _until_idle(items)]
    assert got.index(b"b0\n") < got.index(b"a5\n")  # w-2 had its turn before w-1 was done
    assert sorted(got) == sorted([b"a%d\n" % i for i in range(6)] + [b"b0\n"])
    items.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open files through /proc")
def test_an_idle_file_is_closed_and_resumed_where_it_was_left_when_it_grows(tmp_path: Path) -> None:
    """Recycled workers leave files behind: they must not hold a descriptor each for good."""
    now = [0.0]
    path = tmp_path / "events-7.jsonl"
    path.write_bytes(b"1\n2\n")
    items = follow_matching(str(tmp_path / "events-*.jsonl"), StopFlag(), clock=lambda: now[0])
    assert _names(_until_idle(items)) == [("events-7.jsonl", b"1\n"), ("events-7.jsonl", b"2\n")]
    open_while_followed = _open_fds()
    now[0] += sources.IDLE_CLOSE_SECONDS + 1
    assert _until_idle(items) == []
    assert _until_idle(items) == []
    assert _open_fds() == open_while_followed - 1  # closed
    with path.open("ab") as f:
        f.write(b"3\n")
    assert _names(_until_idle(items)) == [("events-7.jsonl", b"3\n")]  # not 1 and 2 again
    items.close()


def test_a_file_removed_between_listing_and_reading_is_skipped(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "events-1.jsonl"
    gone.write_bytes(b"a\n")
    (tmp_path / "events-2.jsonl").write_bytes(b"b\n")
    real_stat = os.stat
    looked: list[str] = []

    def stat_then_removal(name, *args, **kwargs):  # cleaned up once listed and checked (isfile, then stat)
        result = real_stat(name, *args, **kwargs)
        looked.append(str(name))
        if str(name) == str(gone) and looked.count(str(gone)) == 2:
            gone.unlink()
        return result

    monkeypatch.setattr(sources.os, "stat", stat_then_removal)
    items = follow_matching(str(tmp_path / "events-*.jsonl"), StopFlag())
    assert _names(_until_idle(items)) == [("events-2.jsonl", b"b\n")]
    items.close()
