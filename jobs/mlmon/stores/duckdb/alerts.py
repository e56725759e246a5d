"""What the alert adapter needs from a store, and its embedded (DuckDB) implementation.

The engine is pure; this is the thin edge that reads the windows of the series it
judges, the engine's memory (the newest alert per rule and series) and writes
alert documents with their outbox entries. Writes are idempotent: an alert whose
deterministic id is already stored is skipped, so re-running a round or a
backfill never notifies twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from mlmon.core.alerts import Alert, Delivery, LastNotification, SeriesKey, SeriesWindow
from mlmon.core.alert_schema import ALERT_FIELDS, ALERTS_TABLE, OUTBOX_FIELDS, OUTBOX_PAYLOAD, OUTBOX_TABLE
from mlmon.core.documents import METRIC_FIELDS, MetricDocument, Threshold, iso
from mlmon.core.queries import flatten_source, nest
from mlmon.core.windows import EPOCH
from mlmon.stores.duckdb.schema import METRICS_TABLE, quote, sql_type
from mlmon.stores.protocols import StoreError


ALERTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {ALERTS_TABLE} ("
    + ", ".join(f"{quote(n)} {sql_type(t)}" for n, t in ALERT_FIELDS.items())
    + f", PRIMARY KEY ({quote('alert.id')}))"
)
_OUTBOX_COLUMNS = [*OUTBOX_FIELDS, OUTBOX_PAYLOAD]
OUTBOX_DDL = (
    f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} ("
    + ", ".join(f"{quote(n)} {sql_type(t)}" for n, t in OUTBOX_FIELDS.items())
    + f", {quote(OUTBOX_PAYLOAD)} JSON"
    + f", PRIMARY KEY ({quote('delivery.alert_id')}, {quote('delivery.channel')}))"
)
#: The columns a series is told apart by, in SeriesKey's field order.
_SERIES_COLUMNS = ("mlmon.model.name", "mlmon.model.version", "metric.family", "metric.name", "metric.feature",
                   "metric.class", "metric.segment.field", "metric.segment.value")


class DuckDBAlertStore:
    """Alert I/O on the embedded store's DuckDB connection (tables ``metrics``, ``alerts``, ``alert_outbox``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        con.execute(ALERTS_DDL)
        con.execute(OUTBOX_DDL)

    def series_windows(self, model: str, model_version: str, families: Sequence[str], since: datetime,
                       until: datetime, skip: Collection[str] = frozenset()) -> list[SeriesWindow]:
        """Status per series and window of the model version's ``families``, windows ending in [since, until],
        but for the documents whose id is in ``skip`` (an anti-join: a backfill's batch skips ~10^5 ids)."""
        if not families:
            return []
        # Times as epoch microseconds: DuckDB's conversion of each TIMESTAMPTZ to a datetime cost ~3/4 of the
        # query; a round's rows share a few hundred distinct times, each converted once (_utc).
        times = [f"epoch_us({quote(c)})" for c in ("window.start", "window.end", "job.computed_at")]
        cols = [*map(quote, _SERIES_COLUMNS), *times[:2], quote("metric.status"), times[2], quote("metric.id")]
        sql = (f"SELECT {', '.join(cols)} FROM {METRICS_TABLE} "
               f"WHERE {quote('mlmon.model.name')} = ? AND {quote('mlmon.model.version')} = ? "
               f"AND list_contains(?, {quote('metric.family')}) "
               f"AND {quote('window.end')} >= ? AND {quote('window.end')} <= ?")
        params: list[Any] = [model, model_version, list(families), since, until]
        if skip:
            sql += f" AND {quote('metric.id')} NOT IN (SELECT id FROM _mlmon_skip_ids)"
        rows = self._fetch(sql + f" ORDER BY {quote('window.end')}", params,
                           {"_mlmon_skip_ids": pa.table({"id": pa.array(list(skip), pa.string())})} if skip else {})
        utc = _utc_memo()
        keys: dict[tuple[Any, ...], SeriesKey] = {}  # one key per series, shared by its windows

        def key(row: tuple[Any, ...]) -> SeriesKey:
            found = keys.get(row[:8])
            if found is None:
                found = keys[row[:8]] = SeriesKey(*(v or "" for v in row[:8]))
            return found
        return [SeriesWindow(key(row), utc(row[8]), utc(row[9]), row[10],
                             utc(row[11] if row[11] is not None else row[9]), row[12]) for row in rows]

    def metric_documents(self, ids: Iterable[str]) -> list[MetricDocument]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        cols = list(METRIC_FIELDS)
        rows = self._fetch(f"SELECT {', '.join(quote(c) for c in cols)} FROM {METRICS_TABLE} "
                           f"WHERE list_contains(?, {quote('metric.id')})", [wanted])
        return [metric_from_row(dict(zip(cols, row))) for row in rows]

    def last_notifications(self, series_ids: Iterable[str]) -> dict[str, LastNotification]:
        ids = sorted(set(series_ids))
        if not ids:
            return {}
        rows = self._fetch(
            f"SELECT {quote('alert.series_id')}, {quote('alert.action')}, {quote('window.end')}, "
            f"{quote('alert.status.new')} FROM {ALERTS_TABLE} "
            f"WHERE {quote('alert.source')} = 'mlmon-jobs' AND list_contains(?, {quote('alert.series_id')}) "
            f"QUALIFY row_number() OVER (PARTITION BY {quote('alert.series_id')} "
            f"ORDER BY {quote('window.end')} DESC, {quote('alert.fired_at')} DESC) = 1",
            [ids])
        return {sid: LastNotification(action=action, window_end=end, status=status)
                for sid, action, end, status in rows}

    def write_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        return self.write_alerts_and_outbox(alerts, ())

    def write_alerts_and_outbox(self, alerts: Sequence[Alert], deliveries: Sequence[Delivery]) -> list[Alert]:
        """Alerts not stored yet, and the deliveries of those, in one transaction: a crash stores both or neither."""
        if not alerts:
            return []
        ids = [a.id for a in alerts]
        existing = {r[0] for r in self._fetch(
            f"SELECT {quote('alert.id')} FROM {ALERTS_TABLE} WHERE list_contains(?, {quote('alert.id')})", [ids])}
        fresh = [a for a in {a.id: a for a in alerts}.values() if a.id not in existing]
        if not fresh:
            return []
        fresh_ids = {a.id for a in fresh}
        queued = [d for d in deliveries if d.alert_id in fresh_ids]
        cols = list(ALERT_FIELDS)
        try:
            self.con.begin()
            self.con.executemany(
                f"INSERT INTO {ALERTS_TABLE} ({', '.join(quote(c) for c in cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})",
                [[flatten_source(a.to_source()).get(c) for c in cols] for a in fresh])
            if queued:
                self._upsert_deliveries(queued, insert_only=True)
            self.con.commit()
        except duckdb.Error as err:
            self.con.rollback()
            raise StoreError(f"writing {len(fresh)} alerts to {ALERTS_TABLE} failed: {err}") from err
        return fresh

    def claim_deliveries(self, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries due at ``now``, oldest first, each held until ``until`` (its lease); an entry
        behind an earlier one of its series and channel that is not due (in backoff, or leased) waits for it."""
        cols = _OUTBOX_COLUMNS
        state, due_at, series, channel, end, created = (
            quote(c) for c in ("delivery.state", "delivery.next_attempt_at", "delivery.series_id", "delivery.channel",
                               "delivery.window_end", "delivery.created_at"))
        try:
            self.con.begin()
            rows = self.con.execute(
                f"SELECT {', '.join(f'o.{quote(c)}' for c in cols)} FROM {OUTBOX_TABLE} o "
                f"WHERE o.{state} = 'pending' AND o.{due_at} <= ? "
                f"AND NOT EXISTS (SELECT 1 FROM {OUTBOX_TABLE} b WHERE b.{state} = 'pending' AND b.{due_at} > ? "
                f"AND b.{series} = o.{series} AND b.{channel} = o.{channel} "
                f"AND (b.{end}, b.{created}) < (o.{end}, o.{created})) "
                f"ORDER BY o.{created}, o.{end}, o.{quote('delivery.alert_id')}, o.{channel} LIMIT ?",
                [now, now, limit]).fetchall()
            taken = [delivery_from_row(dict(zip(cols, row))) for row in rows]
            if taken:
                self.con.executemany(
                    f"UPDATE {OUTBOX_TABLE} SET {quote('delivery.next_attempt_at')} = ? "
                    f"WHERE {quote('delivery.alert_id')} = ? AND {quote('delivery.channel')} = ?",
                    [[until, d.alert_id, d.channel] for d in taken])
            self.con.commit()
        except duckdb.Error as err:
            self.con.rollback()
            raise StoreError(f"taking due deliveries from {OUTBOX_TABLE} failed: {err}") from err
        return taken

    def record_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            self.con.begin()
            self._upsert_deliveries(deliveries, insert_only=False)
            self.con.commit()
        except duckdb.Error as err:
            self.con.rollback()
            raise StoreError(f"recording {len(deliveries)} deliveries in {OUTBOX_TABLE} failed: {err}") from err

    def deliveries(self, state: str | None = None) -> list[Delivery]:
        """Outbox entries (of one state), oldest first: for reports and tests."""
        where = f"WHERE {quote('delivery.state')} = ?" if state else ""
        rows = self._fetch(f"SELECT {', '.join(quote(c) for c in _OUTBOX_COLUMNS)} FROM {OUTBOX_TABLE} {where} "
                           f"ORDER BY {quote('delivery.created_at')}, {quote('delivery.window_end')}, "
                           f"{quote('delivery.alert_id')}", [state] if state else [])
        return [delivery_from_row(dict(zip(_OUTBOX_COLUMNS, row))) for row in rows]

    def recent_alerts(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        cols = list(ALERT_FIELDS)
        where = f"WHERE {quote('mlmon.model.name')} = ?" if model else ""
        rows = self._fetch(
            f"SELECT {', '.join(quote(c) for c in cols)} FROM {ALERTS_TABLE} {where} "
            f"ORDER BY {quote('@timestamp')} DESC, {quote('alert.fired_at')} DESC LIMIT ?",
            [model, limit] if model else [limit])
        return [nest({c: _iso_if_date(v) for c, v in zip(cols, row)}) for row in rows]

    def _upsert_deliveries(self, deliveries: Sequence[Delivery], *, insert_only: bool) -> None:
        verb = "INSERT OR IGNORE" if insert_only else "INSERT OR REPLACE"
        self.con.executemany(
            f"{verb} INTO {OUTBOX_TABLE} ({', '.join(quote(c) for c in _OUTBOX_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _OUTBOX_COLUMNS)})",
            [[row[c] for c in _OUTBOX_COLUMNS] for row in map(delivery_row, deliveries)])

    def _fetch(self, sql: str, params: list[Any], tables: Mapping[str, pa.Table] | None = None) -> list[tuple[Any, ...]]:
        """Rows of ``sql``; ``tables`` are registered for the query on a cursor of its own (never left behind)."""
        cur = self.con.cursor() if tables else self.con
        try:
            for name, table in (tables or {}).items():
                cur.register(name, table)
            return cur.execute(sql, params).fetchall()
        except duckdb.Error as err:
            raise StoreError(f"alert query on the embedded store failed: {err}") from err
        finally:
            if tables:
                cur.close()


def _utc_memo() -> Callable[[int], datetime]:
    """Epoch microseconds -> UTC datetime, each distinct value converted once per call site."""
    seen: dict[int, datetime] = {}

    def utc(us: int) -> datetime:
        found = seen.get(us)
        if found is None:
            found = seen[us] = EPOCH + timedelta(microseconds=us)
        return found
    return utc


def delivery_row(d: Delivery) -> dict[str, Any]:
    """An outbox entry in its flat stored form (OUTBOX_FIELDS names, payload as JSON text)."""
    return {"delivery.alert_id": d.alert_id, "delivery.channel": d.channel, "delivery.model": d.model,
            "delivery.series_id": d.series_id, "delivery.window_end": d.window_end, "delivery.state": d.state,
            "delivery.attempts": d.attempts, "delivery.created_at": d.created_at, "delivery.expires_at": d.expires_at,
            "delivery.next_attempt_at": d.next_attempt_at, "delivery.delivered_at": d.delivered_at,
            "delivery.last_error": d.last_error, OUTBOX_PAYLOAD: json.dumps(d.payload, sort_keys=True)}


def delivery_from_row(row: dict[str, Any]) -> Delivery:
    """An outbox entry from its flat stored form (a DuckDB row or a flattened Elasticsearch source)."""
    payload = row[OUTBOX_PAYLOAD]
    delivered_at = row.get("delivery.delivered_at")
    return Delivery(
        alert_id=row["delivery.alert_id"], channel=row["delivery.channel"], model=row["delivery.model"],
        series_id=row["delivery.series_id"], window_end=_as_datetime(row["delivery.window_end"]),
        payload=json.loads(payload) if isinstance(payload, str) else dict(payload),
        created_at=_as_datetime(row["delivery.created_at"]), expires_at=_as_datetime(row["delivery.expires_at"]),
        next_attempt_at=_as_datetime(row["delivery.next_attempt_at"]), state=row["delivery.state"],
        attempts=int(row.get("delivery.attempts") or 0), last_error=row.get("delivery.last_error") or "",
        delivered_at=None if delivered_at is None else _as_datetime(delivered_at))


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
