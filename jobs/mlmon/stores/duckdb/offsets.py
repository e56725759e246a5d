"""Where ``mlmon ingest --follow`` stopped in each file (what Logstash calls its sincedb).

One row per content of a followed file: the file's name, the inode it was read
through, a fingerprint of its first line (so a file truncated and rewritten in
place, or a rotated copy under another inode, is told apart or recognised) and the
byte offset just past the last line stored. The follower writes a row in the same
transaction as the batch it covers, so an offset never runs ahead of the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

TABLE = "ingest_offsets"
#: Contents remembered per file, newest first: a rotation scheme keeps far fewer copies.
KEPT_PER_PATH = 64
DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    path VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    inode UBIGINT NOT NULL,
    "offset" UBIGINT NOT NULL,
    updated TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (path, fingerprint))"""


@dataclass(frozen=True)
class Offset:
    """How far one content of a file was stored: its inode then, and the byte offset."""

    inode: int
    offset: int


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def load(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Offset]]:
    """path -> fingerprint -> where it stopped, for every followed file."""
    ensure_table(con)
    found: dict[str, dict[str, Offset]] = {}
    for path, fingerprint, inode, offset in con.execute(
            f'SELECT path, fingerprint, inode, "offset" FROM {TABLE}').fetchall():
        found.setdefault(path, {})[fingerprint] = Offset(int(inode), int(offset))
    return found


def save(con: duckdb.DuckDBPyConnection, path: str, offsets: Mapping[str, Offset]) -> None:
    """Record ``offsets`` (fingerprint -> where it stopped) of ``path``, keeping the newest
    ``KEPT_PER_PATH`` contents of it.

    Runs inside the caller's transaction (the batch these offsets cover). An offset
    never moves back: a batch re-read after a crash records no less than was stored.
    """
    ensure_table(con)
    for fingerprint, at in offsets.items():
        con.execute(f'INSERT INTO {TABLE} (path, fingerprint, inode, "offset") VALUES (?, ?, ?, ?) '
                    f'ON CONFLICT (path, fingerprint) DO UPDATE SET inode = excluded.inode, '
                    f'"offset" = greatest({TABLE}."offset", excluded."offset"), updated = now()',
                    [path, fingerprint, at.inode, at.offset])
    con.execute(f"DELETE FROM {TABLE} WHERE path = ? AND fingerprint NOT IN (SELECT fingerprint FROM {TABLE} "
                f"WHERE path = ? ORDER BY updated DESC, fingerprint LIMIT {KEPT_PER_PATH})", [path, path])
