"""``ingest_lines``: JSON lines in, DuckDB rows out, in bulk batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from pathlib import Path
from weakref import WeakKeyDictionary

import duckdb
import pyarrow as pa

from mlmon.core.collector import collector_paused
from mlmon.ingest.duckdb_sink import DuckDBSink, accepted_table
from mlmon.ingest.fast_path import FastPath
from mlmon.ingest.report import IngestReport
from mlmon.ingest.spec import load_spec
from mlmon.ingest.timestamps import Instant
from mlmon.ingest.validate import Accepted, Rejected, Validator
from mlmon.stores.duckdb.connect import connect
from mlmon_logging import contract

#: Lines validated per DuckDB insert: big enough to amortise the statement, small
#: enough to bound memory (~50 MB at 1 kB/event) and the work lost on a crash.
DEFAULT_BATCH_SIZE = 50_000

Store = str | Path | duckdb.DuckDBPyConnection


def validator_for(namespace: str = contract.DEFAULT_NAMESPACE) -> Validator:
    """The compiled validator of ``namespace``: one object per namespace, however it is named."""
    return _compiled_validator(namespace)


@lru_cache(maxsize=8)
def _compiled_validator(namespace: str) -> Validator:
    return Validator(load_spec(), namespace)


def now_ms() -> Instant:
    """Ingest time at millisecond precision (what event.ingested records)."""
    now = Instant.now()
    return Instant(now.seconds, now.nanos - now.nanos % 1_000_000)


@contextmanager
def open_store(store: Store, *, lock_wait: float | None = None,
               give_up: Callable[[], bool] = lambda: False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``store``; closes it afterwards only if it was opened here.

    A file another process holds (``mlmon run``, a report) is waited for, up to ``lock_wait``
    seconds (see :func:`mlmon.stores.duckdb.connect.connect`), or until ``give_up()``.
    """
    if isinstance(store, duckdb.DuckDBPyConnection):
        yield store
        return
    path = Path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path, wait=lock_wait, give_up=give_up)
    try:
        yield con
    finally:
        con.close()


def ingest_lines(lines: Iterable[bytes | str], store: Store, *, namespace: str = contract.DEFAULT_NAMESPACE,
                 source_path: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 clock: Callable[[], Instant] = now_ms, columnar: bool = True) -> IngestReport:
    """Validate, enrich and store JSON lines; never loses a line (bad ones become dead letters).

    ``lines`` may carry their trailing newline. ``store`` is a DuckDB file path or an
    open connection. Idempotent: lines whose event.id is already stored are counted
    in ``report.duplicates`` and not stored again. ``columnar=False`` checks every
    line with the per-line checker alone (same results, slower; for comparison).
    """
    report = IngestReport()
    with open_store(store) as con:
        sink = DuckDBSink(con)
        for part in ingest_batches(batched(lines, batch_size), sink, validator_for(namespace), clock, source_path,
                                   columnar=columnar):
            report.merge(part)
    return report


def ingest_batches(batches: Iterable[list[bytes | str]], sink: DuckDBSink, validator: Validator,
                   clock: Callable[[], Instant] = now_ms, source_path: str | None = None, *,
                   columnar: bool = True) -> Iterator[IngestReport]:
    """Each batch's report once it is stored; the next batch is checked while one is written.

    For finite inputs: a batch is written only when the next one has been read, so a
    follower that must store promptly calls :func:`ingest_batch` itself.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlmon-ingest-check") as checker:
        pending: Future[PreparedBatch] | None = None
        for batch in batches:
            following = checker.submit(prepare_batch, batch, validator, clock(), source_path, columnar=columnar)
            if pending is not None:
                yield write_batch(sink, pending.result())
            pending = following
        if pending is not None:
            yield write_batch(sink, pending.result())


def batched(lines: Iterable[bytes | str], size: int) -> Iterator[list[bytes | str]]:
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    it = iter(lines)
    while batch := list(islice(it, size)):
        yield batch


def as_bytes(batch: Sequence[bytes | str]) -> list[bytes]:
    if set(map(type, batch)) <= {bytes}:
        return batch  # type: ignore[return-value]
    return [line.encode("utf-8") if isinstance(line, str) else line for line in batch]


def without_newline(raw: bytes) -> bytes:
    """The line as Logstash's line codec gives it: split on "\\n" only, so a "\\r" stays."""
    return raw[:-1] if raw.endswith(b"\n") else raw


_STRIPPED = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() removes


def drop_blank_lines(lines: list[bytes]) -> tuple[list[bytes], int]:
    """Non-blank lines and how many were blank; one byte looked at per line in the usual case."""
    if all(lines) and not _STRIPPED.intersection(bytes(map(itemgetter(0), lines))):
        return lines, 0
    kept = [line for line in lines if line.strip()]
    return kept, len(lines) - len(kept)


_fast_paths: WeakKeyDictionary[Validator, FastPath] = WeakKeyDictionary()


def fast_path_for(validator: Validator) -> FastPath:
    """One fast path per validator: it learns which columns must stay text, so keep it."""
    fast = _fast_paths.get(validator)
    if fast is None:
        fast = _fast_paths[validator] = FastPath(validator)
    return fast


def ingest_batch(batch: Sequence[bytes | str], sink: DuckDBSink, validator: Validator, now: Instant,
                 source_path: str | None = None, *, columnar: bool = True,
                 also: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> IngestReport:
    """One transaction: every line of ``batch`` is stored, dead-lettered or counted as blank
    (and ``also`` done, e.g. the file offset the batch reaches recorded)."""
    return write_batch(sink, prepare_batch(batch, validator, now, source_path, columnar=columnar), also)


@dataclass
class PreparedBatch:
    """A checked batch, ready to write: counts so far, valid rows per kind, dead letters."""

    report: IngestReport
    tables: dict[str, list[pa.Table]]
    rejected: list[Rejected]


def prepare_batch(batch: Sequence[bytes | str], validator: Validator, now: Instant, source_path: str | None = None, *,
                  columnar: bool = True) -> PreparedBatch:
    """Check every line of ``batch`` (no I/O): valid rows as tables, bad lines as dead letters."""
    report = IngestReport(lines=len(batch))
    texts, report.blank_lines = drop_blank_lines(as_bytes(batch))
    tables: dict[str, list[pa.Table]] = {}
    if columnar:
        fast = fast_path_for(validator).split(texts, list(range(len(texts))), now)
        tables, per_line = fast.tables, fast.per_line
    else:
        per_line = list(range(len(texts)))
    accepted: dict[str, tuple[list[Accepted], list[int]]] = {}
    rejected: list[Rejected] = []
    process = validator.process
    with collector_paused():  # a batch's parsed events are acyclic
        for position in per_line:
            result = process(without_newline(texts[position]), now, source_path)
            if type(result) is Accepted:
                events, positions = accepted.setdefault(result.kind, ([], []))
                events.append(result)
                positions.append(position)
            else:
                rejected.append(result)  # type: ignore[arg-type]
                report.dead_lettered[result.error_type] += 1  # type: ignore[union-attr]
    for kind, (events, positions) in accepted.items():
        tables.setdefault(kind, []).append(accepted_table(events, positions))
    return PreparedBatch(report, tables, rejected)


def write_batch(sink: DuckDBSink, prepared: PreparedBatch,
                also: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> IngestReport:
    """Store one batch in one transaction; its report, with new rows and duplicates counted.
    ``also`` runs in the same transaction, after the rows: it commits with them or not at all.

    Tries a plain INSERT first (fast); an id already stored makes it fail, and the batch
    is written again skipping stored ids. The sink stays careful while batches keep
    meeting stored ids (a file ingested twice), and turns fast again after a clean batch.
    """
    report, tables, rejected = prepared.report, prepared.tables, prepared.rejected
    con = sink.con
    while True:
        con.execute("BEGIN TRANSACTION")
        try:
            stored = {kind: sink.write_events(kind, kind_tables)  # type: ignore[arg-type]
                      for kind, kind_tables in tables.items()}
            dead_letters = sink.write_dead_letters(rejected)
            if also is not None:
                also(con)
            con.execute("COMMIT")
            break
        except duckdb.ConstraintException:
            _rollback(con)
            sink.after_rollback()
            if sink.skip_stored:
                raise
            sink.skip_stored = True
        except BaseException:
            _rollback(con)
            sink.after_rollback()
            raise
    duplicates = 0
    for kind, kind_tables in tables.items():
        valid = sum(t.num_rows for t in kind_tables)
        report.stored[kind] += stored[kind]
        if valid > stored[kind]:
            report.duplicates[kind] += valid - stored[kind]
            duplicates += valid - stored[kind]
    report.dead_letters_stored += dead_letters
    if sink.skip_stored and duplicates == 0 and dead_letters == len({r.event_id for r in rejected}):
        sink.skip_stored = False
    return report


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:  # a failed COMMIT has already ended the transaction
        pass
