"""Explainability per segment: explanations take their prediction's segment (joined by prediction id).

Checked on the embedded store against the logged attributions of each region,
then on Elasticsearch (the fake cluster of ``tests.performance.fake_es`` answers
the id pages and the aggregations): the same documents, whatever the page size.
The segment request bodies are type-checked with the others in test_es_explain.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from mlmon.config import model as cfg
from mlmon.core.documents import MetricDocument
from mlmon.stores.elasticsearch.client import connect
from mlmon.jobs.explainability import explainability_job, reference_from_frame, save_reference
from mlmon.config.model import explainability_config
from mlmon.core.perf_stats import AttributionSums
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon.stores.elasticsearch.explain import ElasticsearchExplainStore
from mlmon.stores.elasticsearch.store import ElasticsearchStore
from tests.explainability.scenario import FEATURES, HOUR, MODEL, T0, VERSION, Scenario
from tests.performance.fake_es import FakeCluster
from tests.support.fake_http import FakeServer

SEGMENTS = {"region": ["urban", "rural"]}
DocKey = tuple[str, str, str, str]


def _window(hour: int) -> tuple[datetime, datetime]:
    return T0 + hour * HOUR, T0 + (hour + 1) * HOUR


def _model(**explainability: Any) -> cfg.ModelConfig:
    return cfg.parse({"models": {MODEL: {"version": VERSION, "explainability": explainability}}}).models[0]


def _run(store: Any, hour: int) -> dict[DocKey, MetricDocument]:
    job = explainability_job(store, _model(segments=SEGMENTS, min_explanations=50), "run-1")
    assert job is not None
    return {(d.metric, d.feature, d.segment_field, d.segment_value): d for d in job.run(*_window(hour))}


def test_segment_sums_equal_the_logged_attributions_of_the_segment(store: DuckDBStore, scene: Scenario) -> None:
    backend = store.explain_queries()
    rows = scene.explanations[scene.explanations["hour"] == 1]
    for region in ("urban", "rural"):
        sums = backend.attribution_sums(MODEL, *_window(1), version=VERSION, segment=("region", region))
        for f in FEATURES:
            expected = AttributionSums.from_values(rows.loc[rows["region"] == region, f].to_numpy())
            assert sums[f].n == expected.n > 0
            assert (sums[f].sum_abs, sums[f].sum, sums[f].sum_sq) == pytest.approx(
                (expected.sum_abs, expected.sum, expected.sum_sq), rel=1e-12)
    assert backend.attribution_sums(MODEL, *_window(1), segment=("region", "coastal"))["income"].n == 0
    assert backend.attribution_sums(MODEL, *_window(1), segment=("age_band", "young"))["income"].n == 0


def test_only_the_drifted_segment_shows_attribution_drift(store: DuckDBStore, scene: Scenario) -> None:
    save_reference(store.explain_queries(), reference_from_frame(scene.reference_attributions, MODEL, VERSION))
    docs = _run(store, 1)
    rows = scene.explanations[scene.explanations["hour"] == 1]
    for region in ("urban", "rural"):
        importance = rows.loc[rows["region"] == region, list(FEATURES)].abs().mean()
        for f in FEATURES:
            doc = docs[("importance", f, "region", region)]
            assert doc.value == pytest.approx(importance[f], rel=1e-12)
        count = docs[("explanations", "", "region", region)]
        assert count.value == (rows["region"] == region).sum()
    # The sensor fault inflates rural incomes only: rural attributions drift, urban ones do not.
    assert docs[("attribution_drift", "income", "region", "rural")].status == "alert"
    assert docs[("attribution_drift", "income", "region", "urban")].status == "ok"
    all_traffic = docs[("attribution_drift", "income", "", "")]
    segment_ids = {d.id for k, d in docs.items() if k[2]}
    assert all_traffic.id not in segment_ids and len(segment_ids) == len([k for k in docs if k[2]])


def test_elasticsearch_gives_the_same_segment_documents(store: DuckDBStore, scene: Scenario) -> None:
    save_reference(store.explain_queries(), reference_from_frame(scene.reference_attributions, MODEL, VERSION))
    embedded = _run(store, 1)
    reference = store.explain_queries().get_attribution_reference(MODEL, VERSION)
    assert reference is not None
    cluster = FakeCluster.from_duckdb(store.con)
    with FakeServer(cluster) as server:
        es_store = ElasticsearchStore(connect(server.url))
        backend = es_store.explain_queries()
        backend.get_attribution_reference = lambda *a, **k: reference  # the reference index is not what is tested
        job = explainability_job(es_store, _model(segments=SEGMENTS, min_explanations=50), "run-1")
        assert job is not None
        job.backend = backend
        remote = {(d.metric, d.feature, d.segment_field, d.segment_value): d for d in job.run(*_window(1))}
        # Small pages: the sums of many id pages add up to the same numbers.
        paged = ElasticsearchExplainStore(connect(server.url), page_size=97).attribution_sums(
            MODEL, *_window(1), version=VERSION, features=FEATURES, segment=("region", "rural"))
    assert remote.keys() == embedded.keys()
    for key, doc in embedded.items():
        other = remote[key]
        assert other.id == doc.id and other.status == doc.status, key
        assert other.value == (None if doc.value is None else pytest.approx(doc.value, rel=1e-9)), key
    local = store.explain_queries().attribution_sums(MODEL, *_window(1), version=VERSION, features=FEATURES,
                                                    segment=("region", "rural"))
    for f in FEATURES:
        assert paged[f].n == local[f].n and paged[f].sum_abs == pytest.approx(local[f].sum_abs, rel=1e-12)


@pytest.mark.parametrize(("segments", "message"), [
    (["region"], "expected a mapping segment name"),
    ({"region": []}, "non-empty list"),
    ({"region": ["urban", "urban"]}, "listed twice"),
    ({"bad.name": ["x"]}, "segment names use letters"),
])
def test_bad_segments_are_refused_with_the_key(segments: Any, message: str) -> None:
    with pytest.raises(cfg.ConfigError, match=message) as err:
        explainability_config(_model(segments=segments))
    assert "explainability.segments" in str(err.value)


def test_the_documents_of_a_window_share_one_computed_at_across_segments(store: DuckDBStore) -> None:
    docs = _run(store, 1)
    assert {d.segment_value for d in docs.values()} >= {"", "urban", "rural"}
    assert len({d.computed_at for d in docs.values()}) == 1
