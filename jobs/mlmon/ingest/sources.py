"""Where lines come from: files, stdin, and files that keep growing (``--follow``)."""

from __future__ import annotations

import glob
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from types import FrameType

from mlmon.ingest.policy import MAX_LINE_BYTES
from mlmon.ingest.tail import DRAIN_SECONDS, FileTail, Read

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


def follow_file(path: Path, stop: StopFlag, *, poll_seconds: float = POLL_SECONDS,
                resume: Mapping[str, int] | None = None, max_line_bytes: int = MAX_LINE_BYTES,
                drain_seconds: float = DRAIN_SECONDS) -> Generator[Read | None, None, None]:
    """Every line appended to ``path`` until ``stop`` is set, across rotations (see
    :mod:`mlmon.ingest.tail`), from the start of the file or where ``resume``
    (fingerprint -> offset, from the store) says an earlier run stopped.

    Yields None when no complete line is waiting (an idle tick, so the caller can
    store what it holds), then waits ``poll_seconds``. A partial last line waits for
    its newline; at the end of a rotated file it is passed on as a line of its own.
    """
    tail = FileTail(path, max_line_bytes, resume, drain_seconds=drain_seconds)
    try:
        while not stop.is_set():
            reads = tail.poll(FAIR_SHARE)
            if reads:
                yield from reads
                continue
            yield None
            if stop.wait(poll_seconds):
                break
    finally:
        tail.close()


def follow_lines(path: Path, stop: StopFlag, *, poll_seconds: float = POLL_SECONDS,
                 drain_seconds: float = DRAIN_SECONDS) -> Iterator[bytes | None]:
    """:func:`follow_file`, lines only."""
    for read in follow_file(path, stop, poll_seconds=poll_seconds, drain_seconds=drain_seconds):
        yield None if read is None else read.line


#: Lines taken from one file before the others get their turn (a busy file cannot starve them).
FAIR_SHARE = 10_000
#: A followed file that has not grown for this long is closed (its writer is likely gone, e.g. a
#: recycled worker of a pre-fork server); it is opened again where it was left if it grows.
IDLE_CLOSE_SECONDS = 300.0


def is_pattern(name: str) -> bool:
    """Whether ``name`` holds glob wildcards (``*``, ``?``, ``[``), as :func:`glob.glob` decides it."""
    return glob.has_magic(name)  # glob's own test, not in its documented API


def follow_matching(pattern: str, stop: StopFlag, *, clock: Callable[[], float] = time.monotonic,
                    resume: Mapping[str, Mapping[str, int]] | None = None, max_line_bytes: int = MAX_LINE_BYTES,
                    drain_seconds: float = DRAIN_SECONDS) -> Generator[Read | None, None, None]:
    """The lines appended to every file matching the glob ``pattern`` until ``stop`` is set, files
    that appear later included (e.g. ``events-*.jsonl`` of the emitter's ``{pid}`` files, one per
    worker of a pre-fork server). Each is followed as :func:`follow_file` follows one, rotations
    included, resuming where ``resume`` (resolved path -> fingerprint -> offset) says; files take
    turns of up to ``FAIR_SHARE`` lines. Yields None when none has a line.
    """
    tails: dict[str, tuple[FileTail, float]] = {}  # name -> (its tail, when it last grew)
    left: dict[str, tuple[int, int, dict[str, int]]] = {}  # closed while idle: (inode, size, resume)
    records = resume or {}
    try:
        while not stop.is_set():
            now = clock()
            found = sorted(glob.glob(pattern))
            for name in set(left) - set(found):  # deleted since: nothing to resume
                del left[name]
            for name in found:
                if name in tails or not os.path.isfile(name):
                    continue
                try:
                    info = os.stat(name)
                except FileNotFoundError:
                    continue
                at: Mapping[str, int] | None = records.get(str(Path(name).resolve()))
                if name in left:
                    inode, size, at = left.pop(name)
                    if inode == info.st_ino and info.st_size <= size:
                        left[name] = (inode, size, at)
                        continue  # not grown since it was closed
                tails[name] = (FileTail(Path(name), max_line_bytes, at, drain_seconds=drain_seconds, clock=clock), now)
            busy = False
            for name, (tail, grew) in list(tails.items()):
                reads = tail.poll(FAIR_SHARE)
                yield from reads
                if reads:
                    busy = True
                    tails[name] = (tail, now)
                elif tail.live is None and not tail.rotated and not os.path.exists(name):
                    tail.close()  # removed before it was read, or after its copies were: nothing left
                    del tails[name]
                elif now - grew >= IDLE_CLOSE_SECONDS and not tail.rotated and tail.live is not None:
                    left[name] = (tail.live.inode, tail.live.read_to, tail.resume_point())
                    tail.close()
                    del tails[name]
            if not busy:
                yield None
                if stop.wait(POLL_SECONDS):
                    break
    finally:
        for tail, _ in tails.values():
            tail.close()
