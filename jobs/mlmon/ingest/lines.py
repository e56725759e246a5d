"""Bytes to lines in bounded memory, with the file offset where each line ends.

A line longer than the contract's limit is never held whole: its first bytes are
kept (enough to dead-letter it as ``oversized_line`` with its start) and the rest is
only counted until its newline, so a 200 MB line without a newline costs one read
chunk of memory, not 200 MB. A UTF-8 byte-order mark opening a file is skipped
(some Windows tools write one); anywhere else it is part of the line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

BOM = b"\xef\xbb\xbf"
#: Bytes read at once from a file.
READ_BYTES = 1 << 20


class CutLine(bytes):
    """The first bytes of a line too long to hold (never its newline); ``length`` is the
    whole line's size in bytes without its newline."""

    length: int

    def __new__(cls, head: bytes, length: int) -> CutLine:
        line = super().__new__(cls, head)
        line.length = length
        return line


def line_length(line: bytes) -> int:
    """Size of the line in its file, without its newline (a :class:`CutLine` knows its real size)."""
    if type(line) is CutLine:
        return line.length
    return len(line) - 1 if line.endswith(b"\n") else len(line)


class LineSplitter:
    """Splits a stream fed in chunks into complete lines (each with its ``\\n``).

    ``max_line_bytes``: longer lines come out as a :class:`CutLine` of ``max_line_bytes + 1``
    bytes (so they stay over the limit for the checker). ``offset`` is the file position of
    the first byte fed; at 0 a leading byte-order mark is dropped.
    """

    def __init__(self, max_line_bytes: int, offset: int = 0) -> None:
        self.max_line_bytes = max_line_bytes
        self.pending = b""
        #: File offset just past the last line handed out (a line boundary: where to resume).
        self.offset = offset
        self._at_start = offset == 0
        self._cut_head: bytes | None = None  # first bytes of an overlong line being skipped
        self._cut_length = 0

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        """Complete lines in ``chunk`` (and before it), each with the offset just past it."""
        if not chunk:
            return []
        if self._at_start:
            chunk = self._drop_bom(chunk)
            if not chunk:
                return []
        out: list[tuple[bytes, int]] = []
        if self._cut_head is not None:
            chunk = self._skip_overlong(chunk, out)
            if not chunk:
                return out
        data = self.pending + chunk if self.pending else chunk
        limit = self.max_line_bytes + 1  # with its newline
        offset = self.offset
        for line in io.BytesIO(data):  # splits on b"\n" only, keeping it
            if not line.endswith(b"\n"):  # the line in progress
                self.pending = line
                if len(line) > self.max_line_bytes:
                    self._start_cut(line)
                self.offset = offset
                return out
            offset += len(line)
            if len(line) > limit:
                line = CutLine(line[:limit], len(line) - 1)
            out.append((line, offset))
        self.pending = b""
        self.offset = offset
        return out

    def end_of_file(self) -> list[tuple[bytes, int]]:
        """The unfinished last line of a file that will not grow again, as a line of its own."""
        if self._cut_head is not None:
            line: bytes = CutLine(self._cut_head, self._cut_length)
            self.offset += self._cut_length
            self._cut_head, self._cut_length = None, 0
            return [(line, self.offset)]
        rest, self.pending = self.pending, b""
        if not rest:
            return []
        self.offset += len(rest)
        return [(rest + b"\n", self.offset)]

    def _drop_bom(self, chunk: bytes) -> bytes:
        data = self.pending + chunk
        if len(data) < len(BOM) and BOM.startswith(data):
            self.pending = data  # too short to tell yet
            return b""
        self._at_start = False
        self.pending = b""
        if data.startswith(BOM):
            self.offset += len(BOM)
            return data[len(BOM):]
        return data

    def _start_cut(self, partial: bytes) -> None:
        self._cut_head = partial[: self.max_line_bytes + 1]
        self._cut_length = len(partial)
        self.pending = b""

    def _skip_overlong(self, chunk: bytes, out: list[tuple[bytes, int]]) -> bytes:
        """Count the overlong line's bytes in ``chunk``; the bytes after its newline, if any."""
        end = chunk.find(b"\n")
        if end < 0:
            self._cut_length += len(chunk)
            return b""
        assert self._cut_head is not None
        self._cut_length += end
        self.offset += self._cut_length + 1
        out.append((CutLine(self._cut_head, self._cut_length), self.offset))
        self._cut_head, self._cut_length = None, 0
        return chunk[end + 1:]


def read_lines(stream: BinaryIO, max_line_bytes: int, read_bytes: int = READ_BYTES) -> Iterator[bytes]:
    """Every line of ``stream`` to its end (the last one even without a newline), in bounded memory."""
    splitter = LineSplitter(max_line_bytes)
    # read1: what is there now (a pipe's producer may be slow), never more than read_bytes.
    read = getattr(stream, "read1", stream.read)
    while chunk := read(read_bytes):
        for line, _ in splitter.feed(chunk):
            yield line
    for line, _ in splitter.end_of_file():
        yield line
