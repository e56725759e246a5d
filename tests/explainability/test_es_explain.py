"""The Elasticsearch side of explainability: bodies type-checked against Elastic's API types, and the store
tested at the HTTP edge against a fake that evaluates the aggregations as Elasticsearch documents them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlmon.config import model as cfg
from mlmon.stores.elasticsearch.client import connect
from mlmon.jobs.explainability import ExplainabilityJob, load_reference, reference_from_frame, \
    save_reference
from mlmon.config.model import explainability_config
from mlmon.core.perf_stats import AttributionSums
from mlmon.stores.protocols import StoreError
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon.stores.elasticsearch.explain import (ATTRIBUTION_REFERENCES_INDEX, ElasticsearchExplainStore,
                                     attribution_search_body, parse_attribution_response, segment_ids_body)
from mlmon.stores.elasticsearch.store import latest_reference_query
from tests.explainability.scenario import FEATURES, HOUR, MODEL, T0, VERSION, Scenario
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_http import FakeServer, Reply, Request, es_error, es_reply

START, END = T0 + HOUR, T0 + 2 * HOUR


def test_request_bodies_typecheck() -> None:
    assert_bodies_typecheck([
        ("search", attribution_search_body(MODEL, START, END, FEATURES, version=VERSION, method="shap"),
         "attribution search, version and method"),
        ("search", attribution_search_body(MODEL, START, END, ["only"]), "attribution search, one feature"),
        ("search", latest_reference_query(MODEL, VERSION, "credit-2-attr-x"), "attribution reference lookup"),
        ("search", segment_ids_body(MODEL, START, END, ("region", "rural"), None), "first page of segment ids"),
        ("search", segment_ids_body(MODEL, START, END, ("region", "rural"), "0190-x", 100), "later segment page"),
        ("search", attribution_search_body(MODEL, START, END, FEATURES, version=VERSION, prediction_ids=["a", "b"]),
         "attribution sums of a page of prediction ids"),
    ])


class FakeExplanations:
    """Explanation events as numpy columns; answers search (aggregations), field caps, index and reference search."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns
        self.docs: dict[str, dict[str, Any]] = {}
        self.searches: list[dict[str, Any]] = []

    def __call__(self, req: Request) -> Reply:
        if req.path.endswith("/_field_caps"):
            return es_reply({"indices": ["x"], "fields": {
                f"mlmon.attributions.{f}": {"double": {"type": "double", "metadata_field": False, "searchable": True,
                                                       "aggregatable": True}} for f in self.columns}})
        if req.path.startswith(f"/{ATTRIBUTION_REFERENCES_INDEX}/_doc/"):
            self.docs[req.path.rsplit("/", 1)[1]] = req.json
            return es_reply({"_index": ATTRIBUTION_REFERENCES_INDEX, "_id": req.path.rsplit("/", 1)[1],
                             "_version": 1, "result": "created", "_seq_no": 0, "_primary_term": 1,
                             "_shards": {"total": 1, "successful": 1, "failed": 0}})
        if req.path == f"/{ATTRIBUTION_REFERENCES_INDEX}/_search":
            hits = [{"_index": ATTRIBUTION_REFERENCES_INDEX, "_id": k, "_source": v} for k, v in self.docs.items()]
            return es_reply({"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits), "relation": "eq"},
                                                                      "hits": hits[:1]}})
        if req.path.endswith("/_search"):
            self.searches.append(req.json)
            return es_reply({"took": 2, "timed_out": False,
                             "hits": {"total": {"value": 1000, "relation": "eq"}, "max_score": None, "hits": []},
                             "aggregations": {n: self._agg(s) for n, s in req.json["aggs"].items()}})
        return es_error(404, "no_route", f"{req.method} {req.path}")

    def _values(self, field: str) -> np.ndarray:
        return self.columns.get(field.removeprefix("mlmon.attributions."), np.array([]))

    def _agg(self, spec: dict[str, Any]) -> dict[str, Any]:
        if "extended_stats" in spec:
            x = self._values(spec["extended_stats"]["field"])
            if x.size == 0:  # Elasticsearch's answer over no values
                return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0, "sum_of_squares": None}
            return {"count": int(x.size), "min": float(x.min()), "max": float(x.max()), "avg": float(x.mean()),
                    "sum": float(x.sum()), "sum_of_squares": float(np.dot(x, x))}
        x = self._values(spec["range"]["field"])
        buckets = []
        for r in spec["range"]["ranges"]:
            sel = np.ones(x.size, dtype=bool)
            if "from" in r:
                sel &= x >= r["from"]
            if "to" in r:
                sel &= x < r["to"]
            # Elasticsearch answers a sum over an empty bucket with 0.
            buckets.append({"key": r["key"], "doc_count": int(sel.sum()), "sum": {"value": float(x[sel].sum())}})
        return {"buckets": buckets}


def _columns(scene: Scenario, hour: int) -> dict[str, np.ndarray]:
    rows = scene.explanations[scene.explanations["hour"] == hour]
    return {f: rows[f].to_numpy() for f in FEATURES}


def test_sums_from_aggregations_equal_the_logged_attributions(scene: Scenario) -> None:
    fake = FakeExplanations(_columns(scene, 1))
    with FakeServer(fake) as server:
        sums = ElasticsearchExplainStore(connect(server.url)).attribution_sums(MODEL, START, END, version=VERSION,
                                                                              method="linear")
    assert set(sums) == set(FEATURES)  # discovered through field caps
    for f in FEATURES:
        expected = AttributionSums.from_values(fake.columns[f])
        assert sums[f].n == expected.n
        assert sums[f].sum_abs == pytest.approx(expected.sum_abs, rel=1e-12)
        assert sums[f].sum_sq == pytest.approx(expected.sum_sq, rel=1e-12)
    (body,) = fake.searches
    assert body["size"] == 0 and {"term": {"mlmon.explanation.method": "linear"}} in body["query"]["bool"]["filter"]


def test_the_job_gives_the_same_documents_on_both_stores(scene: Scenario, store: DuckDBStore) -> None:
    """Same explanations, two stores: every value equal (the sign split in ES vs abs() in SQL)."""
    model = cfg.parse({"models": {MODEL: {"version": VERSION, "explainability": {"min_explanations": 50}}}}).models[0]
    settings = explainability_config(model)
    assert settings is not None
    reference = reference_from_frame(scene.reference_attributions, MODEL, VERSION)
    fake = FakeExplanations(_columns(scene, 1))
    with FakeServer(fake) as server:
        es_backend = ElasticsearchExplainStore(connect(server.url))
        save_reference(es_backend, reference)
        assert load_reference(es_backend, MODEL, VERSION) is not None
        es_docs = ExplainabilityJob(es_backend, model, settings, "r").run(START, END)
    stored = fake.docs[reference.id]
    assert stored["reference"]["id"] == reference.id and stored["mlmon"]["model"]["name"] == MODEL
    save_reference(store.explain_queries(), reference)
    duck_docs = ExplainabilityJob(store.explain_queries(), model, settings, "r").run(START, END)
    assert [(d.id, d.status) for d in es_docs] == [(d.id, d.status) for d in duck_docs]
    for e, d in zip(es_docs, duck_docs):
        assert e.value == pytest.approx(d.value, rel=1e-9, abs=1e-12), (e.metric, e.feature)
    assert {d.metric for d in es_docs if d.status == "alert"} >= {"attribution_drift"}


def test_bad_answers_and_failures_raise_store_errors() -> None:
    with pytest.raises(StoreError, match="lacks the aggregation of 'income'"):
        parse_attribution_response({"aggregations": {}}, ["income"])

    def broken(req: Request) -> Reply:
        return es_error(500, "search_phase_execution_exception", "all shards failed")

    with FakeServer(broken) as server:
        with pytest.raises(StoreError, match="attribution search failed"):
            ElasticsearchExplainStore(connect(server.url)).attribution_sums(MODEL, START, END, features=["income"])


def test_an_empty_window_gives_empty_sums() -> None:
    response = {"aggregations": {"a0_stats": {"count": 0, "sum": 0.0, "sum_of_squares": None},
                                 "a0_sign": {"buckets": [{"key": "negative", "doc_count": 0, "sum": {"value": 0.0}},
                                                         {"key": "positive", "doc_count": 0,
                                                          "sum": {"value": 0.0}}]}}}
    assert parse_attribution_response(response, ["income"]) == {"income": AttributionSums.empty()}
