"""The Elasticsearch alert adapter at the HTTP edge: real client, fake server, response shapes from Elastic's docs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mlmon.alerts.engine import evaluate
from mlmon.stores.elasticsearch.alerts import ElasticsearchAlertStore, last_notifications_search, metric_history_search
from mlmon.config.alerts import Rule
from mlmon.stores.elasticsearch.client import connect
from mlmon.stores.protocols import StoreError
from tests.alerts.conftest import T0, make_metric, series
from tests.support.fake_http import FakeServer, Reply, Request, es_error, es_reply

RULE = Rule("drift", ("drift",), renotify_every=None)
ALERTS = evaluate(series(["alert", "ok"]), [RULE], {}, now=T0 + timedelta(days=9))


def _hits(sources: list[dict], sort: bool = False) -> dict:
    hits = [{"_index": "mlmon-metrics", "_id": str(i), "_score": None, "_source": s,
             **({"sort": [i]} if sort else {})} for i, s in enumerate(sources)]
    return {"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": None, "hits": hits}}


def _bulk_reply(req: Request, conflict_ids: set[str]) -> Reply:
    lines = [json.loads(line) for line in req.raw_body.decode().splitlines() if line.strip()]
    items = []
    for action in lines[::2]:
        _id = action["create"]["_id"]
        if _id in conflict_ids:
            items.append({"create": {"_index": "mlmon-alerts", "_id": _id, "status": 409, "error": {
                "type": "version_conflict_engine_exception",
                "reason": f"[{_id}]: version conflict, document already exists (current version [1])"}}})
        else:
            items.append({"create": {"_index": "mlmon-alerts", "_id": _id, "_version": 1, "result": "created",
                                     "status": 201, "_seq_no": 0, "_primary_term": 1}})
    return es_reply({"took": 3, "errors": bool(conflict_ids), "items": items})


def test_write_creates_by_id_and_treats_conflicts_as_already_written() -> None:
    conflict = {ALERTS[0].id}
    with FakeServer(lambda req: _bulk_reply(req, conflict)) as server:
        written = ElasticsearchAlertStore(connect(server.url)).write_alerts(ALERTS)
    assert [a.action for a in written] == ["recovered"]
    [bulk] = server.writes()
    assert (bulk.method, bulk.path) == ("PUT", "/_bulk")
    lines = [json.loads(x) for x in bulk.raw_body.decode().splitlines()]
    assert lines[0] == {"create": {"_index": "mlmon-alerts", "_id": ALERTS[0].id}}
    assert lines[1]["alert"]["series_id"] == ALERTS[0].series_id


def test_other_bulk_failures_raise_a_store_error() -> None:
    def handler(req: Request) -> Reply:
        reply = _bulk_reply(req, set())
        body = reply.body
        body["errors"] = True
        body["items"][0]["create"] = {"_id": ALERTS[0].id, "status": 400, "error": {
            "type": "document_parsing_exception", "reason": "failed to parse field [alert.fired_at]"}}
        return reply

    with FakeServer(handler) as server, pytest.raises(StoreError, match="alert.fired_at"):
        ElasticsearchAlertStore(connect(server.url)).write_alerts(ALERTS)


def test_history_and_memory_are_read_back() -> None:
    doc = make_metric(2, "alert")
    alert_source = ALERTS[0].to_source()

    def handler(req: Request) -> Reply:
        if req.path == "/mlmon-metrics/_search":
            return es_reply(_hits([doc.to_source()], sort=True))
        if req.path == "/mlmon-alerts/_search":
            return es_reply(_hits([alert_source]))
        return es_error(404, "index_not_found_exception", req.path)

    with FakeServer(handler) as server:
        store = ElasticsearchAlertStore(connect(server.url))
        [back] = store.metric_history("churn", "3", T0)
        memory = store.last_notifications([ALERTS[0].series_id])
    assert back.id == doc.id and back.window_end == doc.window_end and back.threshold == doc.threshold
    assert memory[ALERTS[0].series_id].action == "fired"
    assert memory[ALERTS[0].series_id].window_end == ALERTS[0].metric.window_end
    history_req, memory_req = server.requests
    assert history_req.json["query"]["bool"]["filter"][0] == {"term": {"mlmon.model.name": "churn"}}
    assert memory_req.json["collapse"] == {"field": "alert.series_id"}
    assert history_req.query.get("ignore_unavailable") == ["true"]


def test_search_bodies_name_only_mapped_fields() -> None:
    from mlmon.core.alert_schema import ALERT_FIELDS
    from mlmon.core.documents import METRIC_FIELDS
    from tests.alerts.test_assets import query_fields

    history = metric_history_search("churn", "3", T0)
    memory = last_notifications_search(["a", "b"])
    assert set(query_fields(history["query"])) | {"window.end", "metric.id"} <= set(METRIC_FIELDS)
    assert set(query_fields(memory)) | {"window.end", "alert.fired_at", *memory["_source"]} <= set(ALERT_FIELDS)
    # both bodies are type-checked with the other alerting bodies in test_assets (one tsc run)
