"""The embedded store: a DuckDB file laid out by :mod:`mlmon.stores.duckdb_schema`.

A window's statistics come from ONE SQL scan: per numeric column DuckDB's
``histogram(col, boundaries)`` (measured: ~60 ms per column per million rows
on 2 cores, as fast as numpy's searchsorted without copying the column out),
plus count/min/max/sums; per categorical column ``histogram(col)`` (counts per
category), bounded to the reference's categories plus the most frequent
unseen ones before it leaves this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from mlmon.documents import METRIC_FIELDS, MetricDocument
from mlmon.reference import ReferenceProfile
from mlmon.stats import CategoryStats, NumericStats, WindowStatistics
from mlmon.stores.base import StoreError, WindowQuery, flatten_source, nest
from mlmon.stores.duckdb_schema import EVENT_TABLES, METRICS_TABLE, ensure_schema, quote

PREDICTIONS = EVENT_TABLES["prediction"]
REFERENCES_TABLE = "reference_profiles"
CHECKPOINTS_TABLE = "mlmon_checkpoints"
_FIELD_PREFIXES = ("mlmon.features.numeric.", "mlmon.features.categorical.")
_PREDICTION_FIELDS = ("mlmon.prediction.score", "mlmon.prediction.value", "mlmon.prediction.label")

# Tables of the jobs' own documents (not events): kept here until duckdb_schema adopts them.
_JOB_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {REFERENCES_TABLE} (
        {quote('reference.id')} VARCHAR PRIMARY KEY,
        {quote('mlmon.model.name')} VARCHAR NOT NULL,
        {quote('mlmon.model.version')} VARCHAR NOT NULL,
        {quote('reference.created_at')} TIMESTAMPTZ NOT NULL,
        {quote('reference.source')} VARCHAR,
        {quote('reference.rows')} BIGINT,
        document JSON NOT NULL)""",
    f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} (key VARCHAR PRIMARY KEY, window_end TIMESTAMPTZ NOT NULL)",
)


class DuckDBStore:
    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = str(path)
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as err:
            raise StoreError(f"cannot open DuckDB store {self.path}: {err}") from err
        if not read_only:
            ensure_schema(self.con)
            for ddl in _JOB_DDL:
                self.con.execute(ddl)

    # --- statistics ------------------------------------------------------------------

    def _columns(self) -> set[str]:
        rows = self.con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                [PREDICTIONS]).fetchall()
        return {r[0] for r in rows}

    def _where(self, model: str, start: datetime, end: datetime, version: str | None,
               segment: tuple[str, str] | None, columns: set[str]) -> tuple[str, list[Any]]:
        clauses = [f"{quote('mlmon.model.name')} = ?", f"{quote('@timestamp')} >= ?", f"{quote('@timestamp')} < ?"]
        params: list[Any] = [model, start, end]
        if version is not None:
            clauses.append(f"{quote('mlmon.model.version')} = ?")
            params.append(version)
        if segment is not None:
            column = f"mlmon.segment.{segment[0]}"
            if column not in columns:
                clauses.append("FALSE")  # no event ever carried this segment
            else:
                clauses.append(f"{quote(column)} = ?")
                params.append(segment[1])
        return " AND ".join(clauses), params

    def window_statistics(self, query: WindowQuery) -> WindowStatistics:
        columns = self._columns()
        where, params = self._where(query.model, query.start, query.end, query.version, query.segment, columns)
        selects = ["count(*)"]
        named: dict[str, Any] = {}
        numeric = [f for f in query.numeric if f in columns]
        categorical = [f for f in query.categorical if f in columns]
        for i, f in enumerate(numeric):
            edges = query.numeric[f]
            col = quote(f)
            # histogram() bins are (b[i-1], b[i]]; boundaries one ulp below our edges give [e[i-1], e[i]).
            named[f"b{i}"] = [float(np.nextafter(e, -np.inf)) for e in edges]
            selects += [f"histogram({col}, $b{i})", f"count({col})", f"min({col})", f"max({col})",
                        f"sum({col})", f"sum({col} * {col})",
                        f"sum({col}) FILTER (WHERE {col} < {edges[0]!r})",
                        f"sum({col}) FILTER (WHERE {col} >= {edges[-1]!r})"]
        for f in categorical:
            col = quote(f)
            selects += [f"histogram({col})", f"count({col})"]
        # Positional parameters and named ones cannot mix in DuckDB: inline the filter values as named too.
        for j, p in enumerate(params):
            named[f"w{j}"] = p
        where_named = where
        for j in range(len(params)):
            where_named = where_named.replace("?", f"$w{j}", 1)
        sql = f"SELECT {', '.join(selects)} FROM {PREDICTIONS} WHERE {where_named}"
        try:
            row = self.con.execute(sql, named).fetchone()
        except duckdb.Error as err:
            raise StoreError(f"window statistics query failed: {err}") from err
        assert row is not None
        rows = int(row[0])
        out_num: dict[str, NumericStats] = {}
        out_cat: dict[str, CategoryStats] = {}
        pos = 1
        for f in numeric:
            hist, count, lo, hi, s, s2, below, above = row[pos:pos + 8]
            pos += 8
            out_num[f] = _numeric(query.numeric[f], named[f"b{numeric.index(f)}"], hist, rows, count, lo, hi,
                                  s, s2, below, above)
        for f in categorical:
            hist, count = row[pos:pos + 2]
            pos += 2
            out_cat[f] = _categories(hist or {}, query.categorical[f], query.max_unseen, rows - int(count))
        for f in query.numeric:
            out_num.setdefault(f, _absent_numeric(query.numeric[f], rows))
        for f in query.categorical:
            out_cat.setdefault(f, CategoryStats(missing=rows))
        return WindowStatistics(rows=rows, numeric=out_num, categorical=out_cat)

    def quantiles(self, model: str, start: datetime, end: datetime, fields: Sequence[str],
                  levels: Sequence[float], version: str | None = None) -> dict[str, list[float]]:
        columns = self._columns()
        present = [f for f in fields if f in columns]
        if not present:
            return {}
        where, params = self._where(model, start, end, version, None, columns)
        # quantile_disc returns observed values, like numpy's inverted_cdf, so ties give repeated (dropped) edges.
        sel = ", ".join(f"quantile_disc({quote(f)}, $levels)" for f in present)
        named: dict[str, Any] = {"levels": [float(q) for q in levels]}
        for j, p in enumerate(params):
            named[f"w{j}"] = p
            where = where.replace("?", f"$w{j}", 1)
        row = self.con.execute(f"SELECT {sel} FROM {PREDICTIONS} WHERE {where}", named).fetchone()
        assert row is not None
        return {f: [float(v) for v in (row[i] or [])] for i, f in enumerate(present)}

    def fields(self, model: str, version: str | None = None) -> list[str]:
        return sorted(c for c in self._columns() if c.startswith(_FIELD_PREFIXES) or c in _PREDICTION_FIELDS)

    # --- documents -------------------------------------------------------------------

    def write_metrics(self, docs: Sequence[MetricDocument]) -> None:
        if not docs:
            return
        names = list(METRIC_FIELDS)
        rows = []
        for d in docs:
            flat = flatten_source(d.to_source())
            rows.append([_sql_value(flat.get(n), METRIC_FIELDS[n]) for n in names])
        cols = ", ".join(quote(n) for n in names)
        marks = ", ".join("?" for _ in names)
        try:
            self.con.execute("BEGIN")
            self.con.executemany(f"INSERT OR REPLACE INTO {METRICS_TABLE} ({cols}) VALUES ({marks})", rows)
            self.con.execute("COMMIT")
        except duckdb.Error as err:
            self.con.execute("ROLLBACK")
            raise StoreError(f"writing {len(docs)} metric documents failed (none written): {err}") from err

    def read_metrics(self, model: str | None = None, limit: int = 1000,
                     start: datetime | None = None, end: datetime | None = None) -> list[dict[str, Any]]:
        names = list(METRIC_FIELDS)
        clauses, params = [], []
        if model is not None:
            clauses.append(f"{quote('mlmon.model.name')} = ?")
            params.append(model)
        if start is not None:
            clauses.append(f"{quote('window.end')} > ?")
            params.append(start)
        if end is not None:
            clauses.append(f"{quote('window.start')} < ?")
            params.append(end)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (f"SELECT {', '.join(quote(n) for n in names)} FROM {METRICS_TABLE} {where} "
               f"ORDER BY {quote('window.end')} DESC, {quote('metric.feature')}, {quote('metric.name')} LIMIT {int(limit)}")
        out = []
        for row in self.con.execute(sql, params).fetchall():
            flat = {n: _py_value(v, METRIC_FIELDS[n]) for n, v in zip(names, row)}
            out.append(nest(flat))
        return out

    def put_reference(self, profile: ReferenceProfile) -> str:
        doc = profile.to_document()
        self.con.execute(
            f"INSERT OR REPLACE INTO {REFERENCES_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
            [profile.id, profile.model, profile.version, profile.created_at, profile.source, profile.rows,
             json.dumps(doc)])
        return profile.id

    def get_reference(self, model: str, version: str | None = None,
                      reference_id: str | None = None) -> ReferenceProfile | None:
        clauses, params = [f"{quote('mlmon.model.name')} = ?"], [model]
        if reference_id is not None:
            clauses.append(f"{quote('reference.id')} = ?")
            params.append(reference_id)
        if version is not None:
            clauses.append(f"{quote('mlmon.model.version')} = ?")
            params.append(version)
        row = self.con.execute(
            f"SELECT document FROM {REFERENCES_TABLE} WHERE {' AND '.join(clauses)} "
            f"ORDER BY {quote('reference.created_at')} DESC LIMIT 1", params).fetchone()
        return ReferenceProfile.from_document(json.loads(row[0])) if row else None

    def list_references(self, model: str | None = None) -> list[dict[str, Any]]:
        where, params = ("", []) if model is None else (f"WHERE {quote('mlmon.model.name')} = ?", [model])
        rows = self.con.execute(
            f"SELECT {quote('reference.id')}, {quote('mlmon.model.name')}, {quote('mlmon.model.version')}, "
            f"{quote('reference.created_at')}, {quote('reference.source')}, {quote('reference.rows')} "
            f"FROM {REFERENCES_TABLE} {where} ORDER BY {quote('reference.created_at')} DESC", params).fetchall()
        return [{"id": r[0], "model": r[1], "version": r[2], "created_at": r[3].astimezone(timezone.utc).isoformat(),
                 "source": r[4], "rows": r[5]} for r in rows]

    def get_checkpoint(self, key: str) -> datetime | None:
        row = self.con.execute(f"SELECT window_end FROM {CHECKPOINTS_TABLE} WHERE key = ?", [key]).fetchone()
        return row[0].astimezone(timezone.utc) if row else None

    def set_checkpoint(self, key: str, window_end: datetime) -> None:
        self.con.execute(f"INSERT OR REPLACE INTO {CHECKPOINTS_TABLE} VALUES (?, ?)", [key, window_end])

    def close(self) -> None:
        self.con.close()


def _numeric(edges: tuple[float, ...], boundaries: list[float], hist: Mapping[float, int] | None, rows: int,
             count: int, lo: float | None, hi: float | None, s: float | None, s2: float | None,
             below: float | None, above: float | None) -> NumericStats:
    index = {b: i for i, b in enumerate(boundaries)}
    counts = [0] * (len(edges) + 1)
    for key, c in (hist or {}).items():
        counts[index.get(key, len(edges))] += int(c)  # keys past the last boundary: the upper open bin
    return NumericStats(edges=edges, counts=tuple(counts), missing=rows - int(count), minimum=lo, maximum=hi,
                        total=float(s or 0.0), total_sq=float(s2 or 0.0), below_sum=float(below or 0.0),
                        above_sum=float(above or 0.0))


def _absent_numeric(edges: tuple[float, ...], rows: int) -> NumericStats:
    return NumericStats(edges=edges, counts=(0,) * (len(edges) + 1), missing=rows, minimum=None, maximum=None,
                        total=0.0, total_sq=0.0)


def _categories(hist: Mapping[str, int], known: tuple[str, ...], max_unseen: int, missing: int) -> CategoryStats:
    known_set = set(known)
    counts = {k: int(hist.get(k, 0)) for k in known}
    unseen = sorted(((k, int(c)) for k, c in hist.items() if k not in known_set), key=lambda kv: (-kv[1], kv[0]))
    counts.update(unseen[:max_unseen])
    return CategoryStats(counts=counts, other=sum(c for _, c in unseen[max_unseen:]), missing=missing)


def _sql_value(value: Any, es_type: str) -> Any:
    if value is None:
        return None
    if es_type == "date":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if es_type == "flattened":
        return json.dumps(value, default=_json_default)
    if es_type == "double":
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _py_value(value: Any, es_type: str) -> Any:
    if value is None:
        return None
    if es_type == "date":
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if es_type == "flattened":
        return json.loads(value) if isinstance(value, str) else value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")
