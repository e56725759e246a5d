"""An embedded store made by an older mlmon gains the columns of newer contract fields when opened."""

from __future__ import annotations

from pathlib import Path

import duckdb

from mlmon.stores.duckdb.schema import EVENT_TABLES, STORE_SCHEMA_VERSION, ensure_schema, quote


def test_an_older_store_gains_the_quality_column_of_kind_changes(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    ensure_schema(con)
    table = EVENT_TABLES["prediction"]
    con.execute(f"ALTER TABLE {table} DROP COLUMN {quote('mlmon.quality.kind_changed_fields')}")
    con.execute("UPDATE mlmon_meta SET value = '2' WHERE key = 'store_schema_version'")
    con.close()

    con = duckdb.connect(str(path))
    ensure_schema(con)
    columns = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
    version = con.execute("SELECT value FROM mlmon_meta WHERE key = 'store_schema_version'").fetchone()
    con.close()
    assert "mlmon.quality.kind_changed_fields" in columns
    assert version == (str(STORE_SCHEMA_VERSION),)
