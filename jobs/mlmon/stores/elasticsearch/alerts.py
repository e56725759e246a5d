"""Alert I/O on Elasticsearch: series windows from ``mlmon-metrics``, alerts into ``mlmon-alerts``,
their deliveries in ``mlmon-outbox``.

Alerts are created with ``op_type: create`` under their deterministic id, so a
re-run's duplicate is answered 409 by Elasticsearch itself and skipped: the
write is idempotent even when two job processes race. There is no transaction
across the two indices, so the outbox entries of alerts not stored yet are
created first (409 when already queued), then the alerts: a crash in between
leaves an entry whose alert the next round writes, never an alert never queued.
Taking due entries is a conditional write (``if_seq_no``/``if_primary_term``):
of two rounds taking the same entry, one gets 409 and leaves it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from mlmon.core.alerts import Alert, Delivery, LastNotification, SeriesKey, SeriesWindow
from mlmon.core.alert_schema import OUTBOX_INDEX
from mlmon.core.documents import ALERTS_INDEX, METRICS_INDEX, MetricDocument, iso
from mlmon.core.queries import flatten_source
from mlmon.stores.duckdb.alerts import delivery_from_row, delivery_row, metric_from_row
from mlmon.stores.protocols import StoreError

PAGE_SIZE = 1000
#: What the engine reads of a metric document for the context of its rules.
SERIES_WINDOW_SOURCE = ["mlmon.model.name", "mlmon.model.version", "metric.family", "metric.name", "metric.feature",
                        "metric.class", "metric.segment.field", "metric.segment.value", "window.start", "window.end",
                        "metric.status", "job.computed_at", "metric.id"]


def series_windows_search(model: str, model_version: str, families: Sequence[str], since: datetime,
                          until: datetime) -> dict[str, Any]:
    """Search body: a model version's metric windows of ``families`` ending in [since, until], oldest first."""
    return {
        "size": PAGE_SIZE,
        "query": {"bool": {"filter": [
            {"term": {"mlmon.model.name": model}},
            {"term": {"mlmon.model.version": model_version}},
            {"terms": {"metric.family": list(families)}},
            {"range": {"window.end": {"gte": iso(since), "lte": iso(until)}}},
        ]}},
        "sort": [{"window.end": "asc"}, {"metric.id": "asc"}],
        "_source": SERIES_WINDOW_SOURCE,
    }


def metric_documents_search(ids: Sequence[str]) -> dict[str, Any]:
    return {"size": len(ids), "query": {"terms": {"metric.id": list(ids)}}}


def recent_alerts_search(model: str | None, limit: int) -> dict[str, Any]:
    """Newest alert documents, optionally of one model."""
    query: dict[str, Any] = {"term": {"mlmon.model.name": model}} if model else {"match_all": {}}
    return {"query": query, "size": limit, "sort": [{"@timestamp": {"order": "desc"}}]}


def stored_alerts_search(ids: Sequence[str]) -> dict[str, Any]:
    """Search body: which of these alert ids are stored already."""
    return {"size": len(ids), "query": {"ids": {"values": list(ids)}}, "_source": False}


def due_deliveries_search(now: datetime, limit: int) -> dict[str, Any]:
    """Search body: pending outbox entries due at ``now``, oldest first, with their versions for a conditional take."""
    return {
        "size": limit,
        "query": {"bool": {"filter": [
            {"term": {"delivery.state": "pending"}},
            {"range": {"delivery.next_attempt_at": {"lte": iso(now)}}},
        ]}},
        "sort": [{"delivery.created_at": "asc"}, {"delivery.window_end": "asc"}, {"delivery.alert_id": "asc"},
                 {"delivery.channel": "asc"}],
        "seq_no_primary_term": True,
    }


def held_back_search(series_ids: Sequence[str], now: datetime) -> dict[str, Any]:
    """Search body: per series, its earliest pending outbox entry not due at ``now`` (in backoff, or leased):
    the later entries of the series wait behind it. Collapsed per series over every channel (one exists today)."""
    return {
        "size": len(series_ids),
        "query": {"bool": {"filter": [
            {"term": {"delivery.state": "pending"}},
            {"range": {"delivery.next_attempt_at": {"gt": iso(now)}}},
            {"terms": {"delivery.series_id": list(series_ids)}},
        ]}},
        "collapse": {"field": "delivery.series_id"},
        "sort": [{"delivery.window_end": "asc"}, {"delivery.created_at": "asc"}],
        "_source": ["delivery.series_id", "delivery.window_end", "delivery.created_at"],
    }


def last_notifications_search(series_ids: Sequence[str]) -> dict[str, Any]:
    """Search body: the newest jobs-engine alert per ``alert.series_id`` (field collapsing)."""
    return {
        "size": len(series_ids),
        "query": {"bool": {"filter": [
            {"term": {"alert.source": "mlmon-jobs"}},
            {"terms": {"alert.series_id": list(series_ids)}},
        ]}},
        "collapse": {"field": "alert.series_id"},
        "sort": [{"window.end": "desc"}, {"alert.fired_at": "desc"}],
        "_source": ["alert.series_id", "alert.action", "alert.status.new", "window.end"],
    }


def delivery_source(d: Delivery) -> dict[str, Any]:
    """An outbox entry as an Elasticsearch document (dates as ISO 8601, the payload as an object)."""
    row = delivery_row(d)
    row["delivery.payload"] = dict(d.payload)
    source: dict[str, Any] = {}
    for name, value in row.items():
        _, _, leaf = name.partition(".")
        source[leaf] = iso(value) if isinstance(value, datetime) else value
    return {"delivery": source}


def delivery_of(source: dict[str, Any]) -> Delivery:
    """An outbox entry from its Elasticsearch document (the payload object kept whole)."""
    return delivery_from_row({f"delivery.{k}": v for k, v in source["delivery"].items()})


class ElasticsearchAlertStore:
    def __init__(self, es: Elasticsearch, metrics_index: str = METRICS_INDEX, alerts_index: str = ALERTS_INDEX,
                 outbox_index: str = OUTBOX_INDEX) -> None:
        self.es = es
        self.metrics_index = metrics_index
        self.alerts_index = alerts_index
        self.outbox_index = outbox_index

    def series_windows(self, model: str, model_version: str, families: Sequence[str], since: datetime,
                       until: datetime, skip: Collection[str] = frozenset()) -> list[SeriesWindow]:
        # ``skip`` is applied to the hits, not the query: a terms filter holds at most 65,536 ids
        # (index.max_terms_count) and a backfill's batch skips more; the hits still cost no document.
        if not families:
            return []
        body = series_windows_search(model, model_version, families, since, until)
        out: list[SeriesWindow] = []
        while True:
            hits = self._search("series windows", self.metrics_index, body)
            for hit in hits:
                src = flatten_source(hit["_source"])
                if src["metric.id"] in skip:
                    continue
                end = _date(src["window.end"])
                out.append(SeriesWindow(
                    SeriesKey(*(str(src.get(c) or "") for c in SERIES_WINDOW_SOURCE[:8])),
                    _date(src["window.start"]), end, src["metric.status"],
                    _date(src["job.computed_at"]) if src.get("job.computed_at") else end, src["metric.id"]))
            if len(hits) < PAGE_SIZE:
                return out
            body = {**body, "search_after": hits[-1]["sort"]}

    def metric_documents(self, ids: Iterable[str]) -> list[MetricDocument]:
        wanted = sorted(set(ids))
        docs: list[MetricDocument] = []
        for start in range(0, len(wanted), PAGE_SIZE):
            hits = self._search("metric documents", self.metrics_index,
                                metric_documents_search(wanted[start:start + PAGE_SIZE]))
            docs += [metric_from_row(flatten_source(h["_source"])) for h in hits]
        return docs

    def last_notifications(self, series_ids: Iterable[str]) -> dict[str, LastNotification]:
        ids = sorted(set(series_ids))
        out: dict[str, LastNotification] = {}
        for start in range(0, len(ids), PAGE_SIZE):
            for hit in self._search("alert memory", self.alerts_index,
                                    last_notifications_search(ids[start:start + PAGE_SIZE])):
                src = flatten_source(hit["_source"])
                out[src["alert.series_id"]] = LastNotification(
                    action=src["alert.action"], status=src["alert.status.new"], window_end=_date(src["window.end"]))
        return out

    def write_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        unique = {a.id: a for a in alerts}
        actions = [{"_op_type": "create", "_index": self.alerts_index, "_id": a.id, "_source": a.to_source()}
                   for a in unique.values()]
        created = self._bulk(f"writing alerts to {self.alerts_index}", actions, refresh=False)
        return [unique[i] for i in created]

    def write_alerts_and_outbox(self, alerts: Sequence[Alert], deliveries: Sequence[Delivery]) -> list[Alert]:
        if deliveries and alerts:
            ids = sorted({a.id for a in alerts})
            stored = {h["_id"] for start in range(0, len(ids), PAGE_SIZE)
                      for h in self._search("stored alerts", self.alerts_index,
                                            stored_alerts_search(ids[start:start + PAGE_SIZE]))}
            queue = [{"_op_type": "create", "_index": self.outbox_index, "_id": d.key, "_source": delivery_source(d)}
                     for d in {d.key: d for d in deliveries if d.alert_id not in stored}.values()]
            if queue:
                self._bulk(f"queueing deliveries in {self.outbox_index}", queue, refresh=True)
        return self.write_alerts(alerts)

    def claim_deliveries(self, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        hits = self._search("due deliveries", self.outbox_index, due_deliveries_search(now, limit))
        entries = {h["_id"]: delivery_of(h["_source"]) for h in hits}
        if entries:  # an entry behind an earlier one of its series that is not due waits for it
            series = sorted({d.series_id for d in entries.values()})
            blockers: dict[str, tuple[datetime, datetime]] = {}
            for hit in self._search("held-back deliveries", self.outbox_index, held_back_search(series, now)):
                src = flatten_source(hit["_source"])
                blockers[src["delivery.series_id"]] = (_date(src["delivery.window_end"]),
                                                       _date(src["delivery.created_at"]))
            held = {key for key, d in entries.items()
                    if d.series_id in blockers and blockers[d.series_id] < (d.window_end, d.created_at)}
            hits = [h for h in hits if h["_id"] not in held]
        actions = [{"_op_type": "index", "_index": self.outbox_index, "_id": h["_id"],
                    "if_seq_no": h["_seq_no"], "if_primary_term": h["_primary_term"],
                    "_source": delivery_source(_leased(entries[h["_id"]], until))} for h in hits]
        taken = set(self._bulk(f"taking deliveries from {self.outbox_index}", actions, refresh=True))
        return [d for key, d in entries.items() if key in taken]

    def record_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        actions = [{"_op_type": "index", "_index": self.outbox_index, "_id": d.key, "_source": delivery_source(d)}
                   for d in deliveries]
        self._bulk(f"recording deliveries in {self.outbox_index}", actions, refresh=True)

    def recent_alerts(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        hits = self._search("recent alerts", self.alerts_index, recent_alerts_search(model, limit))
        return [dict(hit["_source"]) for hit in hits]

    def _bulk(self, what: str, actions: list[dict[str, Any]], *, refresh: bool) -> list[str]:
        """Ids written; a 409 (created or taken by another run already) is skipped, anything else raises."""
        if not actions:
            return []
        done: list[str] = []
        failures: list[str] = []
        try:
            options: dict[str, Any] = {"refresh": "wait_for"} if refresh else {}
            for ok, item in helpers.streaming_bulk(self.es, actions, raise_on_error=False, raise_on_exception=False,
                                                   max_retries=3, **options):
                result: dict[str, Any] = next(iter(item.values()), {})
                if ok:
                    done.append(result["_id"])
                elif result.get("status") != 409:
                    failures.append(f"{result.get('_id')}: {result.get('error')}")
        except (ApiError, TransportError) as err:
            raise StoreError(f"{what} failed ({len(actions)} documents): {err}") from err
        if failures:
            raise StoreError(f"{what}: {len(failures)} of {len(actions)} documents could not be written; "
                             f"first: {failures[0]}")
        return done

    def _search(self, what: str, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            response = self.es.search(index=index, ignore_unavailable=True, **body)
        except (ApiError, TransportError) as err:
            raise StoreError(f"{what} search on {index} failed: {err}") from err
        return list(response.body["hits"]["hits"])


def _leased(d: Delivery, until: datetime) -> Delivery:
    return replace(d, next_attempt_at=until)


def _date(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
