"""Binned statistics keep their checked values as arrays for the metric math (issue 19), without changing them."""

from __future__ import annotations

import numpy as np
import pytest

from mlmon.core.labels import histogram_quantile, histogram_quantiles
from mlmon.core.perf_stats import (CbpeStats, ClassificationStats, ConfusionCounts, Histogram, PredictedScoreBins,
                                   ScoreBins, uniform_edges)
from mlmon.metrics.cbpe import IsotonicCalibration, estimate_binary, estimate_binary_of
from mlmon.metrics import cbpe as cbpe_metrics, performance as performance_metrics
from mlmon.metrics.performance import (calibration_error, calibration_errors, classification_metrics,
                                       classification_metrics_of)


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


def _windows(rng: np.random.Generator, edges: tuple[float, ...]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Scores, actual positives and weights of awkward windows: empty, one row, one class only, all in one bin,
    integer-valued weights, and ordinary ones."""
    out = [(np.array([]), np.array([], bool), np.array([])), (np.array([0.3]), np.array([True]), np.array([2.0])),
           (rng.uniform(size=40), np.zeros(40, bool), np.ones(40)), (np.full(30, 0.55), rng.random(30) < 0.5, np.ones(30))]
    for n in (200, 3_000):
        s = rng.uniform(size=n)
        out.append((s, rng.random(n) < s, rng.choice([1.0, 4.0, 10.0], n)))
    return out


@pytest.mark.parametrize("rows_per_pass", [64, 4])
def test_score_metrics_of_many_windows_equal_each_window_alone(rows_per_pass: int,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(performance_metrics, "ROWS_PER_PASS", rows_per_pass)  # 4: the windows take two passes
    monkeypatch.setattr(cbpe_metrics, "ROWS_PER_PASS", rows_per_pass)
    rng = np.random.default_rng(9)
    edges = uniform_edges(1000)
    windows = _windows(rng, edges)
    stats = [ClassificationStats(ConfusionCounts.from_pairs({("1", "1"): float(len(s))}) if len(s) else
                                 ConfusionCounts.from_pairs({}), float(len(s)),
                                 {"1": ScoreBins.from_scores(s, y, edges, w)}) for s, y, w in windows]
    together = classification_metrics_of(stats)
    assert together == [classification_metrics(st) for st in stats]
    assert {mv.missing for ms in together for mv in ms if mv.metric == "roc_auc"} == {"", "insufficient_data",
                                                                                      "undefined"}
    cbpe = [CbpeStats.from_scores(s, s > 0.5, edges) for s, _, _ in windows]
    calibration = IsotonicCalibration((0.0, 0.5, 1.0), (0.05, 0.4, 0.97))
    assert estimate_binary_of(cbpe, calibration, "1") == [estimate_binary(c, calibration, "1") for c in cbpe]


def test_score_metrics_of_many_windows_keep_each_layout_of_bins_apart() -> None:
    rng = np.random.default_rng(4)
    s = rng.uniform(size=500)
    y = rng.random(500) < s
    fine, coarse = (ClassificationStats(ConfusionCounts.from_pairs({("1", "1"): 500.0}), 500.0,
                                        {"1": ScoreBins.from_scores(s, y, uniform_edges(k))}) for k in (1000, 100))
    assert classification_metrics_of([fine, coarse]) == [classification_metrics(fine), classification_metrics(coarse)]
    with pytest.raises(ValueError, match="one layout"):
        calibration_errors([fine.scores["1"], ScoreBins.from_scores(s, y, uniform_edges(1000, 0.0, 2.0))], 10,
                           ["1", "1"])
    calibration = IsotonicCalibration((0.0, 0.5, 1.0), (0.05, 0.4, 0.97))
    apart = [CbpeStats.from_scores(s, s > 0.5, uniform_edges(100, 0.0, high)) for high in (1.0, 2.0)]
    with pytest.raises(ValueError, match="one layout"):   # equally many bins, other edges: not one estimate pass
        estimate_binary_of(apart, calibration, "1")
