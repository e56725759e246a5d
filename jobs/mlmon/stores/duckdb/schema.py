"""DuckDB tables of the embedded store, derived from the event contract.

One table per event kind; its columns are the contract's dotted field names
(quoted), so a DuckDB query and an Elasticsearch query name the same fields.
User-named families (features, scores, segments, attributions, labels) become
columns on first sight (``ALTER TABLE ... ADD COLUMN``), typed by their family:
a column per feature keeps scans columnar and fast.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb

from mlmon.core.documents import METRIC_FIELDS
from mlmon_logging import contract

log = logging.getLogger("mlmon.stores")

#: Version of the table layout; recorded in ``mlmon_meta`` and migrated on open.
#: 1: first layout. 2: derived mlmon.prediction.latency_bucket; dead letters gain
#: event.dataset and event.ingested. 3: mlmon.quality.kind_changed_fields. 4: the metrics table
#: has no primary key (see METRICS_DDL). Migrations keep every column and row, so queries written
#: against an older layout keep working.
STORE_SCHEMA_VERSION = 4

EVENT_TABLES: dict[contract.Kind, str] = {
    "prediction": "predictions",
    "feedback": "feedback",
    "explanation": "explanations",
    "emitter": "emitter_stats",
    "prediction_error": "prediction_errors",
}
DEAD_LETTER_TABLE = "dead_letters"
METRICS_TABLE = "metrics"

_SQL_TYPES: dict[str, str] = {
    "date": "TIMESTAMPTZ",
    "keyword": "VARCHAR",
    "text": "VARCHAR",
    "double": "DOUBLE",
    "long": "BIGINT",
    "byte": "TINYINT",
    "boolean": "BOOLEAN",
    "flattened": "JSON",
}


def sql_type(es_type: str, array: bool = False) -> str:
    base = _SQL_TYPES[es_type]
    return f"{base}[]" if array else base


def quote(name: str) -> str:
    """Quote a dotted field name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def event_columns(kind: contract.Kind) -> dict[str, str]:
    """Fixed columns of an event table: every contract field of the kind, plus event.ingested."""
    cols = {f.name: sql_type(f.type, f.array) for f in contract.fields_for(kind)}
    cols.setdefault("event.ingested", "TIMESTAMPTZ")
    return cols


def event_table_ddl(kind: contract.Kind) -> str:
    cols = [f"{quote(n)} {t}" for n, t in event_columns(kind).items()]
    cols.append(f"PRIMARY KEY ({quote('event.id')})")
    return f"CREATE TABLE IF NOT EXISTS {EVENT_TABLES[kind]} ({', '.join(cols)})"


#: Dead-letter columns: the contract's DEAD_LETTER_FIELDS plus the line's byte offset in its file.
DEAD_LETTER_COLUMNS: dict[str, str] = {
    **{f.name: sql_type(f.type, f.array) for f in contract.DEAD_LETTER_FIELDS},
    "log.offset": "BIGINT",
}
_DEAD_LETTER_NOT_NULL = {"@timestamp", "error.type", "error.message", "event.original"}
DEAD_LETTER_DDL = (
    f"CREATE TABLE IF NOT EXISTS {DEAD_LETTER_TABLE} ("
    + ", ".join(f"{quote(n)} {t}{' NOT NULL' if n in _DEAD_LETTER_NOT_NULL else ''}"
                for n, t in DEAD_LETTER_COLUMNS.items())
    + f", PRIMARY KEY ({quote('event.id')}))"
)

#: No primary key: DuckDB holds an ART index in memory and rewrites it at checkpoints, so a key on
#: metric.id made every write slower, and the process larger, as the history grew. The store's writer
#: keeps ids unique instead (DuckDBStore.write_metrics).
METRICS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {METRICS_TABLE} ("
    + ", ".join(f"{quote(n)} {sql_type(t)}" for n, t in METRIC_FIELDS.items())
    + ")"
)

META_DDL = "CREATE TABLE IF NOT EXISTS mlmon_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or migrate to) the current table layout. Idempotent."""
    con.execute(META_DDL)
    row = con.execute("SELECT value FROM mlmon_meta WHERE key = 'store_schema_version'").fetchone()
    found = int(row[0]) if row else None
    if found is not None and found > STORE_SCHEMA_VERSION:
        raise RuntimeError(f"store schema version {found} is newer than this mlmon ({STORE_SCHEMA_VERSION}); upgrade mlmon")
    for kind in EVENT_TABLES:
        con.execute(event_table_ddl(kind))
    con.execute(DEAD_LETTER_DDL)
    con.execute(METRICS_DDL)
    if found is not None and found < STORE_SCHEMA_VERSION:
        # Additive migration: add what the current layout has and the old one lacks.
        for kind, table in EVENT_TABLES.items():
            _add_missing_columns(con, table, event_columns(kind))
        _add_missing_columns(con, DEAD_LETTER_TABLE, DEAD_LETTER_COLUMNS)
    _drop_metrics_primary_key(con)  # also for a file without a recorded layout: a look at the catalog
    con.execute("INSERT OR REPLACE INTO mlmon_meta VALUES ('store_schema_version', ?)", [str(STORE_SCHEMA_VERSION)])


def _drop_metrics_primary_key(con: duckdb.DuckDBPyConnection) -> None:
    """Layout 4: the metrics table rebuilt without its primary key (DuckDB cannot drop one in place), every
    column and row kept, in window order (what the writer's range deletes prune on)."""
    (keys,) = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? "
                          "AND constraint_type = 'PRIMARY KEY'", [METRICS_TABLE]).fetchall()[0]
    if not keys:
        return
    (rows,) = con.execute(f"SELECT count(*) FROM {METRICS_TABLE}").fetchall()[0]
    if rows:  # a moment's work on a big table: said once
        log.warning("mlmon: upgrading the store's metrics table to layout %d (%d rows rewritten, once)",
                    STORE_SCHEMA_VERSION, rows)
    rebuilt = f"{METRICS_TABLE}_v4"
    con.execute("BEGIN")
    try:
        con.execute(f"CREATE TABLE {rebuilt} AS SELECT * FROM {METRICS_TABLE} ORDER BY {quote('window.end')}")
        con.execute(f"DROP TABLE {METRICS_TABLE}")
        con.execute(f"ALTER TABLE {rebuilt} RENAME TO {METRICS_TABLE}")
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise


def ensure_family_columns(con: duckdb.DuckDBPyConnection, kind: contract.Kind, names: list[str]) -> None:
    """Add columns for user-named family fields not seen before (e.g. a new feature)."""
    table = EVENT_TABLES[kind]
    existing = set(table_columns(con, table))
    for name in names:
        if name in existing:
            continue
        fam = contract.family_of(name)
        if fam is None or kind not in fam.kinds:
            raise ValueError(f"{name!r} is not a user-named field of a {kind} event")
        con.execute(f"ALTER TABLE {table} ADD COLUMN {quote(name)} {sql_type(fam.type)}")
        existing.add(name)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of ``table`` as it is in the file now (``duckdb_columns()``: the same rows as
    ``information_schema.columns``, in half its time; a round asks a dozen times)."""
    return {r[0]: r[1] for r in con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
        [table]).fetchall()}


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str, wanted: dict[str, str]) -> None:
    existing = table_columns(con, table)
    for name, sql in wanted.items():
        if name not in existing:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {quote(name)} {sql}")


# --- reference documents (drift profiles, attribution references) ---------------------------

def reference_table_ddl(table: str) -> str:
    """A table of reference documents: searchable header columns plus the whole document."""
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    {quote('reference.id')} VARCHAR PRIMARY KEY,
    {quote('mlmon.model.name')} VARCHAR NOT NULL,
    {quote('mlmon.model.version')} VARCHAR NOT NULL,
    {quote('reference.created_at')} TIMESTAMPTZ NOT NULL,
    {quote('reference.source')} VARCHAR,
    {quote('reference.rows')} BIGINT,
    document JSON NOT NULL)"""


def put_reference_document(con: duckdb.DuckDBPyConnection, table: str, reference_id: str, model: str,
                           version: str, created_at: datetime, source: str, rows: int,
                           document: Mapping[str, Any]) -> None:
    """Store a reference document by id (the same id again replaces it)."""
    con.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)",
                [reference_id, model, version, created_at, source, rows, json.dumps(document)])


def newest_reference_document(con: duckdb.DuckDBPyConnection, table: str, model: str, version: str | None = None,
                              reference_id: str | None = None) -> dict[str, Any] | None:
    """The document with ``reference_id``, or the newest for model (and version); None if there is none."""
    clauses, params = [f"{quote('mlmon.model.name')} = ?"], [model]
    if reference_id is not None:
        clauses.append(f"{quote('reference.id')} = ?")
        params.append(reference_id)
    if version is not None:
        clauses.append(f"{quote('mlmon.model.version')} = ?")
        params.append(version)
    row = con.execute(f"SELECT document FROM {table} WHERE {' AND '.join(clauses)} "
                      f"ORDER BY {quote('reference.created_at')} DESC LIMIT 1", params).fetchone()
    return json.loads(row[0]) if row else None
