"""Integer-valued (few distinct values) references: KS and Wasserstein against scipy for ANY current values.

A discrete reference gets one bin per reference value AND one bin per gap
between neighbouring values, so a current value between two reference values
(4.5 against a Poisson reference) never shares a bin with an integer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlmon.core.reference import build_from_frame, is_discrete, quantile_edges
from mlmon.core.stats import NumericStats
from mlmon.metrics import drift as dm

Gen = Callable[[np.random.Generator], np.ndarray]

#: name -> (reference, current); every reference here has few distinct values.
CASES: dict[str, tuple[Gen, Gen]] = {
    "poisson +0.5": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 20_000) + 0.5),
    "poisson -0.5": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 20_000) - 0.5),
    "poisson +1": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 20_000) + 1.0),
    "poisson +0.1": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 20_000) + 0.1),
    "poisson -0.9": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 20_000) - 0.9),
    "poisson, no drift": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 20_000) * 1.0),
    "integers and non-integers mixed": (
        lambda r: r.poisson(4, 50_000) * 1.0,
        lambda r: np.concatenate([r.poisson(4, 10_000) * 1.0, r.normal(4, 2, 10_000)])),
    "half the window +0.3": (
        lambda r: r.poisson(4, 50_000) * 1.0,
        lambda r: np.concatenate([r.poisson(4, 10_000) * 1.0, r.poisson(4, 10_000) + 0.3])),
    "offset 1e6 + integers, +0.5": (lambda r: 1e6 + r.poisson(4, 50_000), lambda r: 1e6 + r.poisson(4, 20_000) + 0.5),
    "offset 1e6 + integers, mixed": (
        lambda r: 1e6 + r.poisson(4, 50_000),
        lambda r: 1e6 + np.concatenate([r.poisson(4, 10_000) * 1.0, r.normal(4, 2, 10_000)])),
    "ratings 1..5 vs uniform 0..6": (lambda r: r.integers(1, 6, 50_000) * 1.0, lambda r: r.uniform(0, 6, 20_000)),
    "half-steps, shifted +0.25": (lambda r: r.integers(0, 20, 50_000) / 2,
                                  lambda r: r.integers(0, 20, 20_000) / 2 + 0.25),
    "dithered integers (integer + uniform 0..1)": (
        lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 20_000) + r.uniform(0, 1, 20_000)),
    "floats against integers": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.normal(4.3, 2, 20_000)),
    "small window +0.5": (lambda r: r.poisson(4, 50_000) * 1.0, lambda r: r.poisson(4, 600) + 0.5),
    "offset 1e6 + integers, +0.5, a million rows": (
        lambda r: 1e6 + r.poisson(4, 50_000), lambda r: 1e6 + r.poisson(4, 1_000_000) + 0.5),
    "wide poisson (~100 values) +0.5": (lambda r: r.poisson(400, 50_000) * 1.0, lambda r: r.poisson(400, 20_000) + 0.5),
}


def _drift(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, float]:
    edges = quantile_edges(ref)
    assert is_discrete(ref, edges)
    result = dm.numeric_drift(NumericStats.from_values(ref, edges), NumericStats.from_values(cur, edges),
                              discrete=True)
    ks, w = result.value("ks"), result.get("wasserstein").details["wasserstein_raw"]
    assert ks is not None and isinstance(w, float)
    return ks, w, float(np.std(ref, ddof=1))


@pytest.mark.parametrize("case", sorted(CASES))
def test_discrete_reference_matches_scipy_on_any_current_values(case: str) -> None:
    rng = np.random.default_rng(sum(map(ord, case)))
    ref_gen, cur_gen = CASES[case]
    ref, cur = ref_gen(rng), cur_gen(rng)
    ks, w, std = _drift(ref, cur)
    assert ks == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-3)
    assert w == pytest.approx(stats.wasserstein_distance(ref, cur), abs=2e-3 * std)


def test_a_half_unit_shift_of_a_poisson_feature_is_seen_in_both_directions() -> None:
    rng = np.random.default_rng(11)
    ref = rng.poisson(4, 50_000).astype(float)
    for shift in (0.5, -0.5):
        ks, w, std = _drift(ref, rng.poisson(4, 20_000) + shift)
        assert ks > 0.15 and w / std > 0.2  # was KS 0.007, W 0.011 sd: "ok"


def test_discrete_edges_give_each_value_and_each_gap_its_own_bin_at_most_twice_the_edges() -> None:
    ref = np.array([0.0, 1, 1, 2, 4, 4, 4])
    edges = quantile_edges(ref)
    # The grid 0..4, its hole (3) included, each point followed by the next double: 2 edges per point.
    assert edges == tuple(x for v in range(5) for x in (float(v), float(np.nextafter(float(v), np.inf))))
    counts = NumericStats.from_values(np.array([0.0, 0.5, 1.0, 1.0, 3.0, 4.0, 4.0 + 1e-9]), edges).counts
    # bins: <0 | {0} | (0,1) | {1} | (1,2) | {2} | (2,3) | {3} | (3,4) | {4} | >4
    assert counts == (0, 1, 1, 2, 0, 0, 0, 1, 0, 1, 1)
    # Reference values sit alone in their bins: the reference has no mass in any gap bin.
    assert NumericStats.from_values(ref, edges).counts == (0, 1, 0, 2, 0, 1, 0, 0, 0, 3, 0)


def test_values_off_a_grid_get_no_extra_points_and_the_edge_count_stays_bounded() -> None:
    ref = np.array([0.0, 0.3, 1.7, 2.0])
    assert quantile_edges(ref)[::2] == (0.0, 0.3, 1.7, 2.0)
    rng = np.random.default_rng(13)
    wide = rng.poisson(400, 50_000).astype(float)
    assert len(quantile_edges(wide)) <= 2 * (wide.max() - wide.min() + 1)
    sparse = np.array([0.0, 1.0, 5_000.0])  # a grid of 5001 points: more than the bins, so no holes filled
    assert quantile_edges(sparse)[::2] == (0.0, 1.0, 5_000.0)


def test_profiles_built_from_frames_flag_the_new_edges_as_discrete() -> None:
    rng = np.random.default_rng(12)
    frame = pd.DataFrame({"visits": rng.poisson(4, 20_000).astype(float), "spend": rng.normal(0, 1, 20_000)})
    profile = build_from_frame(frame, "m", "1")
    assert profile.discrete == {"mlmon.features.numeric.visits"}
    visits = profile.numeric["mlmon.features.numeric.visits"]
    assert is_discrete(frame["visits"].to_numpy(), visits.edges)
    cur = rng.poisson(4, 5_000) + 0.5
    r = dm.numeric_drift(visits, NumericStats.from_values(cur, visits.edges), discrete=True)
    assert r.value("ks") == pytest.approx(stats.ks_2samp(frame["visits"], cur).statistic, abs=1e-3)
