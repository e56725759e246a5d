"""The local Elasticsearch fake refuses what a 9.4 cluster refuses, with Elasticsearch's own errors.

A permissive fake hides real failures (a listing that asks for 200,000 hits passes the
fake and fails the cluster), so each limit gets a request that breaks it, through the
official client, and the request just inside the limit that the cluster accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import elasticsearch
import pytest

from mlmon.stores.elasticsearch.client import connect
from tests.support.fake_elastic import (MAX_BUCKETS, MAX_INNER_RESULT_WINDOW, MAX_TERMS_COUNT, FakeElasticsearch,
                                        bucket_count)
from tests.support.fake_http import FakeServer

Cluster = tuple[elasticsearch.Elasticsearch, FakeElasticsearch]


@pytest.fixture
def cluster() -> Iterator[tuple[elasticsearch.Elasticsearch, FakeElasticsearch]]:
    fake = FakeElasticsearch()
    fake.documents["mlmon-metrics"] = {f"d{i}": {"metric": {"id": f"d{i}"}, "n": i} for i in range(25)}
    with FakeServer(fake) as server:
        yield connect(server.url, max_retries=0), fake


def _refused(es: elasticsearch.Elasticsearch, **search: Any) -> str:
    with pytest.raises(elasticsearch.ApiError) as caught:
        es.search(**search)
    return str(caught.value)


def test_result_window(cluster: Cluster) -> None:
    es, _ = cluster
    assert "Result window is too large" in _refused(es, index="mlmon-metrics", size=10_001)
    assert "Result window is too large" in _refused(es, index="mlmon-metrics", size=5_000, from_=5_001)
    assert es.search(index="mlmon-metrics", size=10_000)["hits"]["total"]["value"] == 25


def test_max_buckets(cluster: Cluster) -> None:
    es, _ = cluster
    ranges = [{"from": float(i), "to": float(i + 1)} for i in range(MAX_BUCKETS + 1)]
    assert "too_many_buckets_exception" in _refused(es, index="mlmon-metrics", size=0,
                                                    aggs={"r": {"range": {"field": "n", "ranges": ranges}}})
    # Sub-aggregations multiply: 300 terms buckets x 300 range buckets each.
    nested = {"t": {"terms": {"field": "x", "size": 300}, "aggs": {"r": {"range": {"field": "n", "ranges": ranges[:300]}}}}}
    assert bucket_count(nested) == 300 + 300 * 300
    assert "too_many_buckets_exception" in _refused(es, index="mlmon-metrics", size=0, aggs=nested)
    es.search(index="mlmon-metrics", size=0, aggs={"r": {"range": {"field": "n", "ranges": ranges[:MAX_BUCKETS]}}})


def test_terms_query_length(cluster: Cluster) -> None:
    es, _ = cluster
    many = [f"id{i}" for i in range(MAX_TERMS_COUNT + 1)]
    assert "index.max_terms_count" in _refused(es, index="mlmon-metrics",
                                               query={"bool": {"filter": [{"terms": {"metric.id": many}}]}})
    es.search(index="mlmon-metrics", query={"bool": {"filter": [{"terms": {"metric.id": many[:MAX_TERMS_COUNT]}}]}})


def test_top_hits_size(cluster: Cluster) -> None:
    es, _ = cluster
    top = {"terms": {"field": "metric.id", "size": 10},
           "aggs": {"latest": {"top_hits": {"size": MAX_INNER_RESULT_WINDOW + 1}}}}
    assert "index.max_inner_result_window" in _refused(es, index="mlmon-metrics", size=0, aggs={"by": top})


def test_search_after_rules(cluster: Cluster) -> None:
    es, _ = cluster
    assert "Sort must contain at least one field" in _refused(es, index="mlmon-metrics", search_after=["d1"])
    assert "search_after has 2 value(s) but sort has 1" in _refused(
        es, index="mlmon-metrics", sort=[{"metric.id": "asc"}], search_after=["d1", 3])
    assert "`from` parameter must be set to 0" in _refused(
        es, index="mlmon-metrics", sort=[{"metric.id": "asc"}], search_after=["d1"], from_=5)


def test_point_in_time_rules(cluster: Cluster) -> None:
    es, fake = cluster
    with pytest.raises(elasticsearch.ApiError, match="too large"):
        es.open_point_in_time(index="mlmon-metrics", keep_alive="2d")
    pit = es.open_point_in_time(index="mlmon-metrics", keep_alive="1m")["id"]
    # An index in the path is refused with a point in time.
    assert "cannot be used with point in time" in _refused(es, index="mlmon-metrics", pit={"id": pit},
                                                            sort=[{"metric.id": "asc"}])
    # The point in time adds _shard_doc: search_after must carry its value too.
    first = es.search(pit={"id": pit, "keep_alive": "1m"}, sort=[{"metric.id": "asc"}], size=5)["hits"]["hits"]
    assert len(first[-1]["sort"]) == 2
    assert "but sort has 2" in _refused(es, pit={"id": pit}, sort=[{"metric.id": "asc"}],
                                        search_after=first[-1]["sort"][:1])
    # Documents written after it was opened are not in it.
    fake.documents["mlmon-metrics"]["zz"] = {"metric": {"id": "zz"}, "n": 99}
    rest = es.search(pit={"id": pit, "keep_alive": "1m"}, sort=[{"metric.id": "asc"}], size=100,
                     search_after=first[-1]["sort"])["hits"]["hits"]
    assert len(first) + len(rest) == 25
    # It expires once its keep_alive has passed without a search.
    now = fake.clock()
    fake.clock = lambda: now + 61
    assert "search_context_missing_exception" in _refused(es, pit={"id": pit}, sort=[{"metric.id": "asc"}])
    assert es.close_point_in_time(id=pit)["succeeded"]


class _WrittenDuringTheListing(FakeElasticsearch):
    """A job writes a metric document while a long listing is being read."""

    def __call__(self, req: Any) -> Any:
        if req.path.endswith("/_search") and (req.json or {}).get("search_after"):
            self.documents["mlmon-metrics"].setdefault("late", {**self.documents["mlmon-metrics"]["m0"],
                                                                "metric": {"id": "late", "feature": "zz"}})
        return super().__call__(req)


def test_a_long_listing_reads_one_snapshot_in_pages_the_cluster_accepts() -> None:
    """mlmon report asks for up to 200,000 metric documents: pages of 10,000 in one point in time."""
    from mlmon.outputs.report.gather import MAX_METRICS
    from mlmon.stores.elasticsearch.store import ElasticsearchStore
    from tests.cli.helpers import doc

    fake = _WrittenDuringTheListing()
    fake.documents["mlmon-metrics"] = {f"m{i}": doc(i, hour=i % 7).to_source() for i in range(12_345)}
    fake.documents["mlmon-metrics"]["m0"] = doc(0).to_source()
    with FakeServer(fake) as server:
        page = ElasticsearchStore(connect(server.url)).read_metrics(limit=MAX_METRICS)
        searches = [r.json for r in server.requests if r.path.endswith("/_search")]
        pits = [r for r in server.requests if r.path.endswith("/_pit")]
    assert all(s.get("from", 0) + s["size"] <= 10_000 and "pit" in s for s in searches)
    assert len(page) == page.total == 12_345  # the document written meanwhile is not half-read
    assert [r.method for r in pits] == ["POST", "DELETE"] and not fake.pits


@pytest.fixture
def installed() -> Iterator[tuple[elasticsearch.Elasticsearch, FakeElasticsearch]]:
    """The fake with mlmon's real templates installed (what `mlmon setup` leaves)."""
    from mlmon.stack.installer import install

    fake = FakeElasticsearch()
    with FakeServer(fake) as server:
        es = connect(server.url, max_retries=0)
        install(es, namespace="default")
        yield es, fake


def _create(es: elasticsearch.Elasticsearch, index: str, doc_id: str, source: dict[str, Any]) -> dict[str, Any]:
    resp = es.bulk(operations=[{"create": {"_index": index, "_id": doc_id}}, source])
    item: dict[str, Any] = resp["items"][0]["create"]
    return item


def _event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"@timestamp": "2025-03-01T00:00:00.000Z", "event": {"id": event_id, "dataset": "mlmon.prediction"},
            "mlmon": {"model": {"name": "churn", "version": "1"}, **extra}}


def test_create_is_refused_409_only_within_one_backing_index(installed: Cluster) -> None:
    es, fake = installed
    fake.index_templates["acme-logs"] = {"index_patterns": ["acme-*"], "data_stream": {}, "priority": 500}
    stream = "acme-default"
    assert _create(es, stream, "a", _event("a"))["status"] == 201
    conflict = _create(es, stream, "a", _event("a"))
    assert conflict["status"] == 409 and conflict["error"]["type"] == "version_conflict_engine_exception"
    # Data streams take op_type create only.
    indexed = es.bulk(operations=[{"index": {"_index": stream, "_id": "b"}}, _event("b")])["items"][0]["index"]
    assert indexed["status"] == 400
    # As on a real cluster, a rollover starts a new write index that knows none of the earlier ids.
    es.indices.rollover(alias=stream)
    again = _create(es, stream, "a", _event("a"))
    assert again["status"] == 201 and again["_index"].endswith("-000002")
    assert sum("a" in docs for docs in fake.documents.values()) == 2


def test_an_event_index_is_regular_made_at_its_first_write_and_named_for_ilm(installed: Cluster) -> None:
    es, fake = installed
    index = "logs-mlmon.prediction-default-2025.03.01"
    assert _create(es, index, "a", _event("a"))["status"] == 201
    assert index in fake.indices and fake.data_streams == set()
    assert fake.index_mappings[index] == fake.composed_mappings(index)
    assert _create(es, index, "a", _event("a"))["status"] == 409
    # parse_origination_date: a name without a -yyyy.MM.dd suffix is refused before the index is made.
    refused = _create(es, "logs-mlmon.prediction-default-2025.03", "b", _event("b"))
    assert refused["status"] == 400 and "does not match pattern" in refused["error"]["reason"]
    with pytest.raises(elasticsearch.BadRequestError, match="does not match pattern"):
        es.indices.create(index="logs-mlmon.prediction-default-march")


def test_mapping_total_fields_limit(installed: Cluster) -> None:
    es, fake = installed
    # The document indices set no limit beyond the default; build one that does, as a template would.
    fake.index_templates["tight"] = {"index_patterns": ["tight*"], "priority": 500,
                                     "template": {"settings": {"index.mapping.total_fields.limit": 5},
                                                  "mappings": {"dynamic": True, "properties": {}}}}
    assert _create(es, "tight", "ok", {"a": 1, "b": {"c": 2}})["status"] == 201  # 3 fields
    refused = _create(es, "tight", "big", {f"f{i}": i for i in range(6)})
    assert refused["status"] == 400 and "Limit of total fields [5]" in refused["error"]["reason"]
    # The event streams set ignore_dynamic_beyond_limit: extra features are kept, not refused.
    features = {"features": {"numeric": {f"x{i}": float(i) for i in range(3000)}}}
    assert _create(es, "logs-mlmon.prediction-default-2025.03.01", "wide", _event("wide", **features))["status"] == 201
