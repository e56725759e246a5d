"""Fairness on Elasticsearch: the same events through the label join at the HTTP edge give the same documents.

The scenario's events are read back from the embedded store and served by the
fake cluster of ``tests.performance.fake_es`` (it evaluates the label join's
requests as Elasticsearch documents them); every fairness document must equal
the one computed on DuckDB.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlmon.config import model as cfg
from mlmon.core.documents import MetricDocument
from mlmon.stores.elasticsearch.client import connect
from mlmon.jobs.fairness import fairness_job
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon.stores.elasticsearch.store import ElasticsearchStore
from tests.explainability.scenario import HOUR, MODEL, T0, VERSION
from tests.performance.fake_es import FakeCluster
from tests.support.fake_http import FakeServer


def _documents(store: Any, hour: int, fairness: dict[str, Any]) -> dict[tuple[str, str, str], MetricDocument]:
    model = cfg.parse({"models": {MODEL: {"version": VERSION, "fairness": fairness}}}).models[0]
    job = fairness_job(store, model, "run-1")
    assert job is not None
    docs = job.run(T0 + hour * HOUR, T0 + (hour + 1) * HOUR)
    return {(d.metric, d.segment_field, d.segment_value): d for d in docs}


@pytest.mark.parametrize("fairness", [
    {"attributes": ["region"]},
    {"attributes": {"region": ["urban", "coastal"]}, "min_group_size": 5},
    {"attributes": ["region", "age_band"]},  # an attribute no event carries: everything left out
], ids=["every-group", "configured-groups", "unlogged-attribute"])
def test_fairness_documents_are_identical_on_duckdb_and_elasticsearch(store: DuckDBStore,
                                                                      fairness: dict[str, Any]) -> None:
    cluster = FakeCluster.from_duckdb(store.con)
    embedded = _documents(store, 1, fairness)
    with FakeServer(cluster) as server:
        remote = _documents(ElasticsearchStore(connect(server.url)), 1, fairness)
        page_requests = [r for r in server.requests if "prediction" in r.path]
    assert remote.keys() == embedded.keys() and embedded
    for key, doc in embedded.items():
        other = remote[key]
        assert other.id == doc.id, key
        assert other.value == (None if doc.value is None else pytest.approx(doc.value, rel=1e-12, abs=1e-15)), key
        assert (other.status, other.n_current) == (doc.status, doc.n_current), key
        assert other.details.keys() == doc.details.keys(), key
        for name, value in doc.details.items():
            assert other.details[name] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value)
    assert page_requests  # the documents really came through the Elasticsearch label join
    if fairness["attributes"] == ["region"]:
        assert embedded[("demographic_parity_difference", "region", "")].status == "alert"


def test_sample_rates_weigh_alike_on_both_stores(store: DuckDBStore) -> None:
    store.con.execute('UPDATE predictions SET "mlmon.sample_rate" = 0.25')
    fairness = {"attributes": ["region"]}
    embedded = _documents(store, 1, fairness)
    with FakeServer(FakeCluster.from_duckdb(store.con)) as server:
        remote = _documents(ElasticsearchStore(connect(server.url)), 1, fairness)
    key = ("demographic_parity_difference", "region", "")
    assert remote[key].n_current == embedded[key].n_current
    assert sum(remote[("selection_rate", "region", g)].n_current for g in ("urban", "rural")) == 8000
