"""``read_metrics`` on both stores: filters in the query, a total of the matches, and long
listings on Elasticsearch read in pages a real cluster accepts (from + size <= 10,000)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlmon.core.documents import MetricDocument
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon.stores.elasticsearch.client import connect
from mlmon.stores.elasticsearch.store import ElasticsearchStore
from tests.cli.helpers import T0, HOUR, doc
from tests.support.fake_elastic import FakeElasticsearch
from tests.support.fake_http import FakeServer


def _es_with(docs: list[MetricDocument]) -> FakeElasticsearch:
    fake = FakeElasticsearch()
    fake.documents["mlmon-metrics"] = {d.id: d.to_source() for d in docs}
    return fake


def test_the_fake_refuses_a_result_window_above_ten_thousand() -> None:
    with FakeServer(_es_with([doc(0)])) as server:
        es = connect(server.url)
        with pytest.raises(Exception, match="Result window is too large"):
            es.search(index="mlmon-metrics", size=10_001)


def test_elasticsearch_reads_more_than_ten_thousand_in_pages() -> None:
    docs = [doc(i, hour=i % 7) for i in range(12_345)]
    with FakeServer(_es_with(docs)) as server:
        page = ElasticsearchStore(connect(server.url)).read_metrics(limit=20_000)
        searches = [r for r in server.requests if r.path.endswith("/_search")]
    assert len(page) == page.total == 12_345
    assert len({d["metric"]["id"] for d in page}) == 12_345  # no document twice, none skipped
    ends = [d["window"]["end"] for d in page]
    assert ends == sorted(ends, reverse=True)
    assert len(searches) == 2 and all((r.json.get("from", 0) + r.json["size"]) <= 10_000 for r in searches)


def test_a_limit_below_the_matches_reports_the_total() -> None:
    docs = [doc(i) for i in range(50)] + [doc(i, status="alert", feature="plan") for i in range(5)]
    with FakeServer(_es_with(docs)) as server:
        store = ElasticsearchStore(connect(server.url))
        alerts = store.read_metrics(limit=3, statuses=["alert"])
        assert len(alerts) == 3 and alerts.total == 5
        assert {d["metric"]["status"] for d in alerts} == {"alert"}
        assert store.read_metrics(features=["plan1", "plan2"], limit=100).total == 2
        assert store.read_metrics(version="9").total == 0


def test_a_missing_metrics_index_reads_as_empty() -> None:
    with FakeServer(FakeElasticsearch()) as server:
        page = ElasticsearchStore(connect(server.url)).read_metrics()
    assert page == [] and page.total == 0


@pytest.mark.parametrize("filters", [
    {"statuses": ["alert"]}, {"families": ["performance"]}, {"features": ["age", "plan2"]}, {"version": "3"},
    {"model": "churn", "start": T0 + 2 * HOUR, "end": T0 + 4 * HOUR},
])
def test_both_stores_answer_the_same(tmp_path: Path, filters: dict[str, Any]) -> None:
    docs = [doc(i, hour=i % 6, status="alert" if i % 4 == 0 else "ok",
                family="performance" if i % 5 == 0 else "drift", feature="plan" if i % 3 else "age")
            for i in range(60)]
    duck = DuckDBStore(tmp_path / "m.duckdb")
    duck.write_metrics(docs)
    from_duckdb = duck.read_metrics(limit=7, **filters)
    duck.close()
    with FakeServer(_es_with(docs)) as server:
        from_es = ElasticsearchStore(connect(server.url)).read_metrics(limit=7, **filters)
    assert [d["metric"]["id"] for d in from_duckdb] == [d["metric"]["id"] for d in from_es]
    assert from_duckdb.total == from_es.total > 0
