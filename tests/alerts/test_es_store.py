"""The Elasticsearch alert adapter at the HTTP edge: real client, fake server, response shapes from Elastic's docs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from mlmon.alerts.engine import evaluate
from mlmon.stores.elasticsearch.alerts import (ElasticsearchAlertStore, due_deliveries_search, held_back_search,
                                              last_notifications_search, series_windows_search)
from mlmon.config.alerts import Rule
from mlmon.stores.elasticsearch.client import connect
from mlmon.core.alerts import Delivery
from mlmon.stores.elasticsearch.alerts import delivery_source
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
        [(op, meta)] = action.items()
        _id = meta["_id"]
        if _id in conflict_ids:
            items.append({op: {"_index": meta["_index"], "_id": _id, "status": 409, "error": {
                "type": "version_conflict_engine_exception",
                "reason": f"[{_id}]: version conflict, document already exists (current version [1])"}}})
        else:
            items.append({op: {"_index": meta["_index"], "_id": _id, "_version": 1, "result": "created",
                               "status": 201, "_seq_no": 0, "_primary_term": 1}})
    return es_reply({"took": 3, "errors": bool(conflict_ids & {a[next(iter(a))]["_id"] for a in lines[::2]}),
                     "items": items})


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


def test_series_windows_and_memory_are_read_back() -> None:
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
        [back] = store.series_windows("churn", "3", ["drift"], T0, T0 + timedelta(days=3))
        [full] = store.metric_documents([doc.id])
        memory = store.last_notifications([ALERTS[0].series_id])
    assert (back.metric_id, back.window_end, back.status, back.series.feature) == (doc.id, doc.window_end, "alert", "age")
    assert full.id == doc.id and full.threshold == doc.threshold
    assert memory[ALERTS[0].series_id].action == "fired"
    assert memory[ALERTS[0].series_id].window_end == ALERTS[0].metric.window_end
    windows_req, docs_req, memory_req = server.requests
    assert windows_req.json["query"]["bool"]["filter"][2:] == [
        {"terms": {"metric.family": ["drift"]}},
        {"range": {"window.end": {"gte": "2025-03-01T00:00:00.000Z", "lte": "2025-03-04T00:00:00.000Z"}}}]
    assert "metric.details" not in windows_req.json["_source"]  # no document is rebuilt for context
    assert docs_req.json["query"] == {"terms": {"metric.id": [doc.id]}}
    assert memory_req.json["collapse"] == {"field": "alert.series_id"}
    assert windows_req.query.get("ignore_unavailable") == ["true"]


def test_series_windows_skip_the_ids_the_round_holds() -> None:
    docs = [make_metric(day, "ok") for day in range(3)]

    def handler(req: Request) -> Reply:
        return es_reply(_hits([d.to_source() for d in docs], sort=True))

    with FakeServer(handler) as server:
        rows = ElasticsearchAlertStore(connect(server.url)).series_windows(
            "churn", "3", ["drift"], T0, T0 + timedelta(days=3), skip={docs[0].id, docs[2].id})
    assert [r.metric_id for r in rows] == [docs[1].id]


def test_deliveries_are_queued_before_their_alerts_and_only_for_alerts_not_stored() -> None:
    now = T0 + timedelta(days=9)
    deliveries = [Delivery.of(a, "webhook", created_at=now, expires_at=now + timedelta(days=1)) for a in ALERTS]

    def handler(req: Request) -> Reply:
        if req.path == "/mlmon-alerts/_search":  # the first alert is stored already
            return es_reply({**_hits([]), "hits": {"total": {"value": 1, "relation": "eq"}, "max_score": None,
                                                   "hits": [{"_index": "mlmon-alerts", "_id": ALERTS[0].id}]}})
        return _bulk_reply(req, {ALERTS[0].id})

    with FakeServer(handler) as server:
        written = ElasticsearchAlertStore(connect(server.url)).write_alerts_and_outbox(ALERTS, deliveries)
    assert [a.action for a in written] == ["recovered"]
    search, queue, alerts = server.requests
    assert search.json["query"] == {"ids": {"values": sorted(a.id for a in ALERTS)}}
    queued = [json.loads(x) for x in queue.raw_body.decode().splitlines()]
    assert queued[0] == {"create": {"_index": "mlmon-outbox", "_id": f"{ALERTS[1].id}:webhook"}}
    assert len(queued) == 2 and queued[1]["delivery"]["payload"]["alert"]["alert"]["id"] == ALERTS[1].id
    assert queue.query.get("refresh") == ["wait_for"]  # the delivery round right after must see them
    assert json.loads(alerts.raw_body.decode().splitlines()[0])["create"]["_index"] == "mlmon-alerts"


def test_a_delivery_taken_by_another_round_meanwhile_is_left_to_it() -> None:
    now = T0 + timedelta(days=9)
    mine, theirs = [Delivery.of(a, "webhook", created_at=now, expires_at=now + timedelta(days=1)) for a in ALERTS]
    sources = [delivery_source(mine), delivery_source(theirs)]

    def handler(req: Request) -> Reply:
        if req.path == "/mlmon-outbox/_search" and "collapse" in req.json:
            return es_reply(_hits([]))  # nothing of these series waits in backoff
        if req.path == "/mlmon-outbox/_search":
            body = _hits(sources)
            for i, (hit, d) in enumerate(zip(body["hits"]["hits"], (mine, theirs))):
                hit.update({"_index": "mlmon-outbox", "_id": d.key, "_seq_no": 10 + i, "_primary_term": 1})
            return es_reply(body)
        return _bulk_reply(req, {theirs.key})  # its seq_no moved: another round took it first

    until = now + timedelta(minutes=1)
    with FakeServer(handler) as server:
        taken = ElasticsearchAlertStore(connect(server.url)).claim_deliveries(now, until, 50)
    assert [d.key for d in taken] == [mine.key]
    search, held_back, bulk = server.requests
    assert search.json["seq_no_primary_term"] is True and search.json["size"] == 50
    assert held_back.json["query"]["bool"]["filter"][2] == {"terms": {"delivery.series_id": sorted(
        {mine.series_id, theirs.series_id})}}
    lines = [json.loads(x) for x in bulk.raw_body.decode().splitlines()]
    assert lines[0] == {"index": {"_index": "mlmon-outbox", "_id": mine.key, "if_seq_no": 10, "if_primary_term": 1}}
    assert lines[1]["delivery"]["next_attempt_at"] == "2025-03-10T00:01:00.000Z"  # the lease


def test_a_due_delivery_behind_its_series_entry_in_backoff_is_not_taken() -> None:
    """A later round's alert of a series whose earlier alert waits in backoff must not overtake it."""
    now = T0 + timedelta(days=9)
    first, later = [Delivery.of(a, "webhook", created_at=now, expires_at=now + timedelta(days=1))
                    for a in (ALERTS[0], replace(ALERTS[0], action="recovered",
                                                 metric=make_metric(3, "ok")))]
    waiting = replace(first, next_attempt_at=now + timedelta(minutes=1), attempts=1)

    def handler(req: Request) -> Reply:
        if req.path == "/mlmon-outbox/_search" and "collapse" in req.json:
            return es_reply(_hits([delivery_source(waiting)]))
        if req.path == "/mlmon-outbox/_search":
            body = _hits([delivery_source(later)])
            body["hits"]["hits"][0].update({"_index": "mlmon-outbox", "_id": later.key, "_seq_no": 1,
                                            "_primary_term": 1})
            return es_reply(body)
        return _bulk_reply(req, set())

    with FakeServer(handler) as server:
        taken = ElasticsearchAlertStore(connect(server.url)).claim_deliveries(now, now + timedelta(minutes=1), 50)
    assert taken == [] and first.series_id == later.series_id and later.window_end > first.window_end
    assert all(r.path != "/_bulk" for r in server.requests)  # not leased either


def test_search_bodies_name_only_mapped_fields() -> None:
    from mlmon.core.alert_schema import ALERT_FIELDS, OUTBOX_FIELDS
    from mlmon.core.documents import METRIC_FIELDS
    from tests.alerts.test_assets import query_fields

    windows = series_windows_search("churn", "3", ["drift"], T0, T0)
    memory = last_notifications_search(["a", "b"])
    due = due_deliveries_search(T0, 10)
    held = held_back_search(["a"], T0)
    assert set(query_fields(windows["query"])) | {"window.end", "metric.id", *windows["_source"]} <= set(METRIC_FIELDS)
    assert set(query_fields(memory)) | {"window.end", "alert.fired_at", *memory["_source"]} <= set(ALERT_FIELDS)
    assert set(query_fields(due["query"])) | {next(iter(s)) for s in due["sort"]} <= set(OUTBOX_FIELDS)
    assert set(query_fields(held["query"])) | {next(iter(s)) for s in held["sort"]} | set(held["_source"]) \
        | {held["collapse"]["field"]} <= set(OUTBOX_FIELDS)
    # every body is type-checked with the other alerting bodies in test_assets (one tsc run)
