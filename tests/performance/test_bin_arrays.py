"""Binned statistics keep their checked values as arrays for the metric math (issue 19), without changing them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mlmon.core.labels import histogram_quantile, histogram_quantiles
from mlmon.core.perf_stats import CbpeStats, Histogram, PredictedScoreBins, ScoreBins, uniform_edges
from mlmon.metrics.cbpe import IsotonicCalibration, _binary_estimates, expected_confusion
from mlmon.metrics.performance import calibration_error


def test_arrays_hold_the_tuples_values_read_only_and_apart_from_the_callers_array() -> None:
    given = np.array([1.0, 2.0, 0.0, 4.0])
    bins = ScoreBins(uniform_edges(4), given, (0.0, 1.0, 2.0, 3.0), (0.5, 0.5, 0.0, 3.5))  # type: ignore[arg-type]
    given[0] = 99.0  # the caller's array changing later changes nothing
    pos, neg, ssum = bins.arrays
    assert bins.positives == (1.0, 2.0, 0.0, 4.0) and pos.tolist() == [1.0, 2.0, 0.0, 4.0]
    assert neg.tolist() == list(bins.negatives) and ssum.tolist() == list(bins.score_sum)
    with pytest.raises(ValueError, match="read-only"):
        pos[0] = 5.0
    counts, score_sum = PredictedScoreBins(uniform_edges(2), (3.0, 1.0), (0.3, 0.9)).arrays
    assert counts.dtype == np.float64 and score_sum.tolist() == [0.3, 0.9]
    assert Histogram(uniform_edges(2), (1, 2)).array.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="one value per bin"):
        ScoreBins(uniform_edges(2), ((1.0, 2.0),), (0.0,), (0.0,))  # type: ignore[arg-type]


def test_coarsened_bins_equal_bins_built_from_the_coarse_sums() -> None:
    rng = np.random.default_rng(3)
    scores, positive = rng.uniform(size=2_000), rng.uniform(size=2_000) < 0.4
    fine = ScoreBins.from_scores(scores, positive, uniform_edges(1000))
    coarse = fine.coarsen(uniform_edges(10))
    direct = ScoreBins.from_scores(scores, positive, uniform_edges(10))
    assert (coarse.positives, coarse.negatives) == (direct.positives, direct.negatives)
    assert coarse.score_sum == pytest.approx(direct.score_sum, rel=1e-12)  # sums in another order
    assert coarse.edges is fine.coarsen(uniform_edges(10)).edges  # one tuple per layout
    assert calibration_error(fine, 10).value == pytest.approx(calibration_error(coarse, 10).value, abs=1e-15)


def test_quantiles_of_one_pass_equal_each_quantile_alone() -> None:
    hist = Histogram.from_values(np.random.default_rng(5).exponential(3_600, 500), uniform_edges(50, 0, 20_000))
    levels = (0.0, 0.1, 0.5, 0.9, 0.99, 1.0)
    assert histogram_quantiles(hist, levels) == [histogram_quantile(hist, q) for q in levels]
    assert histogram_quantiles(Histogram.from_values(np.array([]), uniform_edges(3)), (0.5,)) == [None]
    with pytest.raises(ValueError, match="quantile level"):
        histogram_quantiles(hist, (0.5, 1.5))


def test_cbpe_auc_from_the_expected_bins_equals_the_auc_from_their_tuples() -> None:
    rng = np.random.default_rng(9)
    scores = rng.uniform(size=3_000)
    edges = uniform_edges(100)
    stats = CbpeStats.from_scores(scores, scores > 0.5, edges)
    calibration = IsotonicCalibration((0.0, 0.5, 1.0), (0.05, 0.4, 0.97))
    e = expected_confusion(stats, calibration)
    assert e.expected_bins is not None and e.expected_bins.positives == e.positives_by_bin
    from_tuples = _binary_estimates(replace(e, expected_bins=None), edges, 1.96, "1")
    assert _binary_estimates(e, edges, 1.96, "1") == from_tuples
