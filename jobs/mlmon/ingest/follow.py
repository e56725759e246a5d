"""``mlmon ingest --follow``: store what is appended to a file, taking turns on the store.

The store is a DuckDB file one process holds at a time, and ``mlmon run --every``
holds it for a whole round. While it is busy the follower keeps reading ahead into
memory, up to ``READ_AHEAD_BATCHES`` batches, so the file's rotations cannot get
past it during a long round; only past that bound does it wait for the store.
Whatever it holds is stored as soon as the store is free, in one turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from mlmon.ingest.core import ingest_batch, now_ms, open_store
from mlmon.ingest.duckdb_sink import DuckDBSink
from mlmon.ingest.report import IngestReport
from mlmon.ingest.sources import StopFlag, follow_lines, follow_matching, is_pattern
from mlmon.ingest.validate import Validator
from mlmon.stores.duckdb.connect import StoreLocked

#: Lines held in memory while the store is busy, in batches (~50 MB a batch at 1 kB a line).
READ_AHEAD_BATCHES = 4
#: After SIGINT/SIGTERM, how long the lines in hand wait for a busy store before being left
#: to the next run (which reads the file again from its start; stored events are not doubled).
STOP_WAIT_SECONDS = 10.0


class NotStored(Exception):
    """Stopped with lines in hand while another process held the store; ``report`` is what was stored."""

    def __init__(self, lines: int, reason: StoreLocked, report: IngestReport) -> None:
        super().__init__(f"{lines} line(s) read but not stored: {reason}")
        self.lines = lines
        self.report = report


def follow_into_store(source: str, db: Path, validator: Validator, batch_size: int, stop: StopFlag,
                      on_part: Callable[[IngestReport], None] = lambda part: None) -> IngestReport:
    """Store the lines appended to the file ``source`` - or to every file matching it, if it is a
    glob pattern - until ``stop`` is set; the report of all of it.

    ``on_part`` is given each batch's report as it is stored. Raises :class:`NotStored`
    when stopped with lines the store could not take in time.
    """
    total = IngestReport()
    backlog: list[tuple[str, bytes]] = []  # (file, line), in the order read

    def store(wait: float, give_up: Callable[[], bool] = lambda: False) -> None:
        with open_store(db, lock_wait=wait, give_up=give_up) as con:
            sink = DuckDBSink(con)
            for name, lines in _runs_by_file(backlog, batch_size):
                part = ingest_batch(lines, sink, validator, now_ms(), str(Path(name).resolve()))
                total.merge(part)
                on_part(part)
        backlog.clear()

    for item in _lines_of(source, stop):
        if item is not None:
            backlog.append(item)
            if len(backlog) % batch_size:
                continue  # fill the batch; a full one, or an idle tick, is a moment to store
        if not backlog:
            continue
        try:
            if len(backlog) >= READ_AHEAD_BATCHES * batch_size:
                store(math.inf, give_up=stop.is_set)  # read ahead as far as allowed: wait for a turn
            else:
                store(0)  # only if the store is free now; else read on
        except StoreLocked:
            if stop.is_set():
                break
    if backlog:
        try:
            store(STOP_WAIT_SECONDS)
        except StoreLocked as err:
            raise NotStored(len(backlog), err, total) from None
    return total


def _lines_of(source: str, stop: StopFlag) -> Iterator[tuple[str, bytes] | None]:
    if is_pattern(source):
        yield from follow_matching(source, stop)
        return
    for line in follow_lines(Path(source), stop):
        yield None if line is None else (source, line)


def _runs_by_file(backlog: list[tuple[str, bytes]], batch_size: int) -> Iterator[tuple[str, list[bytes]]]:
    """Consecutive lines of one file, in batches of at most ``batch_size``: each batch records its file."""
    for name, run in groupby(backlog, key=itemgetter(0)):
        lines = [line for _, line in run]
        for start in range(0, len(lines), batch_size):
            yield name, lines[start:start + batch_size]
