"""The batch-wise columnar fast path in front of the exact per-line checker.

A batch is screened line by line with byte tests only (no parsing), read in
chunks by Arrow, and checked column-wise (:mod:`mlmon.ingest.fast_checks`).
Rows the fast path cannot prove valid, and chunks it cannot read faithfully,
are handed to :class:`mlmon.ingest.validate.Validator` line by line, so the
verdict, the reason and the stored values are always the per-line checker's;
``tests/ingest/test_fast_path.py`` holds both paths to that on every golden
file and on random mixes of good and bad lines.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import pyarrow as pa

from mlmon.ingest.fast_checks import ColumnarChecker
from mlmon.ingest.fast_parse import ChunkParser, FlatChunk, Unprovable, surrogate_escapes
from mlmon.ingest.nesting import may_nest_deeper
from mlmon.ingest.timestamps import Instant
from mlmon.ingest.validate import Validator

#: Lines read by Arrow at once: large enough to keep its threads busy, small enough
#: that a chunk it refuses (one malformed line) is cheap to split and read again.
CHUNK_LINES = 8192
#: A refused chunk is split in this many parts; parts this small go line by line.
SPLIT_WAYS = 8
MIN_CHUNK_LINES = 16


#: Contract types a date-like string may legitimately fill (see ChunkParser).
_TEXT_TYPES = frozenset({"keyword", "text", "date"})
#: Chunks parsed side by side (Arrow releases the GIL); shared, as the process has few cores.
_PARSERS = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="mlmon-ingest-parse")


@dataclass
class _Parsed:
    """A chunk after parsing: ``chunk`` is None when Arrow could not read ``lines`` faithfully
    (they are split and read again), and ``lines`` is empty when there was nothing to read."""

    lines: list[bytes]
    positions: list[int]
    chunk: FlatChunk | None
    per_line: list[int]  # positions left to the per-line checker before parsing


@dataclass
class FastResult:
    """Rows proven valid, per kind, and the lines left to the per-line checker (batch positions)."""

    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    per_line: list[int] = field(default_factory=list)


class FastPath:
    def __init__(self, validator: Validator, min_chunk_lines: int = MIN_CHUNK_LINES) -> None:
        if min_chunk_lines < 1:
            raise ValueError(f"min_chunk_lines must be >= 1, got {min_chunk_lines}")
        self.validator = validator
        self.min_chunk_lines = min_chunk_lines
        self.checker = ColumnarChecker(validator)
        self.parser = ChunkParser(lambda name: self.checker.rule(name).es_type in _TEXT_TYPES)

    def split(self, lines: list[bytes], positions: list[int], now: Instant) -> FastResult:
        """``lines`` are non-blank, each with or without its "\\n"; ``positions`` their places in the batch."""
        result = FastResult()
        chunks = [(lines[i:i + CHUNK_LINES], positions[i:i + CHUNK_LINES]) for i in range(0, len(lines), CHUNK_LINES)]
        # Parsing releases the GIL: read the chunks side by side, check them here in order.
        for parsed in _PARSERS.map(lambda c: self._parse(*c), chunks):
            self._check(parsed, now, result)
        result.per_line.sort()
        return result

    def _parse(self, lines: list[bytes], positions: list[int]) -> _Parsed:
        if len(lines) < self.min_chunk_lines:
            return _Parsed([], [], None, positions)
        # Every row must start with "{": a top-level null crashes pyarrow 26's reader (segfault).
        buffer, one_object_per_row = _joined(lines)
        screened_out: list[int] = []
        if not one_object_per_row or self._needs_screening(lines, buffer):
            lines, positions, screened_out = self._screen(lines, positions)
            if len(lines) < self.min_chunk_lines:
                return _Parsed([], [], None, screened_out + positions)
            buffer, _ = _joined(lines)
        try:
            return _Parsed(lines, positions, self.parser.parse(lines, buffer), screened_out)
        except Unprovable:
            return _Parsed(lines, positions, None, screened_out)

    def _check(self, parsed: _Parsed, now: Instant, result: FastResult) -> None:
        result.per_line.extend(parsed.per_line)
        if parsed.chunk is None:
            lines, positions = parsed.lines, parsed.positions
            if not lines:  # all left to the per-line checker already
                return
            if len(lines) == 1:
                result.per_line.extend(positions)
                return
            step = -(-len(lines) // SPLIT_WAYS)  # Arrow refused it: read smaller parts
            for start in range(0, len(lines), step):
                self._check(self._parse(lines[start:start + step], positions[start:start + step]), now, result)
            return
        checked = self.checker.check(parsed.chunk, np.asarray(parsed.positions, dtype=np.int64), now)
        for kind, table in checked.tables.items():
            result.tables.setdefault(kind, []).append(table)
        result.per_line.extend(np.asarray(parsed.positions, dtype=np.int64)[checked.recheck].tolist())

    def _needs_screening(self, lines: list[bytes], buffer: bytes) -> bool:
        """Whole-chunk tests (memchr speed) for what :meth:`_screen` looks for line by line."""
        if max(map(len, lines)) > self.validator.max_line_bytes or b"\r" in buffer:
            return True
        if _may_nest_deeper(lines, buffer, self.validator.max_depth):
            return True
        # One byte first: a one-byte search runs at memchr speed, a two-byte one ~40x slower here.
        if b"\\" in buffer and surrogate_escapes(buffer):
            return True
        if buffer.isascii():
            return False
        try:
            buffer.decode("utf-8")  # joined by an ASCII "\n": no character can span two lines
            return False
        except UnicodeDecodeError:
            return True

    def _screen(self, lines: list[bytes], positions: list[int]) -> tuple[list[bytes], list[int], list[int]]:
        """Send to the per-line checker what Arrow would read differently from orjson / Logstash:
        oversized lines (a dead letter anyway), a "\r" (Arrow ends a row there, Logstash does
        not), escaped surrogates (the two JSON parsers differ), invalid UTF-8, and lines that do
        not start with "{" or hold a "\n" inside (pyarrow crashes on a top-level null)."""
        limit, depth = self.validator.max_line_bytes, self.validator.max_depth
        kept_lines: list[bytes] = []
        kept_positions: list[int] = []
        screened_out: list[int] = []
        for line, position in zip(lines, positions):
            if len(line) > limit or b"\r" in line or (b"\\u" in line and surrogate_escapes(line)) \
                    or not line.startswith(b"{") or b"\n" in line[:-1] or not _utf8(line) \
                    or may_nest_deeper(line, depth):
                screened_out.append(position)
            else:
                kept_lines.append(line)
                kept_positions.append(position)
        return kept_lines, kept_positions, screened_out


_FIRST, _LAST = itemgetter(0), itemgetter(-1)


def _may_nest_deeper(lines: list[bytes], buffer: bytes, limit: int) -> bool:
    """Whether a line may nest deeper than ``limit`` - has more opening brackets (then Arrow must
    not see it: its reader slows to seconds on arrays nested a few thousand deep, and crashes the
    process past ~20,000). Counted over the chunk's buffer at once: ~0.7 us a line."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    openings = np.flatnonzero((data == ord("{")) | (data == ord("[")))
    if len(openings) <= limit:
        return False
    line_ends = np.flatnonzero(data == ord("\n"))
    per_line = np.bincount(np.searchsorted(line_ends, openings), minlength=len(lines) + 1)
    return bool(per_line.max() > limit)


def _joined(lines: list[bytes]) -> tuple[bytes, bool]:
    """The lines as one newline-delimited buffer (copied once when they carry their newlines),
    and whether each row of it starts with "{" and comes from exactly one line."""
    # bytes(map(itemgetter(..))) looks at one byte per line without a Python-level loop.
    starts = bytes(map(_FIRST, lines)).count(b"{") == len(lines)
    if bytes(map(_LAST, lines)).count(b"\n") == len(lines):
        buffer = b"".join(lines)
        return buffer, starts and buffer.count(b"\n") == len(lines)
    buffer = b"\n".join(line[:-1] if line.endswith(b"\n") else line for line in lines)
    return buffer, starts and buffer.count(b"\n") == len(lines) - 1


def _utf8(line: bytes) -> bool:
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
