"""A re-sent event never becomes a second document: its own ``@timestamp`` decides its index.

``op_type create`` with a fingerprint ``_id`` deduplicates inside one index only. With data
streams, ILM's rollover (or a template change's) gives the stream a new write index and a
re-sent event is stored again. The events now go to regular indices named by the event's
month (``logs-mlmon.<kind>-<namespace>-yyyy.MM.01``, chosen by the Logstash output's
``index`` from ``@timestamp``), which never roll over: the same event always lands in the
same index and gets 409. These tests send the golden documents where the committed Logstash
config routes them, through the fake (``_id`` unique per concrete index, data streams rolled
over as ILM would), and send them again after the month has turned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import elasticsearch
import pytest

from mlmon.cli.main import main
from mlmon.core.assets import ELASTICSEARCH
from mlmon.stack import elasticsearch_assets as assets
from mlmon.stores.elasticsearch.client import connect
from tests.support.fake_elastic import ILM_ORIGINATION_NAME, FakeElasticsearch
from tests.support.fake_http import FakeServer
from tools.golden import DEAD_LETTER_PREFIX, INGEST_TIME, cases, load_expected
from tools.golden_routing import DLQ_PIPELINE, output_index_pattern, render_index, routed

Cluster = tuple[FakeServer, FakeElasticsearch, elasticsearch.Elasticsearch]


@pytest.fixture
def cluster(assets: Path) -> Iterator[Cluster]:
    state = FakeElasticsearch(licence="basic")
    with FakeServer(state) as server:
        assert main(["setup", "--es", server.url, "--assets", str(assets), "--namespace", "default"]) == 0
        yield server, state, connect(server.url, max_retries=0)


def _golden(dead_letter_time: str) -> list[dict[str, Any]]:
    docs = [d for case in cases() for d in load_expected(case)]
    for doc in docs:  # a dead letter's @timestamp is its rejection time
        if doc["source"]["@timestamp"] == INGEST_TIME:
            doc["source"]["@timestamp"] = dead_letter_time
    return docs


def _send(es: elasticsearch.Elasticsearch, docs: list[dict[str, Any]]) -> list[int]:
    """One bulk of creates, as Logstash's output sends them; the status of each."""
    operations: list[dict[str, Any]] = []
    for doc in docs:
        operations += [{"create": {"_index": routed(doc), "_id": doc["id"]}}, doc["source"]]
    items = es.bulk(operations=operations)["items"]
    return [int(item["create"]["status"]) for item in items]


def _ilm_rolls_every_stream_over(es: elasticsearch.Elasticsearch, state: FakeElasticsearch) -> None:
    """What ILM does at max_age, or a template change's rollover: a new write index per data stream."""
    for stream in sorted(state.data_streams):
        es.indices.rollover(alias=stream)


def _stored_ids(state: FakeElasticsearch) -> list[str]:
    return sorted(doc_id for index, docs in state.documents.items() if index.startswith("logs-mlmon.")
                  or index.startswith(".ds-logs-mlmon.") for doc_id in docs)


def test_a_resent_event_is_refused_after_the_month_turned_and_every_stream_rolled_over(cluster: Cluster) -> None:
    _, state, es = cluster
    docs = _golden("2025-01-31T23:59:59.900Z")
    unique = {(d["index"], d["id"]) for d in docs}
    first = _send(es, docs)
    assert first.count(201) == len(unique)

    _ilm_rolls_every_stream_over(es, state)
    # February: the same lines again (a re-read file, a retried batch). The dead letters were
    # rejected in January: their rejection time, hence their index, is January's too.
    again = _send(es, docs)
    assert set(again) == {409}, "a re-sent event was stored a second time"
    ids = _stored_ids(state)
    assert len(ids) == len(set(ids)) == len(unique)


def test_each_event_is_in_the_index_of_its_own_month_and_no_data_stream_is_made(cluster: Cluster) -> None:
    _, state, es = cluster
    _send(es, _golden("2025-02-01T00:00:00.000Z"))
    assert state.data_streams == set()
    for index, stored in state.documents.items():
        if not index.startswith("logs-mlmon."):
            continue
        for source in stored.values():
            month = source["@timestamp"][:7].replace("-", ".")
            assert index.endswith(f"-{month}.01"), (index, source["@timestamp"])
    months = {i.rsplit("-", 1)[1] for i in state.documents if i.startswith(DEAD_LETTER_PREFIX)}
    assert months == {"2025.02.01"}


def test_the_month_boundary_splits_indices_and_ilm_parses_the_month_from_each_name(cluster: Cluster) -> None:
    _, state, es = cluster
    event = next(d for d in _golden(INGEST_TIME) if d["index"] == "logs-mlmon.prediction-default")
    last = {**event, "id": "last-of-january", "source": {**event["source"], "@timestamp": "2025-01-31T23:59:59.999Z"}}
    first = {**event, "id": "first-of-february", "source": {**event["source"], "@timestamp": "2025-02-01T00:00:00Z"}}
    assert _send(es, [last, first]) == [201, 201]
    assert routed(last) == "logs-mlmon.prediction-default-2025.01.01"
    assert routed(first) == "logs-mlmon.prediction-default-2025.02.01"
    for index in (routed(last), routed(first)):
        match = re.fullmatch(ILM_ORIGINATION_NAME, index)  # Elasticsearch's IndexLifecycleOriginationDateParser
        assert match is not None, index
    assert _send(es, [last, first]) == [409, 409]


def test_ilm_keeps_the_last_event_of_a_month_for_the_whole_retention() -> None:
    """The index's age counts from its month's first day (parse_origination_date): delete after retention + a month."""
    for policy, retention in assets.RETENTION.items():
        body = json.loads((ELASTICSEARCH / "ilm" / f"mlmon-{policy}.json").read_text())
        phases = body["policy"]["phases"]
        assert "rollover" not in json.dumps(phases), "a rollover would put a re-sent event in a second index"
        delete_after = assets.duration_seconds(phases["delete"]["min_age"])
        assert delete_after >= assets.duration_seconds(retention) + 31 * 86_400, policy


def test_routed_names_match_exactly_our_regular_index_templates_never_an_old_data_stream() -> None:
    templates = {p.stem: json.loads(p.read_text()) for p in (ELASTICSEARCH / "index_templates").glob("*.json")}
    pattern = output_index_pattern()
    assert pattern.endswith(assets.EVENT_INDEX_SUFFIX) and output_index_pattern(DLQ_PIPELINE).endswith(
        assets.EVENT_INDEX_SUFFIX)
    at = "2025-03-09T10:00:00Z"
    for kind in ("prediction", "feedback", "explanation", "emitter", "deadletter"):
        name = render_index(pattern, f"logs-mlmon.{kind}-prod_eu", at)
        matching = [t for t, body in templates.items() if any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), name)
                                                              for p in body["index_patterns"])]
        assert matching == [f"logs-mlmon.{kind}"], name
        assert "data_stream" not in templates[matching[0]]
        # A data stream of the old layout (logs-mlmon.<kind>-<namespace>) is not matched: Elasticsearch
        # refuses a template that would leave an existing data stream without a data-stream template.
        assert not any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), f"logs-mlmon.{kind}-prod_eu")
                       for p in templates[matching[0]]["index_patterns"])
    dlq = render_index(output_index_pattern(DLQ_PIPELINE), "unused", at)
    assert dlq == "logs-mlmon.deadletter-default-2025.03.01"
