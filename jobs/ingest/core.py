"""``ingest_lines``: JSON lines in, DuckDB rows out, in bulk batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import islice
from pathlib import Path

import duckdb

from mlmon.ingest.duckdb_sink import DuckDBSink
from mlmon.ingest.report import IngestReport
from mlmon.ingest.spec import load_spec
from mlmon.ingest.timestamps import Instant
from mlmon.ingest.validate import Accepted, Rejected, Validator
from mlmon_logging import contract

#: Lines validated per DuckDB insert: big enough to amortise the statement, small
#: enough to bound memory (~50 MB at 1 kB/event) and the work lost on a crash.
DEFAULT_BATCH_SIZE = 50_000

Store = str | Path | duckdb.DuckDBPyConnection


@lru_cache(maxsize=8)
def validator_for(namespace: str = contract.DEFAULT_NAMESPACE) -> Validator:
    return Validator(load_spec(), namespace)


def now_ms() -> Instant:
    """Ingest time at millisecond precision (what event.ingested records)."""
    now = Instant.now()
    return Instant(now.seconds, now.nanos - now.nanos % 1_000_000)


@contextmanager
def open_store(store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``store``; closes it afterwards only if it was opened here."""
    if isinstance(store, duckdb.DuckDBPyConnection):
        yield store
        return
    path = Path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        yield con
    finally:
        con.close()


def ingest_lines(lines: Iterable[bytes | str], store: Store, *, namespace: str = contract.DEFAULT_NAMESPACE,
                 source_path: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 clock: Callable[[], Instant] = now_ms) -> IngestReport:
    """Validate, enrich and store JSON lines; never loses a line (bad ones become dead letters).

    ``lines`` may carry their trailing newline. ``store`` is a DuckDB file path or an
    open connection. Idempotent: lines whose event.id is already stored are counted
    in ``report.duplicates`` and not stored again.
    """
    report = IngestReport()
    with open_store(store) as con:
        sink = DuckDBSink(con)
        for batch in batched(lines, batch_size):
            report.merge(ingest_batch(batch, sink, validator_for(namespace), clock(), source_path))
    return report


def batched(lines: Iterable[bytes | str], size: int) -> Iterator[list[bytes | str]]:
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    it = iter(lines)
    while batch := list(islice(it, size)):
        yield batch


def ingest_batch(batch: list[bytes | str], sink: DuckDBSink, validator: Validator, now: Instant,
                 source_path: str | None = None) -> IngestReport:
    """One transaction: every line of ``batch`` is stored, dead-lettered or counted as blank."""
    report = IngestReport()
    by_kind: dict[str, list[Accepted]] = {}
    rejected: list[Rejected] = []
    process = validator.process
    for line in batch:
        raw = line.encode("utf-8") if isinstance(line, str) else line
        if raw.endswith(b"\n"):  # Logstash's line codec splits on "\n" only; a "\r" stays in the line
            raw = raw[:-1]
        report.lines += 1
        if not raw.strip():
            report.blank_lines += 1
            continue
        result = process(raw, now, source_path)
        if type(result) is Accepted:
            by_kind.setdefault(result.kind, []).append(result)
        else:
            rejected.append(result)  # type: ignore[arg-type]
            report.dead_lettered[result.error_type] += 1  # type: ignore[union-attr]
    con = sink.con
    con.execute("BEGIN TRANSACTION")
    try:
        for kind, events in by_kind.items():
            stored = sink.write_events(kind, events)  # type: ignore[arg-type]
            report.stored[kind] += stored
            if len(events) > stored:
                report.duplicates[kind] += len(events) - stored
        report.dead_letters_stored += sink.write_dead_letters(rejected)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report
