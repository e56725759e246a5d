"""Features far from zero (epoch seconds, 1e8 + N(0, 1)): the reference's std and the drift numbers hold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmon.core.reference import quantile_edges
from mlmon.core.stats import NumericAccumulator, NumericStats
from mlmon.metrics import drift as dm


@pytest.mark.parametrize("offset", [0.0, 1e6, 1e8, 1.7e9])
def test_std_of_offset_values_matches_numpy(offset: float) -> None:
    x = offset + np.random.default_rng(41).normal(0, 1, 50_000)
    edges = quantile_edges(x)
    acc = NumericAccumulator(edges)
    for part in np.array_split(x, 7):
        acc.add(part)
    for st in (NumericStats.from_values(x, edges), acc.result()):
        assert st.std == pytest.approx(float(np.std(x, ddof=1)), rel=1e-3)


def test_drift_of_an_epoch_seconds_feature_matches_scipy() -> None:
    rng = np.random.default_rng(42)
    ref = 1.7e9 + rng.normal(0, 3600, 50_000)
    cur = 1.7e9 + rng.normal(1800, 3600, 20_000)
    edges = quantile_edges(ref)
    r = dm.numeric_drift(NumericStats.from_values(ref, edges), NumericStats.from_values(cur, edges))
    exact_w = stats.wasserstein_distance(ref, cur)
    assert r.value("wasserstein") == pytest.approx(exact_w / ref.std(ddof=1), abs=2e-3)
    assert r.value("mean_shift") == pytest.approx((cur.mean() - ref.mean()) / ref.std(ddof=1), abs=2e-3)
