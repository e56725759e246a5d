"""Where lines come from: files, stdin, and files that keep growing (``--follow``)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

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


def follow_lines(path: Path, stop: StopFlag) -> Iterator[bytes | None]:
    """Complete lines appended to ``path`` until ``stop`` is set, from its start.

    Yields None when no complete line is waiting (an idle tick, so the caller can
    store what it holds). A partial last line waits for its newline. Rotation, as
    ``tail -F`` follows it: a file renamed away (the emitter's file sink rotates so)
    is read to its end through the open handle before the new file at ``path`` is
    opened, so lines written just before the rename are not lost; a file that
    shrinks (copy-and-truncate) is read again from its start. A partial line left
    at the end of the old file is passed on as a line of its own: the checker
    stores it if it is a whole event, else dead-letters it with the reason.
    """
    pending = b""
    handle = path.open("rb")
    inode = os.fstat(handle.fileno()).st_ino
    try:
        while not stop.is_set():
            chunk = handle.read(1 << 20)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line + b"\n"
                continue
            yield None
            if stop.wait(POLL_SECONDS):
                break
            try:
                current = path.stat()
            except FileNotFoundError:  # mid-rotation: keep reading the old handle until the new file appears
                continue
            renamed, shrunk = current.st_ino != inode, current.st_size < handle.tell()
            if not (renamed or shrunk):
                continue
            if renamed:
                while chunk := handle.read(1 << 20):  # what was appended before the rename
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line + b"\n"
            if pending:
                yield pending + b"\n"
                pending = b""
            handle.close()
            handle = path.open("rb")
            inode = os.fstat(handle.fileno()).st_ino
    finally:
        handle.close()


def batches_until_idle(lines: Iterator[bytes | None], size: int) -> Iterator[list[bytes]]:
    """Batches of up to ``size`` lines, cut early at an idle tick so followed data lands promptly."""
    batch: list[bytes] = []
    for line in lines:
        if line is not None:
            batch.append(line)
            if len(batch) < size:
                continue
        if batch:
            yield batch
            batch = []
    if batch:
        yield batch
