"""Bulk writes of validated events into the embedded DuckDB store.

Each batch becomes one Arrow table per event kind and one
``INSERT OR IGNORE ... BY NAME`` statement: the primary key on ``event.id``
makes re-ingesting a file a no-op, like ``op_type => create`` in Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from mlmon.ingest.validate import Accepted, Rejected
from mlmon.stores import duckdb_schema as schema
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


def _arrow_type(name: str) -> tuple[pa.DataType, bool]:
    """Arrow type of a contract field and whether it is a date (stored from the parsed instant)."""
    fixed = contract.FIELDS_BY_NAME.get(name)
    es_type = fixed.type if fixed is not None else contract.field_type(name)
    if es_type is None:
        raise ValueError(f"{name!r} is not in the contract")
    if fixed is not None and fixed.array:
        return pa.list_(_ARROW[es_type]), False
    return _ARROW[es_type], es_type == "date"


class DuckDBSink:
    """Writes batches of :class:`Accepted` / :class:`Rejected` into one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        schema.ensure_schema(con)
        self._columns = {table: set(schema.table_columns(con, table)) for table in schema.EVENT_TABLES.values()}

    def write_events(self, kind: contract.Kind, events: Sequence[Accepted]) -> int:
        """Insert events of one kind; returns how many were new (duplicates of stored ids are skipped)."""
        unique = list({e.event_id: e for e in reversed(events)}.values())[::-1]  # first copy wins, as with create
        if not unique:
            return 0
        names: dict[str, None] = {}
        for e in unique:
            names.update(dict.fromkeys(e.fields))
        table = schema.EVENT_TABLES[kind]
        new = [n for n in names if n not in self._columns[table]]
        if new:
            schema.ensure_family_columns(self.con, kind, new)
            self._columns[table].update(new)
        arrays: dict[str, pa.Array] = {}
        for name in names:
            arrow_type, is_date = _arrow_type(name)
            if is_date:
                values: list[Any] = [(i.micros if (i := e.instants.get(name)) is not None else None) for e in unique]
                arrays[name] = pa.array(values, pa.int64()).cast(arrow_type)
            else:
                arrays[name] = pa.array([e.fields.get(name) for e in unique], arrow_type)
        return self._insert(table, pa.table(arrays))

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
        return self._insert(schema.DEAD_LETTER_TABLE, pa.table(cols))

    def _insert(self, table: str, batch: pa.Table) -> int:
        self.con.register("mlmon_ingest_batch", batch)
        try:
            row = self.con.execute(
                f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM mlmon_ingest_batch").fetchone()
        finally:
            self.con.unregister("mlmon_ingest_batch")
        return int(row[0]) if row else 0


def contract_dead_letter_names() -> tuple[str, ...]:
    return tuple(f.name for f in contract.DEAD_LETTER_FIELDS)
