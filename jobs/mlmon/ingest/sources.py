"""Where lines come from: files, stdin, and files that keep growing (``--follow``)."""

from __future__ import annotations

import glob
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

log = logging.getLogger(__name__)

#: How often a followed file is polled for new bytes when it has none.
POLL_SECONDS = 0.2


class StopFlag:
    """Set by SIGINT/SIGTERM: followers finish the batch in hand and return."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.set()
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


class _Lines:
    """Splits bytes into lines; a partial last line waits for its newline, or for its file to end."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        return [line + b"\n" for line in lines]

    def end_of_file(self) -> list[bytes]:
        """The partial line left at the end of a file that will not grow again, as a line of its own."""
        rest, self.pending = self.pending, b""
        return [rest + b"\n"] if rest else []


def _to_the_end(handle: BinaryIO, lines: _Lines) -> Iterator[bytes]:
    while chunk := handle.read(1 << 20):
        yield from lines.feed(chunk)
    yield from lines.end_of_file()


def _rotated_between(path: Path, reading: int, current: int) -> tuple[list[BinaryIO], bool]:
    """Open handles, oldest first, of the files rotated away (``<path>.1``, ``.2``, ...) after the
    one being read (inode ``reading``) and before the one now at ``path`` (inode ``current``); and
    whether the one being read was among them (if not, it was rotated out of the numbered files,
    and files between may be gone). Opened from ``.1`` up: a rotation meanwhile moves a file to
    a higher number, so it is met twice (and read once) rather than missed."""
    numbers = sorted(int(suffix) for f in path.parent.glob(f"{glob.escape(path.name)}.*")
                     if (suffix := f.name[len(path.name) + 1:]).isdigit())
    found: list[BinaryIO] = []  # newest first
    seen = {current}
    for number in range(1, (numbers[-1] if numbers else 0) + 2):  # + 1: a shift may be under way
        try:
            handle = path.with_name(f"{path.name}.{number}").open("rb")
        except FileNotFoundError:
            continue
        inode = os.fstat(handle.fileno()).st_ino
        if inode == reading:  # ours: everything further is older
            handle.close()
            return found[::-1], True
        if inode in seen:
            handle.close()
        else:
            seen.add(inode)
            found.append(handle)
    return found[::-1], False


@dataclass
class Position:
    """Where a follower stands: the file it reads (inode) and the end of its last complete line."""

    inode: int = 0
    offset: int = 0


def follow_lines(path: Path, stop: StopFlag, *, poll_seconds: float = POLL_SECONDS, start_at: int = 0,
                 position: Position | None = None) -> Generator[bytes | None, None, None]:
    """Complete lines appended to ``path`` until ``stop`` is set, from byte ``start_at``
    (a line boundary; 0: its start). After each idle tick it waits ``poll_seconds``;
    ``position``, if given, is brought up to date at each idle tick.

    Yields None when no complete line is waiting (an idle tick, so the caller can
    store what it holds). A partial last line waits for its newline.

    Rotation by renaming (the emitter's file sink, logrotate's default): the file
    being read is read to its end through the open handle, then every file rotated
    after it (``<path>.1``, ``.2``, ... newer than it: several when the follower fell
    behind, e.g. while it waited for the store), then the new file at ``path``. A file
    that shrinks in place (copy-and-truncate) is read again from its start. A partial
    line left at the end of a rotated file is passed on as a line of its own: the
    checker stores it if it is a whole event, else dead-letters it with the reason.
    """
    lines = _Lines()
    handle: BinaryIO = path.open("rb")
    handle.seek(start_at)
    inode = os.fstat(handle.fileno()).st_ino
    try:
        while not stop.is_set():
            chunk = handle.read(1 << 20)
            if chunk:
                yield from lines.feed(chunk)
                continue
            if position is not None:
                position.inode, position.offset = inode, handle.tell() - len(lines.pending)
            yield None
            if stop.wait(poll_seconds):
                break
            try:
                current = path.stat()
            except FileNotFoundError:  # mid-rotation: keep reading the old handle until the new file appears
                continue
            if current.st_ino == inode:
                if current.st_size < handle.tell():  # truncated in place: from the top again
                    yield from lines.end_of_file()
                    handle.seek(0)
                continue
            yield from _to_the_end(handle, lines)  # what was appended before the rename
            try:
                opened = path.open("rb")
            except FileNotFoundError:  # renamed again just now: all of it is read next tick
                continue
            handle.close()
            handle = opened
            newest = os.fstat(handle.fileno()).st_ino
            between, found = _rotated_between(path, inode, newest)
            if not found:
                log.warning("mlmon ingest: %s was rotated past its numbered copies while being read; "
                            "files rotated away before it may have been missed", path)
            for rotated in between:
                with rotated:
                    yield from _to_the_end(rotated, lines)
            inode = newest
    finally:
        handle.close()


#: Lines taken from one file before the others get their turn (a busy file cannot starve them).
FAIR_SHARE = 10_000
#: A followed file that has not grown for this long is closed (its writer is likely gone, e.g. a
#: recycled worker of a pre-fork server); it is opened again where it was left if it grows.
IDLE_CLOSE_SECONDS = 300.0


def is_pattern(name: str) -> bool:
    """Whether ``name`` holds glob wildcards (``*``, ``?``, ``[``), as :func:`glob.glob` decides it."""
    return glob.has_magic(name)  # glob's own test, not in its documented API


def follow_matching(pattern: str, stop: StopFlag, *, clock: Callable[[], float] = time.monotonic
                    ) -> Iterator[tuple[str, bytes] | None]:
    """(file, line) for the lines appended to every file matching the glob ``pattern`` until
    ``stop`` is set, files that appear later included (e.g. ``events-*.jsonl`` of the emitter's
    ``{pid}`` files, one per worker of a pre-fork server). Each is followed as :func:`follow_lines`
    follows one, rotations included; files take turns of up to ``FAIR_SHARE`` lines. Yields None
    when none has a line.
    """
    # name -> (its lines, where it stands, when it last grew)
    followers: dict[str, tuple[Generator[bytes | None, None, None], Position, float]] = {}
    left: dict[str, tuple[int, int]] = {}  # name -> (inode, offset) of a file closed while idle
    try:
        while not stop.is_set():
            now = clock()
            found = sorted(glob.glob(pattern))
            for name in set(left) - set(found):  # deleted since: nothing to resume
                del left[name]
            for name in found:
                if name in followers or not os.path.isfile(name):
                    continue
                try:
                    info = os.stat(name)
                except FileNotFoundError:
                    continue
                start = 0
                if name in left:
                    inode, offset = left[name]
                    if inode == info.st_ino:
                        if info.st_size <= offset:
                            continue  # not grown since it was closed
                        start = offset
                    del left[name]
                position = Position()
                followers[name] = (follow_lines(Path(name), stop, poll_seconds=0, start_at=start, position=position),
                                   position, now)
            busy = False
            for name, (lines, position, grew) in list(followers.items()):
                taken = 0
                try:
                    for line in lines:
                        if line is None:
                            break
                        yield name, line
                        taken += 1
                        if taken >= FAIR_SHARE:
                            break
                except FileNotFoundError:  # removed between the listing and its first read
                    del followers[name]
                    continue
                if taken:
                    busy = True
                    followers[name] = (lines, position, now)
                elif now - grew >= IDLE_CLOSE_SECONDS:  # idle: it stopped at a tick, position is current
                    lines.close()
                    del followers[name]
                    left[name] = (position.inode, position.offset)
            if not busy:
                yield None
                if stop.wait(POLL_SECONDS):
                    break
    finally:
        for lines, _, _ in followers.values():
            lines.close()
