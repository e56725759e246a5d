"""Explainability end to end on the embedded store: emitted, ingested, aggregated, compared by hand and with sklearn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from mlmon.config import model as cfg
from mlmon.core.documents import MetricDocument
from mlmon.jobs.explainability import (AttributionReference, ExplainabilityJobError,
                                      explainability_job, load_reference, reference_from_frame, save_reference)
from mlmon.core.perf_stats import AttributionSums
from mlmon.stores.duckdb.store import DuckDBStore
from tests.explainability.scenario import FEATURES, HOUR, MODEL, T0, VERSION, Scenario


def _window(hour: int) -> tuple[datetime, datetime]:
    return T0 + hour * HOUR, T0 + (hour + 1) * HOUR


def _model(**explainability: Any) -> cfg.ModelConfig:
    return cfg.parse({"models": {MODEL: {"version": VERSION, "explainability": explainability}}}).models[0]


def _run(store: DuckDBStore, hour: int, **explainability: Any) -> dict[tuple[str, str], MetricDocument]:
    job = explainability_job(store, _model(**explainability), "run-1")
    assert job is not None
    docs = job.run(*_window(hour))
    store.write_metrics(docs)
    return {(d.metric, d.feature): d for d in docs}


def _attributions(scene: Scenario, hour: int) -> pd.DataFrame:
    return scene.explanations[scene.explanations["hour"] == hour][list(FEATURES)]


def test_store_sums_equal_the_logged_attributions(store: DuckDBStore, scene: Scenario) -> None:
    sums = store.explain_queries().attribution_sums(MODEL, *_window(1), version=VERSION)
    assert set(sums) == set(FEATURES)
    for f in FEATURES:
        expected = AttributionSums.from_values(_attributions(scene, 1)[f].to_numpy())
        got = sums[f]
        assert got.n == expected.n == 1000
        for a, b in ((got.sum_abs, expected.sum_abs), (got.sum, expected.sum), (got.sum_sq, expected.sum_sq)):
            assert a == pytest.approx(b, rel=1e-12)


def test_importance_share_rank_and_ndcg_equal_hand_and_sklearn(store: DuckDBStore, scene: Scenario) -> None:
    save_reference(store.explain_queries(), reference_from_frame(scene.reference_attributions, MODEL, VERSION))
    docs = _run(store, 1, min_explanations=50)
    current = _attributions(scene, 1).abs().mean()
    reference = scene.reference_attributions.abs().mean()
    share, ref_share = current / current.sum(), reference / reference.sum()
    ranks = current.rank(ascending=False)
    for f in FEATURES:
        assert docs[("importance", f)].value == pytest.approx(current[f], rel=1e-12)
        assert docs[("importance_share", f)].value == pytest.approx(share[f], rel=1e-12)
        assert docs[("importance_rank", f)].value == ranks[f]
        assert docs[("mean_attribution", f)].value == pytest.approx(_attributions(scene, 1)[f].mean(), rel=1e-9)
        assert docs[("attribution_drift", f)].value == pytest.approx(share[f] - ref_share[f], rel=1e-9)
    expected_ndcg = ndcg_score([current[list(FEATURES)].to_numpy()], [reference[list(FEATURES)].to_numpy()])
    assert docs[("ranking_ndcg", "")].value == pytest.approx(expected_ndcg, rel=1e-12)
    assert docs[("importance_shift", "")].value == pytest.approx(0.5 * (share - ref_share).abs().sum(), rel=1e-12)
    assert all(d.family == "explainability" and d.segment_field == "" for d in docs.values())


def test_the_drifted_segment_raises_attribution_drift_where_it_drifted(store: DuckDBStore, scene: Scenario) -> None:
    ref = reference_from_frame(scene.reference_attributions, MODEL, VERSION, source="training shap")
    save_reference(store.explain_queries(), ref)
    clean, drifted = _run(store, 0, min_explanations=50), _run(store, 1, min_explanations=50)
    assert {d.status for d in clean.values()} <= {"ok", "no_threshold"}
    income = drifted[("attribution_drift", "income")]
    assert income.status == "alert" and income.value > 0.10
    assert income.details["p_adjusted"] < 0.01 and income.reference_id == ref.id
    assert income.threshold is not None and income.threshold.alert == 0.10
    # debt's share fell only because income's rose; its own importance did not move, so the gate keeps it quiet.
    debt = drifted[("attribution_drift", "debt")]
    assert debt.value < -0.05 and debt.status == "ok" and "not significant" in debt.details["status_reason"]
    assert drifted[("importance_shift", "")].status in ("warning", "alert")
    assert drifted[("ranking_ndcg", "")].status == "ok"  # the order income > debt > tenure held


def test_a_reference_window_is_built_once_stored_and_reused(store: DuckDBStore) -> None:
    window = {"from": "2025-03-01T00:00:00Z", "to": "2025-03-01T01:00:00Z"}
    docs = _run(store, 1, reference_window=window, min_explanations=50)
    assert docs[("attribution_drift", "income")].status == "alert"
    first = load_reference(store.explain_queries(), MODEL, VERSION)
    assert first is not None and first.source == "window:2025-03-01T00:00:00.000Z/2025-03-01T01:00:00.000Z"
    assert docs[("attribution_drift", "income")].reference_id == first.id
    _run(store, 1, reference_window=window, min_explanations=50)
    count = store.con.execute("SELECT count(*) FROM attribution_references").fetchone()
    assert count == (1,)  # content-addressed: rebuilding stores nothing new


def test_rerunning_a_window_overwrites_its_documents(store: DuckDBStore, scene: Scenario) -> None:
    save_reference(store.explain_queries(), reference_from_frame(scene.reference_attributions, MODEL, VERSION))
    first = _run(store, 1)
    stored = len(store.read_metrics(MODEL))
    _run(store, 1)
    assert len(store.read_metrics(MODEL)) == stored == len(first)


def test_without_a_reference_only_importance_is_reported(store: DuckDBStore) -> None:
    docs = _run(store, 0, min_explanations=50)
    assert {m for m, _ in docs} == {"importance", "importance_share", "importance_rank", "mean_attribution",
                                    "explanations"}
    assert docs[("explanations", "")].value == 1000


def test_few_explanations_or_another_method_give_insufficient_data(store: DuckDBStore, scene: Scenario) -> None:
    save_reference(store.explain_queries(), reference_from_frame(scene.reference_attributions, MODEL, VERSION))
    few = _run(store, 1, min_explanations=5000)
    assert few[("attribution_drift", "income")].status == "insufficient_data"
    assert few[("explanations", "")].status == "insufficient_data"
    shap_only = _run(store, 1, method="shap")  # the service logged "linear" explanations only
    assert shap_only[("explanations", "")].value == 0
    assert shap_only[("importance", "income")].status == "insufficient_data"
    assert shap_only[("ranking_ndcg", "")].value is None


def test_a_missing_configured_reference_is_a_clear_error(store: DuckDBStore) -> None:
    job = explainability_job(store, _model(reference="credit-2-attr-nope"), "run-1")
    assert job is not None
    with pytest.raises(ExplainabilityJobError, match="attribution reference 'credit-2-attr-nope' is not in the store"):
        job.run(*_window(0))


def test_reference_documents_round_trip_and_bad_frames_are_refused(scene: Scenario) -> None:
    ref = reference_from_frame(scene.reference_attributions.add_prefix("mlmon.attributions."), MODEL, VERSION)
    assert set(ref.features) == set(FEATURES) and ref.rows == 5000
    again = AttributionReference.from_document(ref.to_document())
    assert again.features == ref.features and again.id == ref.id and again.version == VERSION
    with pytest.raises(ExplainabilityJobError, match="not a feature name"):
        reference_from_frame(pd.DataFrame({"a.b": [1.0]}), MODEL, VERSION)
    with pytest.raises(ExplainabilityJobError, match="non-numbers"):
        reference_from_frame(pd.DataFrame({"a": ["x"]}), MODEL, VERSION)
    with pytest.raises(ExplainabilityJobError, match="zero or missing"):
        reference_from_frame(pd.DataFrame({"a": [0.0, np.nan]}), MODEL, VERSION)
    with pytest.raises(ExplainabilityJobError, match="not an attribution reference"):
        AttributionReference.from_document({"format": 1})
