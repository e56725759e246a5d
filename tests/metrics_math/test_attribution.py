"""Global importance and attribution drift from per-feature sums; nDCG as SageMaker Model Monitor defines it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn.metrics import ndcg_score

from mlmon.metrics.attribution import attribution_metrics, ndcg
from mlmon.core.perf_stats import AttributionSums, add_features


def sums_of(attributions: dict[str, np.ndarray]) -> dict[str, AttributionSums]:
    return {f: AttributionSums.from_values(v) for f, v in attributions.items()}


def test_importance_share_and_rank_by_hand() -> None:
    ms = attribution_metrics(sums_of({"age": np.array([1.0, -3.0]), "income": np.array([0.5, 0.5]),
                                      "zip": np.array([-1.0, 1.0])}))
    assert ms.value("importance", feature="age") == 2.0
    assert ms.value("importance_share", feature="age") == pytest.approx(2.0 / 3.5)
    assert ms.value("mean_attribution", feature="age") == -1.0
    assert [ms.value("importance_rank", feature=f) for f in ("age", "zip", "income")] == [1.0, 2.0, 3.0]


def test_sagemaker_college_admission_example() -> None:
    reference = {"sat": 0.70, "gpa": 0.50, "class_rank": 0.05}
    live = {"sat": 0.10, "gpa": 0.20, "class_rank": 0.70}
    dcg = 0.10 / math.log2(2) + 0.20 / math.log2(3) + 0.70 / math.log2(4)
    idcg = 0.70 / math.log2(2) + 0.20 / math.log2(3) + 0.10 / math.log2(4)
    assert ndcg(reference, live) == pytest.approx(dcg / idcg)
    assert ndcg(reference, live) < 0.9  # SageMaker's violation threshold
    assert ndcg(reference, reference) == pytest.approx(1.0)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0.0, 10.0)), min_size=2, max_size=12), st.integers(1, 12))
def test_ndcg_equals_sklearn_including_ties_and_top_k(rows: list[tuple[int, float]], k: int) -> None:
    reference = {f"f{i}": float(r) for i, (r, _) in enumerate(rows)}
    live = {f"f{i}": c for i, (_, c) in enumerate(rows)}
    got = ndcg(reference, live, k)
    if max(live.values()) == 0:
        assert got is None
        return
    expected = ndcg_score([list(live.values())], [list(reference.values())], k=k)
    assert got == pytest.approx(expected, abs=1e-12)


def test_attribution_drift_is_share_change_with_a_welch_z(rng: np.random.Generator) -> None:
    ref = {"a": rng.normal(0, 2.0, 4000), "b": rng.normal(0, 1.0, 4000)}
    cur = {"a": rng.normal(0, 1.0, 1500), "b": rng.normal(0, 2.0, 1500)}
    ms = attribution_metrics(sums_of(cur), sums_of(ref))
    imp_ref = {f: np.abs(v).mean() for f, v in ref.items()}
    imp_cur = {f: np.abs(v).mean() for f, v in cur.items()}
    drift = ms.get("attribution_drift", feature="a")
    expected = imp_cur["a"] / sum(imp_cur.values()) - imp_ref["a"] / sum(imp_ref.values())
    assert drift.value == pytest.approx(expected, abs=1e-12)
    welch = sps.ttest_ind(np.abs(cur["a"]), np.abs(ref["a"]), equal_var=False).statistic
    assert drift.details["z"] == pytest.approx(welch, rel=1e-9)
    assert drift.details["rank"] == 2 and drift.details["reference_rank"] == 1
    assert ms.value("importance_shift") == pytest.approx(abs(expected), abs=1e-12)
    assert ms.value("ranking_ndcg") < 0.9


def test_same_behaviour_gives_no_drift(rng: np.random.Generator) -> None:
    ref = {f: rng.normal(0, s, 20000) for f, s in (("a", 3.0), ("b", 2.0), ("c", 1.0))}
    cur = {f: rng.normal(0, s, 5000) for f, s in (("a", 3.0), ("b", 2.0), ("c", 1.0))}
    ms = attribution_metrics(sums_of(cur), sums_of(ref))
    assert ms.value("ranking_ndcg") == pytest.approx(1.0)
    assert ms.value("importance_shift") < 0.01
    assert all(abs(v.details["z"]) < 4 for v in ms if v.metric == "attribution_drift")


def test_a_model_output_rescale_is_not_drift(rng: np.random.Generator) -> None:
    ref = {"a": rng.normal(0, 3.0, 1000), "b": rng.normal(0, 1.0, 1000)}
    scaled = {f: 10 * v for f, v in ref.items()}
    ms = attribution_metrics(sums_of(scaled), sums_of(ref))
    assert ms.value("attribution_drift", feature="a") == pytest.approx(0.0, abs=1e-12)
    assert ms.get("attribution_drift", feature="a").details["importance_ratio"] == pytest.approx(10.0)


def test_features_appearing_or_vanishing_count_as_zero_importance() -> None:
    ref = sums_of({"a": np.array([1.0, 1.0]), "gone": np.array([1.0, 1.0])})
    cur = sums_of({"a": np.array([1.0, 1.0]), "new": np.array([3.0, 3.0])})
    ms = attribution_metrics(cur, ref)
    assert ms.value("attribution_drift", feature="gone") == pytest.approx(-0.5)
    assert ms.value("attribution_drift", feature="new") == pytest.approx(0.75)
    assert ms.get("attribution_drift", feature="new").details["reference_rank"] is None


def test_empty_or_all_zero_windows_are_insufficient_data() -> None:
    ms = attribution_metrics({"a": AttributionSums.empty()}, sums_of({"a": np.array([1.0])}))
    assert ms.get("importance", feature="a").missing == "insufficient_data"
    assert ms.get("ranking_ndcg").missing == "insufficient_data"
    zeros = attribution_metrics(sums_of({"a": np.zeros(3)}))
    assert zeros.get("importance_share", feature="a").missing == "undefined"


def test_windows_add_up(rng: np.random.Generator) -> None:
    values = {"a": rng.normal(0, 1, 300), "b": rng.normal(1, 2, 300)}
    whole = attribution_metrics(sums_of(values))
    parts = add_features(sums_of({f: v[:100] for f, v in values.items()}),
                         sums_of({f: v[100:] for f, v in values.items()}))
    for a, b in zip(whole, attribution_metrics(parts)):
        assert a.value == pytest.approx(b.value, rel=1e-12)
