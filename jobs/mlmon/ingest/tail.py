"""Following one file across rotations without losing or repeating a line.

A file's *content* is followed, not its name. A content is known by its first line
(a fingerprint) and its inode; reading it goes on through whichever file holds it:

- **rename** (logrotate's ``create`` mode, the emitter's file sink): the file being
  read is renamed to ``<name>.1`` and a new one created. The renamed file is read
  through the open handle until it has not grown for ``drain_seconds`` (a writer may
  still append to it until it reopens), then every numbered copy newer than it that
  was not read, then the new file from its start.
- **copy and truncate** (logrotate's ``copytruncate``): the file is copied to
  ``<name>.1`` and truncated in place. After every read the follower checks that the
  file still starts with the bytes it started with; when it does not (or it got
  shorter), the unread rest is read from the copy that starts with them, from the
  last line boundary read, then newer copies, then the file again from its start.
  A chunk read after the truncation is thrown away, never passed on.

Lines a rotation itself destroys are not in any file and cannot be read: with
``copytruncate``, what the writer appends between logrotate's copy and its truncate
(logrotate documents this window); copies deleted or compressed before they were read.
The follower warns when it finds no copy holding what it had not read yet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mlmon.ingest.lines import READ_BYTES, LineSplitter

log = logging.getLogger(__name__)

#: Bytes of a file's start that identify its content (the first line, if shorter).
FINGERPRINT_BYTES = 1024
#: A renamed file is read until it has not grown for this long (its writer reopening late).
DRAIN_SECONDS = 5.0
#: Contents read to their end remembered per file, so a copy met again is not read twice.
_DONE_REMEMBERED = 64


@dataclass(frozen=True)
class Identity:
    """What a content is known by: its inode when read, and a hash of its first line."""

    inode: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Read:
    """One line of a followed file, and the offset just past it in the content it came from."""

    path: str
    identity: Identity
    line: bytes
    offset: int


def fingerprint_of(head: bytes) -> str | None:
    """The fingerprint of a content starting with ``head``; None until its first line is complete."""
    end = head.find(b"\n")
    if end >= 0:
        head = head[: end + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.sha256(head[:FINGERPRINT_BYTES]).hexdigest()


class _Content:
    """One content of a followed file, read through an open handle from ``start``."""

    def __init__(self, path: str, handle: BinaryIO, start: int, max_line_bytes: int, now: float, *,
                 head: bytes | None = None, rotated: bool = False) -> None:
        self.path = path
        # Copies there were when it was opened: one more, before its first line is complete, means
        # it was copied and truncated under us, and its first bytes cannot tell (see still_ours).
        self.copies_seen = _copy_keys(Path(path))
        self.handle = handle
        self.fd = handle.fileno()
        self.inode = os.fstat(self.fd).st_ino
        self.splitter = LineSplitter(max_line_bytes, start)
        self.read_to = start
        # The first bytes as they were when first seen: the file must keep starting with them.
        self.head = head if head is not None else os.pread(self.fd, FINGERPRINT_BYTES, 0)
        self.identity: Identity | None = None
        self._identify()
        self.grew_at = now
        self.rotated = rotated   # renamed away or a copy: read until drained, then closed
        self.replaced = False    # truncated or rewritten in place: the rest is in a copy, if anywhere
        self.at_end = False
        self.ready: list[Read] = []  # lines read beyond the last budget

    def _identify(self) -> None:
        fingerprint = fingerprint_of(self.head)
        if fingerprint is not None:
            self.identity = Identity(self.inode, fingerprint)

    def still_ours(self) -> bool:
        """Whether the file still holds this content (has not been truncated or rewritten).

        Once its first line is complete, its first bytes tell (events differ in their id). Before,
        a few bytes every event starts with do not: then a new numbered copy (not this file
        renamed) says that it was copied and truncated.
        """
        if self.head and os.pread(self.fd, len(self.head), 0) != self.head:
            return False
        if os.fstat(self.fd).st_size < self.read_to:
            return False
        if self.identity is not None or self.rotated:
            return True
        return all(inode == self.inode for inode, _ in _copy_keys(Path(self.path)) - self.copies_seen)

    def read(self, budget: int, now: float) -> list[Read]:
        """Up to ``budget`` complete lines; sets ``at_end`` when nothing more is there."""
        out = self.ready[:budget]
        del self.ready[:budget]
        self.at_end = False
        while len(out) < budget:
            chunk = os.pread(self.fd, READ_BYTES, self.read_to)
            if not chunk:
                self.at_end = True
                break
            if not self.still_ours():  # this chunk may be the new content: leave it to the next reader
                self.replaced = True
                break
            if len(self.head) < FINGERPRINT_BYTES and self.read_to <= len(self.head) < self.read_to + len(chunk):
                self.head += chunk[len(self.head) - self.read_to: FINGERPRINT_BYTES - self.read_to]
            self.read_to += len(chunk)
            self.grew_at = now
            lines = self.splitter.feed(chunk)
            if lines:
                if self.identity is None:  # a complete line: its first line is known now
                    self._identify()
                identity = self._identity_or_head()
                reads = [Read(self.path, identity, line, offset) for line, offset in lines]
                room = budget - len(out)
                out += reads[:room]
                self.ready = reads[room:]  # at most one chunk's lines wait for the next turn
        return out

    def _identity_or_head(self) -> Identity:
        """The identity; for a content with no complete line, a hash of what there is."""
        return self.identity or Identity(self.inode, hashlib.sha256(self.head).hexdigest())

    def finish(self) -> list[Read]:
        """The unfinished last line, as a line of its own (the content will not grow again)."""
        lines = self.splitter.end_of_file()
        self.handle.close()
        if not lines:
            return []
        identity = self._identity_or_head()
        return [Read(self.path, identity, line, offset) for line, offset in lines]

    def may_be(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` may hold this content as far as either goes
        (e.g. a copy still being written)."""
        return bool(self.head) and bool(head) and (head.startswith(self.head) or self.head.startswith(head))

    def matches(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` holds this content (e.g. its copy)."""
        return bool(self.head) and head.startswith(self.head)


#: A copy as seen at one moment: its inode, and its last change (inodes of deleted copies are
#: reused for new ones; a rename keeps the time, a copy still being written changes it).
CopyKey = tuple[int, int]


def _copy_keys(path: Path) -> frozenset[CopyKey]:
    keys = set()
    for _, name in numbered_copies(path):
        try:
            info = os.stat(name)
        except FileNotFoundError:
            continue
        keys.add((info.st_ino, info.st_mtime_ns))
    return frozenset(keys)


def numbered_copies(path: Path) -> list[tuple[int, Path]]:
    """``<path>.1``, ``<path>.2``, ... as they are now, newest (lowest number) first."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    found = []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    for name in names:
        m = pattern.fullmatch(name)
        if m:
            found.append((int(m.group(1)), path.with_name(name)))
    return sorted(found)


@dataclass
class _Opened:
    number: int
    handle: BinaryIO
    inode: int
    head: bytes
    size: int
    mtime_ns: int

    @property
    def key(self) -> CopyKey:
        return self.inode, self.mtime_ns


def _open_copies(path: Path) -> list[_Opened]:
    """Open handles on the numbered copies, newest first (opened from .1 up: a rotation meanwhile
    moves a file to a higher number, so it is met twice rather than missed; see callers)."""
    opened: list[_Opened] = []
    inodes: set[int] = set()
    listed = numbered_copies(path)
    # Every number up to one past the highest listed: a copy being shifted up meanwhile may be
    # missing from the listing and found under the next number.
    for number in range(1, (listed[-1][0] if listed else 0) + 2):
        name = path.with_name(f"{path.name}.{number}")
        try:
            handle = name.open("rb")
        except FileNotFoundError:
            continue
        info = os.fstat(handle.fileno())
        if info.st_ino in inodes:
            handle.close()
            continue
        inodes.add(info.st_ino)
        opened.append(_Opened(number, handle, info.st_ino, os.pread(handle.fileno(), FINGERPRINT_BYTES, 0),
                              info.st_size, info.st_mtime_ns))
    return opened


class FileTail:
    """The lines appended to one file, across rotations; ``resume``: fingerprint -> offset
    stored by an earlier run (see :mod:`mlmon.stores.duckdb.offsets`)."""

    def __init__(self, path: Path, max_line_bytes: int, resume: Mapping[str, int] | None = None, *,
                 drain_seconds: float = DRAIN_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.name = str(path)
        self.max_line_bytes = max_line_bytes
        self.drain_seconds = drain_seconds
        self.clock = clock
        self.live: _Content | None = None
        self.rotated: list[_Content] = []  # oldest first
        self.done: deque[str] = deque(maxlen=_DONE_REMEMBERED)
        self._rotated_now = False  # a rotation was handled in this poll
        self._start(dict(resume or {}))

    # -- starting ----------------------------------------------------------------------------
    def _start(self, resume: dict[str, int]) -> None:
        now = self.clock()
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            handle = None
        live_head = os.pread(handle.fileno(), FINGERPRINT_BYTES, 0) if handle else b""
        live_fp = fingerprint_of(live_head)
        copies = _open_copies(self.path)
        if resume:
            self._resume_copies(copies, resume, live_fp)
        else:
            for c in copies:
                c.handle.close()
        if handle is not None:
            start = resume.get(live_fp, 0) if live_fp is not None else 0
            if start > os.fstat(handle.fileno()).st_size:
                start = 0  # shorter than what was stored: not the content recorded, after all
            self.live = _Content(self.name, handle, start, self.max_line_bytes, now)

    def _resume_copies(self, copies: list[_Opened], resume: dict[str, int], live_fp: str | None) -> None:
        """Read what an earlier run left unread in the copies: the rest of recorded contents,
        and all of the copies newer than the newest recorded one (rotated while stopped)."""
        now = self.clock()
        fps = [fingerprint_of(c.head) for c in copies]
        recorded = [i for i, fp in enumerate(fps) if fp in resume]
        if live_fp in resume:
            newest_recorded = -1  # the file itself: every copy is older
        elif recorded:
            newest_recorded = recorded[0]
        else:
            newest_recorded = len(copies)
            if copies:
                log.warning("mlmon ingest: no file holds what %s held when ingest last stopped; reading all %d "
                            "of its numbered copies (events already stored are not stored twice)",
                            self.path, len(copies))
        for i in reversed(range(len(copies))):  # oldest first
            c, fp = copies[i], fps[i]
            if fp in resume:
                start = resume[fp]
            elif i < newest_recorded:
                start = 0
            else:
                c.handle.close()
                continue
            if start >= c.size:
                c.handle.close()
                if fp is not None:
                    self.done.append(fp)
                continue
            self.rotated.append(_Content(self.name, c.handle, start, self.max_line_bytes, now, head=c.head,
                                         rotated=True))

    # -- following ---------------------------------------------------------------------------
    def poll(self, budget: int) -> list[Read]:
        """Lines available now, up to about ``budget``; empty when there are none."""
        out = self._poll_once(budget)
        if not out and self._rotated_now:  # what the rotation brought in is there now
            out = self._poll_once(budget)
        return out

    def _poll_once(self, budget: int) -> list[Read]:
        self._rotated_now = False
        now = self.clock()
        out: list[Read] = []
        for content in list(self.rotated):
            if len(out) >= budget:
                return out
            out += content.read(budget - len(out), now)
            if (content.at_end or content.replaced) and self._drained(content, now):
                out += self._finish(content)
        live = self.live
        if live is not None and len(out) < budget:
            out += live.read(budget - len(out), now)
            if live.replaced:
                self._replaced_in_place(live)
            elif live.at_end:
                self._check_rotation(live)
        elif live is None:
            self._check_rotation(None)
        return out

    def resume_point(self) -> dict[str, int]:
        """fingerprint -> offset to start a new tail of this file where this one is."""
        live = self.live
        if live is None or live.identity is None:
            return {}
        return {live.identity.fingerprint: live.splitter.offset}

    def close(self) -> None:
        for content in [*self.rotated, *([self.live] if self.live else [])]:
            content.handle.close()
        self.rotated, self.live = [], None

    def _drained(self, content: _Content, now: float) -> bool:
        if content.replaced:
            return True
        if os.fstat(content.fd).st_nlink == 0:  # deleted: no writer will find it by name
            return True
        return now - content.grew_at >= self.drain_seconds

    def _finish(self, content: _Content) -> list[Read]:
        self.rotated.remove(content)
        if content.identity is not None:
            self.done.append(content.identity.fingerprint)
        return content.finish()

    def _check_rotation(self, live: _Content | None) -> None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:  # mid-rotation: the old handle is still read
            return
        if live is None:
            self._open_live(0)
            self._rotated_now = True
            return
        if info.st_ino != live.inode:  # renamed away: drain it, then newer copies, then the new file
            live.rotated = True
            live.grew_at = self.clock()
            self.rotated.append(live)
            self.live = None
            self._open_live(0)  # first: every content between the two is in a copy by now
            self._read_copies_newer_than(live, renamed=True)
            self._rotated_now = True
        elif not live.still_ours():
            self._replaced_in_place(live)

    def _replaced_in_place(self, live: _Content) -> None:
        """Truncated (and maybe rewritten) in place: the rest is read from its copy, if any."""
        self._rotated_now = True
        live.handle.close()
        self.live = None
        self._open_live(0)  # first: every content between the two is in a copy by now
        if not self._read_copies_newer_than(live, renamed=False) and live.identity is not None:
            log.warning("mlmon ingest: %s was truncated in place and no numbered copy starts as it did; lines "
                        "written after byte %d of it and before the truncation are lost", self.path,
                        live.splitter.offset)

    def _read_copies_newer_than(self, gone: _Content, *, renamed: bool) -> bool:
        """Queue the copies holding ``gone``'s unread rest (copy and truncate) and every copy newer
        than it not read yet; whether ``gone`` itself was found among them.

        Called once the new live file is open: copies made since are of what it holds, and
        left to it (it notices when it is rotated), so nothing is read twice.
        """
        now = self.clock()
        opened = _open_copies(self.path)
        live = self.live
        if renamed:  # contents stay with their inodes
            found = next((i for i, c in enumerate(opened) if c.inode == gone.inode), None)
        elif gone.identity is not None:
            found = next((i for i, c in enumerate(opened) if gone.matches(c.head)), None)
        else:  # its start cannot tell its copy: every copy made since it was opened
            found = None
        newer = opened[:found] if found is not None else opened
        if not renamed:
            if gone.identity is None:
                newer = [c for c in newer if c.key not in gone.copies_seen]
            if live is not None:  # copies made since the live file was opened are of what it holds
                newer = [c for c in newer if c.key in live.copies_seen]
        open_inodes = {c.inode for c in self.rotated} | ({live.inode} if live is not None else set())
        queued: list[_Content] = []
        if found is not None and not renamed:
            c = opened[found]
            queued.append(_Content(self.name, c.handle, gone.splitter.offset, self.max_line_bytes, now,
                                   head=gone.head, rotated=True))
        for c in reversed(newer):  # oldest first
            fp = fingerprint_of(c.head)
            if c.inode in open_inodes or (fp is not None and fp in self.done) or gone.matches(c.head) \
                    or (live is not None and live.may_be(c.head)):  # a copy under way of what the live file holds
                c.handle.close()
                continue
            queued.append(_Content(self.name, c.handle, 0, self.max_line_bytes, now, head=c.head, rotated=True))
        kept = {id(q.handle) for q in queued}
        for c in opened:
            if id(c.handle) not in kept:
                c.handle.close()
        self.rotated.extend(queued)
        if found is None and renamed:
            log.warning("mlmon ingest: %s was rotated past its numbered copies while being read; "
                        "files rotated away before it may have been missed", self.path)
        return found is not None

    def _open_live(self, start: int) -> None:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        self.live = _Content(self.name, handle, start, self.max_line_bytes, self.clock())
