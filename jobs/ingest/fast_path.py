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

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from mlmon.ingest.fast_checks import ColumnarChecker
from mlmon.ingest.fast_parse import ChunkParser, Unprovable, surrogate_escapes
from mlmon.ingest.timestamps import Instant
from mlmon.ingest.validate import Validator

#: Lines read by Arrow at once: large enough to keep its threads busy, small enough
#: that a chunk it refuses (one malformed line) is cheap to split and read again.
CHUNK_LINES = 8192
#: A refused chunk is split in this many parts; parts this small go line by line.
SPLIT_WAYS = 8
MIN_CHUNK_LINES = 16


@dataclass
class FastResult:
    """Rows proven valid, per kind, and the lines left to the per-line checker (batch positions)."""

    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    per_line: list[int] = field(default_factory=list)


class FastPath:
    def __init__(self, validator: Validator, min_chunk_lines: int = MIN_CHUNK_LINES) -> None:
        self.validator = validator
        self.min_chunk_lines = min_chunk_lines
        self.parser = ChunkParser()
        self.checker = ColumnarChecker(validator)

    def split(self, lines: list[bytes], positions: list[int], now: Instant) -> FastResult:
        """``lines`` are non-blank, each with or without its "\\n"; ``positions`` their places in the batch."""
        result = FastResult()
        for start in range(0, len(lines), CHUNK_LINES):
            self._chunk(lines[start:start + CHUNK_LINES], positions[start:start + CHUNK_LINES], now, result)
        result.per_line.sort()
        return result

    def _chunk(self, lines: list[bytes], positions: list[int], now: Instant, result: FastResult) -> None:
        if len(lines) < self.min_chunk_lines:
            result.per_line.extend(positions)
            return
        buffer = _joined(lines)
        if self._needs_screening(lines, buffer):
            lines, positions = self._screen(lines, positions, result)
            buffer = _joined(lines)
        try:
            chunk = self.parser.parse(lines, buffer)
        except Unprovable:
            step = -(-len(lines) // SPLIT_WAYS)
            for start in range(0, len(lines), step):
                self._chunk(lines[start:start + step], positions[start:start + step], now, result)
            return
        checked = self.checker.check(chunk, np.asarray(positions, dtype=np.int64), now)
        for kind, table in checked.tables.items():
            result.tables.setdefault(kind, []).append(table)
        result.per_line.extend(np.asarray(positions, dtype=np.int64)[checked.recheck].tolist())

    def _needs_screening(self, lines: list[bytes], buffer: bytes) -> bool:
        """Whole-chunk tests (memchr speed) for what :meth:`_screen` looks for line by line."""
        if max(map(len, lines)) > self.validator.max_line_bytes or b"\r" in buffer:
            return True
        if b"\\u" in buffer and surrogate_escapes(buffer):
            return True
        if buffer.isascii():
            return False
        try:
            buffer.decode("utf-8")  # joined by an ASCII "\n": no character can span two lines
            return False
        except UnicodeDecodeError:
            return True

    def _screen(self, lines: list[bytes], positions: list[int],
                result: FastResult) -> tuple[list[bytes], list[int]]:
        """Send to the per-line checker what Arrow would read differently from orjson / Logstash:
        oversized lines (a dead letter anyway), a "\r" (Arrow ends a row there, Logstash does
        not), escaped surrogates (the two JSON parsers differ) and invalid UTF-8."""
        limit = self.validator.max_line_bytes
        kept_lines: list[bytes] = []
        kept_positions: list[int] = []
        for line, position in zip(lines, positions):
            if len(line) > limit or b"\r" in line or (b"\\u" in line and surrogate_escapes(line)) \
                    or not _utf8(line):
                result.per_line.append(position)
            else:
                kept_lines.append(line)
                kept_positions.append(position)
        return kept_lines, kept_positions


def _joined(lines: list[bytes]) -> bytes:
    """The lines as one newline-delimited buffer, copied once when they carry their newlines."""
    buffer = b"".join(lines)
    if buffer.count(b"\n") == len(lines) and buffer.endswith(b"\n"):
        return buffer
    # A line without its newline (or with more inside: the parser's row count catches those).
    return b"\n".join(line[:-1] if line.endswith(b"\n") else line for line in lines)


def _utf8(line: bytes) -> bool:
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
