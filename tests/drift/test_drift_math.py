"""Drift math from counts, checked against scipy on the raw samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlmon.metrics import drift as dm
from mlmon.metrics.results import MetricSet, MetricValue
from mlmon.metrics.thresholds import adjust
from mlmon.core.reference import is_discrete, quantile_edges
from mlmon.core.stats import CategoryStats, NumericStats

CASES = {
    "clean": (lambda r: r.normal(0, 1, 100_000), lambda r: r.normal(0, 1, 30_000)),
    "small shift": (lambda r: r.normal(0, 1, 100_000), lambda r: r.normal(0.2, 1, 30_000)),
    "shift+scale": (lambda r: r.normal(0, 1, 100_000), lambda r: r.normal(1.0, 1.5, 30_000)),
    "far below": (lambda r: r.normal(0, 1, 100_000), lambda r: r.normal(-3, 1, 30_000)),
    "skewed": (lambda r: r.lognormal(0, 1, 100_000), lambda r: r.lognormal(0.4, 1, 30_000)),
    "integers": (lambda r: r.poisson(3, 100_000).astype(float), lambda r: r.poisson(3.6, 30_000).astype(float)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_binned_ks_and_wasserstein_match_scipy_on_raw_samples(case: str) -> None:
    rng = np.random.default_rng(abs(hash(case)) % 1000)
    ref_gen, cur_gen = CASES[case]
    ref, cur = ref_gen(rng), cur_gen(rng)
    edges = quantile_edges(ref)
    result = dm.numeric_drift(NumericStats.from_values(ref, edges), NumericStats.from_values(cur, edges),
                              discrete=is_discrete(ref, edges))
    assert result.value("ks") == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-3)
    exact_w = stats.wasserstein_distance(ref, cur)
    assert result.get("wasserstein").details["wasserstein_raw"] == pytest.approx(exact_w, abs=2e-3 * ref.std())
    assert result.value("wasserstein") == pytest.approx(exact_w / ref.std(ddof=1), abs=2e-3)


def test_ks_pvalue_is_scipys_asymptotic_one() -> None:
    # On integer data the binned D is exact, so the p-value must be scipy's to rounding.
    rng = np.random.default_rng(3)
    ref, cur = rng.poisson(20, 50_000).astype(float), rng.poisson(20.1, 20_000).astype(float)
    edges = quantile_edges(ref)
    r = dm.numeric_drift(NumericStats.from_values(ref, edges), NumericStats.from_values(cur, edges), discrete=True)
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert r.value("ks") == pytest.approx(exact.statistic, abs=1e-12)
    # Every value of the field carries the field's test (KS) and its p-value.
    assert {(v.test, v.p_value) for v in r} == {("ks", r.get("ks").p_value)}
    assert r.get("ks").p_value == pytest.approx(exact.pvalue, rel=1e-6)
    assert r.get("ks").n == cur.size and r.get("ks").n_reference == ref.size


def test_discrete_features_get_one_edge_per_value_and_exact_ks() -> None:
    rng = np.random.default_rng(4)
    ref = rng.integers(0, 5, 10_000).astype(float)
    edges = quantile_edges(ref)
    points = [a for a, b in zip(edges, edges[1:]) if b == np.nextafter(a, np.inf)]
    assert points == [0.0, 1.0, 2.0, 3.0, 4.0] and len(edges) <= 2 * 1001  # each with the edge just above it
    assert is_discrete(ref, edges)
    cur = rng.integers(1, 6, 3_000).astype(float)  # 5 was never seen: it lands in the upper open bin
    c = NumericStats.from_values(cur, edges)
    assert c.counts[-1] == int((cur == 5).sum())
    r = dm.numeric_drift(NumericStats.from_values(ref, edges), c, discrete=True)
    assert r.value("ks") == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert r.get("ks").details["wasserstein_raw"] == pytest.approx(stats.wasserstein_distance(ref, cur), abs=1e-9)


def test_ties_in_continuous_data_do_not_duplicate_edges() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([np.zeros(50_000), rng.normal(0, 1, 50_000)])  # half the mass on one value
    edges = quantile_edges(x)
    assert np.all(np.diff(edges) > 0)
    counts = NumericStats.from_values(x, edges).counts
    zero_bin = int(np.searchsorted(edges, 0.0, side="right"))
    assert edges[zero_bin - 1] == 0.0 and counts[zero_bin] >= 50_000


def test_chi_square_is_the_contingency_test_on_the_raw_table() -> None:
    rng = np.random.default_rng(6)
    ref = rng.choice(list("abcd"), 20_000, p=[0.4, 0.3, 0.2, 0.1])
    cur = np.concatenate([rng.choice(list("abcd"), 3_000, p=[0.35, 0.3, 0.25, 0.1]), ["zz"] * 50])
    r = dm.categorical_drift(CategoryStats.from_values(ref), CategoryStats.from_values(cur))
    table = pd.crosstab(np.r_[np.zeros(ref.size), np.ones(cur.size)],
                        np.where(np.isin(np.r_[ref, cur], list("abcd")), np.r_[ref, cur], "__other__"))
    expected = stats.chi2_contingency(table.to_numpy())
    assert r.value("chi_square") == pytest.approx(expected.statistic, rel=1e-12)
    assert r.get("chi_square").p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert {v.test for v in r} == {"chi_square"} and len({v.p_value for v in r}) == 1
    props_r = table.iloc[0] / table.iloc[0].sum()
    props_c = table.iloc[1] / table.iloc[1].sum()
    assert r.value("l_infinity") == pytest.approx(float((props_r - props_c).abs().max()))
    assert r.value("jensen_shannon") == pytest.approx(distance.jensenshannon(props_r, props_c, base=2))
    assert r.get("l_infinity").details["largest_change"] == str((props_r - props_c).abs().idxmax())


def test_goodness_of_fit_would_inflate_what_the_contingency_test_does_not() -> None:
    # Same proportions, windows of very different sizes: homogeneity holds exactly.
    ref = CategoryStats(counts={"a": 600, "b": 400})
    cur = CategoryStats(counts={"a": 60_000, "b": 40_000})
    r = dm.categorical_drift(ref, cur)
    assert r.value("chi_square") == pytest.approx(0.0, abs=1e-9) and r.get("chi_square").p_value == pytest.approx(1.0)


def test_psi_js_hellinger_by_their_formulas() -> None:
    p, q = np.array([50.0, 30, 20, 0]), np.array([40.0, 30, 20, 10])
    pp, qq = p / p.sum(), q / q.sum()
    floor_p, floor_q = np.maximum(pp, 1e-4), np.maximum(qq, 1e-4)
    assert dm.psi(p, q) == pytest.approx(np.sum((floor_q - floor_p) * np.log(floor_q / floor_p)))
    assert dm.jensen_shannon(p, q) == pytest.approx(distance.jensenshannon(pp, qq, base=2))
    assert dm.hellinger(p, q) == pytest.approx(np.sqrt(0.5 * np.sum((np.sqrt(pp) - np.sqrt(qq)) ** 2)))


def test_numeric_drift_is_one_metric_set_in_registry_order_with_the_fields_details() -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(0, 1, 20_000), rng.normal(0.3, 1, 5_000)
    edges = quantile_edges(ref)
    r = dm.numeric_drift(NumericStats.from_values(ref, edges), NumericStats.from_values(cur, edges), feature="age")
    assert isinstance(r, MetricSet) and all(isinstance(v, MetricValue) for v in r)
    assert [v.metric for v in r] == ["wasserstein", "ks", "psi", "jensen_shannon", "hellinger", "mean_shift"]
    assert {v.feature for v in r} == {"age"} and all(v.value is not None and not v.missing for v in r)
    details = r.get("psi", feature="age").details
    assert list(details) == ["wasserstein_raw", "wasserstein_error_bound", "reference_std", "reference_mean",
                             "current_mean", "bins", "coarse_bins"]
    assert 0 <= details["wasserstein_error_bound"] < 2e-3  # sd 1: within the README's bound
    assert details["bins"] == len(edges) + 1 and details["coarse_bins"] in range(10, dm.COARSE_BINS + 1)
    assert r.value("mean_shift", feature="age") == pytest.approx((cur.mean() - ref.mean()) / ref.std(ddof=1))
    rc, cc = dm.coarsen(NumericStats.from_values(ref, edges).counts_array(),
                        NumericStats.from_values(cur, edges).counts_array())
    assert r.value("psi", feature="age") == dm.psi(rc, cc)
    assert r.value("hellinger", feature="age") == dm.hellinger(rc, cc)


def test_an_empty_sample_makes_every_value_insufficient_data_instead_of_nan() -> None:
    edges = (0.0, 1.0, 2.0)
    ref = NumericStats.from_values(np.array([0.5, 1.5, 1.7]), edges)
    empty = NumericStats.from_values(np.array([np.nan, np.nan]), edges)
    for result in (dm.numeric_drift(ref, empty), dm.numeric_drift(empty, ref),
                   dm.categorical_drift(CategoryStats(counts={"a": 3}), CategoryStats(counts={}, missing=4))):
        assert len(result) > 0
        for v in result:
            assert v.value is None and v.missing == "insufficient_data" and v.p_value is None
            assert v.details == {"reason": "no values in one of the samples"} and v.test in ("ks", "chi_square")
    assert dm.numeric_drift(ref, empty).get("ks").n == 0 and dm.numeric_drift(ref, empty).get("ks").n_reference == 3


def test_wasserstein_against_a_constant_reference_is_undefined_not_infinite() -> None:
    edges = (5.0, np.nextafter(5.0, np.inf))
    ref = NumericStats.from_values(np.full(100, 5.0), edges)
    same = dm.numeric_drift(ref, NumericStats.from_values(np.full(10, 5.0), edges), discrete=True)
    assert same.value("wasserstein") == 0.0 and same.value("mean_shift") == 0.0
    moved = dm.numeric_drift(ref, NumericStats.from_values(np.full(10, 6.0), edges), discrete=True)
    w = moved.get("wasserstein")
    assert w.value is None and w.missing == "undefined" and "constant reference" in w.note
    assert w.details["wasserstein_raw"] == pytest.approx(1.0) and moved.value("mean_shift") == 0.0


def test_data_quality_shares() -> None:
    edges = (0.0, 1.0, 2.0)
    cur = NumericStats.from_values(np.array([-1.0, 0.5, 1.5, 2.5, 3.0, np.nan]), edges)
    assert dm.out_of_range_share(cur) == pytest.approx(3 / 5)
    assert dm.missing_share(cur) == pytest.approx(1 / 6)
    share, names = dm.unseen_categories(CategoryStats(counts={"a": 5}), CategoryStats(counts={"a": 2, "x": 1}, other=1))
    assert share == pytest.approx(0.5) and names == ["x"]


def test_holm_adjustment_matches_the_textbook_example() -> None:
    # Holm (1979): sorted p = .01 .04 .03 .005 -> adjusted 4*.005, 3*.01, max(2*.03, .03), max(.04, .06)
    assert adjust([0.01, 0.04, 0.03, 0.005], "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust([0.01, 0.04], "bh") == pytest.approx(list(stats.false_discovery_control([0.01, 0.04])))
