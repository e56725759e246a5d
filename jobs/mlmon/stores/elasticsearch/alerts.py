"""Alert I/O on Elasticsearch: metric history from ``mlmon-metrics``, alerts into ``mlmon-alerts``.

Alerts are created with ``op_type: create`` under their deterministic id, so a
re-run's duplicate is answered 409 by Elasticsearch itself and skipped: the
write is idempotent even when two job processes race.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from mlmon.core.alerts import Alert, LastNotification
from mlmon.stores.duckdb.alerts import metric_from_row
from mlmon.core.documents import ALERTS_INDEX, METRICS_INDEX, MetricDocument, iso
from mlmon.stores.protocols import StoreError
from mlmon.core.queries import flatten_source

PAGE_SIZE = 1000


def metric_history_search(model: str, model_version: str, since: datetime) -> dict[str, Any]:
    """Search body: a model version's metric documents whose window ends at or after ``since``, oldest first."""
    return {
        "size": PAGE_SIZE,
        "query": {"bool": {"filter": [
            {"term": {"mlmon.model.name": model}},
            {"term": {"mlmon.model.version": model_version}},
            {"range": {"window.end": {"gte": iso(since)}}},
        ]}},
        "sort": [{"window.end": "asc"}, {"metric.id": "asc"}],
    }


def recent_alerts_search(model: str | None, limit: int) -> dict[str, Any]:
    """Newest alert documents, optionally of one model."""
    query: dict[str, Any] = {"term": {"mlmon.model.name": model}} if model else {"match_all": {}}
    return {"query": query, "size": limit, "sort": [{"@timestamp": {"order": "desc"}}]}


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


class ElasticsearchAlertStore:
    def __init__(self, es: Elasticsearch, metrics_index: str = METRICS_INDEX, alerts_index: str = ALERTS_INDEX) -> None:
        self.es = es
        self.metrics_index = metrics_index
        self.alerts_index = alerts_index

    def metric_history(self, model: str, model_version: str, since: datetime) -> list[MetricDocument]:
        body = metric_history_search(model, model_version, since)
        docs: list[MetricDocument] = []
        while True:
            hits = self._search("metric history", self.metrics_index, body)
            docs += [metric_from_row(flatten_source(h["_source"])) for h in hits]
            if len(hits) < PAGE_SIZE:
                return docs
            body = {**body, "search_after": hits[-1]["sort"]}

    def last_notifications(self, series_ids: Iterable[str]) -> dict[str, LastNotification]:
        ids = sorted(set(series_ids))
        out: dict[str, LastNotification] = {}
        for start in range(0, len(ids), PAGE_SIZE):
            for hit in self._search("alert memory", self.alerts_index,
                                    last_notifications_search(ids[start:start + PAGE_SIZE])):
                src = flatten_source(hit["_source"])
                out[src["alert.series_id"]] = LastNotification(
                    action=src["alert.action"], status=src["alert.status.new"],
                    window_end=datetime.fromisoformat(src["window.end"].replace("Z", "+00:00")))
        return out

    def write_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        unique = {a.id: a for a in alerts}
        actions = [{"_op_type": "create", "_index": self.alerts_index, "_id": a.id, "_source": a.to_source()}
                   for a in unique.values()]
        created: list[Alert] = []
        failures: list[str] = []
        try:
            for ok, item in helpers.streaming_bulk(self.es, actions, raise_on_error=False,
                                                   raise_on_exception=False, max_retries=3):
                result = item.get("create", {})
                if ok:
                    created.append(unique[result["_id"]])
                elif result.get("status") != 409:  # 409: stored by an earlier run - idempotence, not failure
                    failures.append(f"{result.get('_id')}: {result.get('error')}")
        except (ApiError, TransportError) as err:
            raise StoreError(f"writing {len(actions)} alerts to {self.alerts_index} failed: {err}") from err
        if failures:
            raise StoreError(f"{len(failures)} of {len(actions)} alerts could not be written to "
                             f"{self.alerts_index}; first: {failures[0]}")
        return created

    def recent_alerts(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        hits = self._search("recent alerts", self.alerts_index, recent_alerts_search(model, limit))
        return [dict(hit["_source"]) for hit in hits]

    def _search(self, what: str, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            response = self.es.search(index=index, ignore_unavailable=True, **body)
        except (ApiError, TransportError) as err:
            raise StoreError(f"{what} search on {index} failed: {err}") from err
        return list(response.body["hits"]["hits"])
