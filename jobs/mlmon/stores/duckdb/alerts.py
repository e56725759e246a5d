"""What the alert adapter needs from a store, and its embedded (DuckDB) implementation.

The engine is pure; this is the thin edge that reads metric history and the
engine's memory (the newest alert per rule and series) and writes alert
documents. Writes are idempotent: an alert whose deterministic id is already
stored is skipped, so re-running a round or a backfill never notifies twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import duckdb

from mlmon.core.alerts import Alert, LastNotification
from mlmon.core.alert_schema import ALERT_FIELDS, ALERTS_TABLE
from mlmon.core.documents import METRIC_FIELDS, MetricDocument, Threshold, iso
from mlmon.core.queries import flatten_source, nest
from mlmon.stores.duckdb.schema import METRICS_TABLE, quote, sql_type


ALERTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {ALERTS_TABLE} ("
    + ", ".join(f"{quote(n)} {sql_type(t)}" for n, t in ALERT_FIELDS.items())
    + f", PRIMARY KEY ({quote('alert.id')}))"
)


class DuckDBAlertStore:
    """Alert I/O on the embedded store's DuckDB connection (tables ``metrics`` and ``alerts``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        con.execute(ALERTS_DDL)

    def metric_history(self, model: str, model_version: str, since: datetime) -> list[MetricDocument]:
        cols = list(METRIC_FIELDS)
        rows = self.con.execute(
            f"SELECT {', '.join(quote(c) for c in cols)} FROM {METRICS_TABLE} "
            f"WHERE {quote('mlmon.model.name')} = ? AND {quote('mlmon.model.version')} = ? "
            f"AND {quote('window.end')} >= ? ORDER BY {quote('window.end')}",
            [model, model_version, since]).fetchall()
        return [metric_from_row(dict(zip(cols, row))) for row in rows]

    def last_notifications(self, series_ids: Iterable[str]) -> dict[str, LastNotification]:
        ids = sorted(set(series_ids))
        if not ids:
            return {}
        rows = self.con.execute(
            f"SELECT {quote('alert.series_id')}, {quote('alert.action')}, {quote('window.end')}, "
            f"{quote('alert.status.new')} FROM {ALERTS_TABLE} "
            f"WHERE {quote('alert.source')} = 'mlmon-jobs' AND list_contains(?, {quote('alert.series_id')}) "
            f"QUALIFY row_number() OVER (PARTITION BY {quote('alert.series_id')} "
            f"ORDER BY {quote('window.end')} DESC, {quote('alert.fired_at')} DESC) = 1",
            [ids]).fetchall()
        return {sid: LastNotification(action=action, window_end=end, status=status)
                for sid, action, end, status in rows}

    def write_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        if not alerts:
            return []
        ids = [a.id for a in alerts]
        existing = {r[0] for r in self.con.execute(
            f"SELECT {quote('alert.id')} FROM {ALERTS_TABLE} WHERE list_contains(?, {quote('alert.id')})",
            [ids]).fetchall()}
        fresh = [a for a in {a.id: a for a in alerts}.values() if a.id not in existing]
        if fresh:
            cols = list(ALERT_FIELDS)
            self.con.executemany(
                f"INSERT INTO {ALERTS_TABLE} ({', '.join(quote(c) for c in cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})",
                [[flatten_source(a.to_source()).get(c) for c in cols] for a in fresh])
        return fresh


    def recent_alerts(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        cols = list(ALERT_FIELDS)
        where = f"WHERE {quote('mlmon.model.name')} = ?" if model else ""
        rows = self.con.execute(
            f"SELECT {', '.join(quote(c) for c in cols)} FROM {ALERTS_TABLE} {where} "
            f"ORDER BY {quote('@timestamp')} DESC, {quote('alert.fired_at')} DESC LIMIT ?",
            [model, limit] if model else [limit]).fetchall()
        return [nest({c: _iso_if_date(v) for c, v in zip(cols, row)}) for row in rows]


def _iso_if_date(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def metric_from_row(row: dict[str, Any]) -> MetricDocument:
    """A metric document from its flat stored form (METRIC_FIELDS names; a DuckDB row or a flattened ES source)."""
    warning, alert = row.get("metric.threshold.warning"), row.get("metric.threshold.alert")
    direction = row.get("metric.threshold.direction")
    threshold = None if direction is None else Threshold(
        warning=warning, alert=alert, direction=direction, source=row.get("metric.threshold.source") or "")
    details = row.get("metric.details")
    return MetricDocument(
        model=row["mlmon.model.name"], model_version=row["mlmon.model.version"], family=row["metric.family"],
        metric=row["metric.name"], window_start=_as_datetime(row["window.start"]),
        window_end=_as_datetime(row["window.end"]),
        value=row["metric.value"], status=row["metric.status"], n_current=row.get("n.current") or 0,
        run_id=row.get("job.run_id") or "", code_version=row.get("job.code_version") or "",
        method=row.get("metric.method") or "", feature=row.get("metric.feature") or "",
        class_label=row.get("metric.class") or "", segment_field=row.get("metric.segment.field") or "",
        segment_value=row.get("metric.segment.value") or "", threshold=threshold,
        n_reference=row.get("n.reference"), reference_id=row.get("reference.id") or "",
        maturity=row.get("metric.maturity"),
        details=json.loads(details) if isinstance(details, str) else dict(details or {}),
        computed_at=_as_datetime(row.get("job.computed_at") or row["window.end"]),
    )


def _as_datetime(value: Any) -> datetime:
    """Stored dates come back as datetimes (DuckDB) or ISO 8601 strings (Elasticsearch)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
