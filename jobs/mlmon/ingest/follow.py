"""``mlmon ingest --follow``: store what is appended to a file, taking turns on the store.

The store is a DuckDB file one process holds at a time, and ``mlmon run --every``
holds it for a whole round. While it is busy the follower keeps reading ahead into
memory, up to ``READ_AHEAD_BATCHES`` batches, so the file's rotations cannot get
past it during a long round; only past that bound does it wait for the store.
Whatever it holds is stored as soon as the store is free, in one turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from itertools import groupby
from pathlib import Path

import duckdb

from mlmon.ingest.core import ingest_batch, now_ms, open_store
from mlmon.ingest.duckdb_sink import DuckDBSink
from mlmon.ingest.report import IngestReport
from mlmon.ingest.sources import StopFlag, follow_file, follow_matching, is_pattern
from mlmon.ingest.tail import Read
from mlmon.ingest.validate import Validator
from mlmon.stores.duckdb import offsets
from mlmon.stores.duckdb.connect import StoreLocked

#: Lines held in memory while the store is busy, in batches (~50 MB a batch at 1 kB a line).
READ_AHEAD_BATCHES = 4
#: ... and in bytes, whatever the lines' size (a line is at most the contract's limit).
READ_AHEAD_BYTES = 256 << 20
#: After SIGINT/SIGTERM, how long the lines in hand wait for a busy store before being left
#: to the next run (which resumes after the last batch stored).
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

    Resumes each file where the last run's last stored batch ended (offsets kept in the store,
    committed with the batch they cover). ``on_part`` is given each batch's report as it is
    stored. Raises :class:`NotStored` when stopped with lines the store could not take in time.
    """
    total = IngestReport()
    try:
        resume = _stored_offsets(db, stop)
    except StoreLocked:  # stopped while waiting for the store: nothing read, nothing to store
        return total
    backlog: list[Read] = []  # in the order read
    held_bytes = 0

    def store(wait: float, give_up: Callable[[], bool] = lambda: False) -> None:
        nonlocal held_bytes
        with open_store(db, lock_wait=wait, give_up=give_up) as con:
            sink = DuckDBSink(con)
            while backlog:
                name, reads = _first_run(backlog, batch_size)
                path = str(Path(name).resolve())
                reached = _offsets_reached(reads)
                part = ingest_batch([r.line for r in reads], sink, validator, now_ms(), path,
                                    also=lambda c: offsets.save(c, path, reached))
                del backlog[:len(reads)]  # stored: never stored again by this run
                held_bytes -= sum(len(r.line) for r in reads)
                total.merge(part)
                on_part(part)

    for item in _lines_of(source, stop, resume):
        if item is not None:
            backlog.append(item)
            held_bytes += len(item.line)
            if len(backlog) % batch_size and held_bytes < READ_AHEAD_BYTES:
                continue  # fill the batch; a full one, or an idle tick, is a moment to store
        if not backlog:
            continue
        try:
            if len(backlog) >= READ_AHEAD_BATCHES * batch_size or held_bytes >= READ_AHEAD_BYTES:
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


def _stored_offsets(db: Path, stop: StopFlag) -> dict[str, dict[str, int]]:
    """resolved path -> fingerprint -> offset where the last run stopped (waits for the store)."""
    with open_store(db, lock_wait=math.inf, give_up=stop.is_set) as con:
        return _offsets_by_path(con)


def _offsets_by_path(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    return {path: {fp: at.offset for fp, at in by_fp.items()} for path, by_fp in offsets.load(con).items()}


def _lines_of(source: str, stop: StopFlag, resume: Mapping[str, Mapping[str, int]]) -> Iterator[Read | None]:
    if is_pattern(source):
        yield from follow_matching(source, stop, resume=resume)
    else:
        yield from follow_file(Path(source), stop, resume=resume.get(str(Path(source).resolve())))


def _first_run(backlog: list[Read], batch_size: int) -> tuple[str, list[Read]]:
    """The first lines of the backlog from one file, at most ``batch_size``: a batch records its file."""
    name, run = next(groupby(backlog[:batch_size], key=lambda r: r.path))
    return name, list(run)


def _offsets_reached(reads: list[Read]) -> dict[str, offsets.Offset]:
    """Per content read, the offset just past its last line in ``reads``."""
    reached: dict[str, offsets.Offset] = {}
    for r in reads:
        at = reached.get(r.identity.fingerprint)
        if at is None or r.offset > at.offset:
            reached[r.identity.fingerprint] = offsets.Offset(r.identity.inode, r.offset)
    return reached
