"""Bulk writes of validated events into the embedded DuckDB store.

Each batch becomes one Arrow table per event kind (rows from the columnar fast
path and from the per-line checker together) and one insert statement. The
primary key on ``event.id`` makes re-ingesting a file a no-op, like ``op_type
=> create`` in Elasticsearch; within a batch the first copy of an id wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mlmon.ingest.fast_checks import LINE_COLUMN
from mlmon.ingest.validate import Accepted, Rejected
from mlmon.stores.duckdb import schema
from mlmon_logging import contract

_ARROW: dict[str, pa.DataType] = {
    "date": pa.timestamp("us", tz="UTC"),
    "keyword": pa.string(),
    "text": pa.string(),
    "double": pa.float64(),
    "long": pa.int64(),
    "boolean": pa.bool_(),
}
_DEAD_LETTER_DATES = ("@timestamp", "event.ingested")
_BATCH_VIEW = "mlmon_ingest_batch"


def _arrow_type(name: str) -> tuple[pa.DataType, bool]:
    """Arrow type of a contract field and whether it is a date (stored from the parsed instant)."""
    fixed = contract.FIELDS_BY_NAME.get(name)
    es_type = fixed.type if fixed is not None else contract.field_type(name)
    if es_type is None:
        raise ValueError(f"{name!r} is not in the contract")
    if fixed is not None and fixed.array:
        return pa.list_(_ARROW[es_type]), False
    return _ARROW[es_type], es_type == "date"


def _column(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    if arrow_type == pa.float64():
        # JSON integers in a double field: float() rounds them as the fast path's cast does;
        # pyarrow would refuse one above 2**53 and fail the whole batch.
        values = [float(x) if type(x) is int else x for x in values]
    return pa.array(values, arrow_type)


def accepted_table(events: Sequence[Accepted], positions: Sequence[int]) -> pa.Table:
    """Per-line results as a table shaped like the fast path's (contract types, LINE_COLUMN)."""
    names: dict[str, None] = {}
    for e in events:
        names.update(dict.fromkeys(e.fields))
    arrays: dict[str, pa.Array] = {}
    for name in names:
        arrow_type, is_date = _arrow_type(name)
        if is_date:
            micros = [(i.micros if (i := e.instants.get(name)) is not None else None) for e in events]
            arrays[name] = pa.array(micros, pa.int64()).cast(arrow_type)
        else:
            arrays[name] = _column([e.fields.get(name) for e in events], arrow_type)
    arrays[LINE_COLUMN] = pa.array(list(positions), pa.int64())
    return pa.table(arrays)


class DuckDBSink:
    """Writes batches into one DuckDB connection (the caller owns the transaction).

    With ``skip_stored`` off, rows go in with a plain INSERT, which is about twice as
    fast as ``INSERT OR IGNORE`` but fails on an id already stored: the caller then
    rolls back and writes the batch again with it on (see ``core.ingest_batch``).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.skip_stored = False
        schema.ensure_schema(con)
        self.reload_columns()

    def reload_columns(self) -> None:
        """Re-read the tables' columns (after a rollback undid an ADD COLUMN)."""
        self._columns = {table: set(schema.table_columns(self.con, table)) for table in schema.EVENT_TABLES.values()}

    def write_events(self, kind: contract.Kind, tables: Sequence[pa.Table]) -> int:
        """Insert the rows of ``tables`` (each with LINE_COLUMN); returns how many were new."""
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return 0
        batch = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        table = schema.EVENT_TABLES[kind]
        new = [n for n in batch.column_names if n != LINE_COLUMN and n not in self._columns[table]]
        if new:
            schema.ensure_family_columns(self.con, kind, new)
            self._columns[table].update(new)
        ids = batch.column("event.id")
        if pc.count_distinct(ids).as_py() == len(ids):
            select = f"SELECT * EXCLUDE ({LINE_COLUMN}) FROM {_BATCH_VIEW}"
        else:  # the same id twice in one batch: keep its first line, as op_type create does
            select = (f"SELECT * EXCLUDE ({LINE_COLUMN}) FROM {_BATCH_VIEW} "
                      f"QUALIFY row_number() OVER (PARTITION BY {schema.quote('event.id')} ORDER BY {LINE_COLUMN}) = 1")
        return self._insert(table, batch, select)

    def write_dead_letters(self, rejected: Sequence[Rejected]) -> int:
        unique = list({r.event_id: r for r in reversed(rejected)}.values())[::-1]
        if not unique:
            return 0
        cols: dict[str, pa.Array] = {}
        for name in contract_dead_letter_names():
            if name in _DEAD_LETTER_DATES:
                cols[name] = pa.array([r.ingested.micros for r in unique], pa.int64()).cast(_ARROW["date"])
            else:
                cols[name] = pa.array([r.fields.get(name) for r in unique], pa.string())
        return self._insert(schema.DEAD_LETTER_TABLE, pa.table(cols), f"SELECT * FROM {_BATCH_VIEW}")

    def _insert(self, table: str, batch: pa.Table, select: str) -> int:
        # Not unregistered on failure: an aborted transaction refuses even that (see after_rollback).
        self.con.register(_BATCH_VIEW, batch)
        verb = "INSERT OR IGNORE" if self.skip_stored else "INSERT"
        row = self.con.execute(f"{verb} INTO {table} BY NAME {select}").fetchone()
        self.con.unregister(_BATCH_VIEW)
        return int(row[0]) if row else 0

    def after_rollback(self) -> None:
        """Forget what the rolled-back transaction did: the batch view, columns it added."""
        self.con.unregister(_BATCH_VIEW)
        self.reload_columns()


def contract_dead_letter_names() -> tuple[str, ...]:
    return tuple(f.name for f in contract.DEAD_LETTER_FIELDS)
