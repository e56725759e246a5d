"""The sufficient statistics: validation, binning convention, and that windows add up."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmon.core.perf_stats import (AttributionSums, ClassificationStats, ConfusionCounts, GroupCounts, Histogram,
                              PredictedScoreBins, RegressionSums, ScoreBins, add_features, add_groups, bin_index,
                              uniform_edges)

EDGES = uniform_edges(20)
counts = st.integers(min_value=0, max_value=1000).map(float)
labels = st.sampled_from(["a", "b", "c", "d"])
pair_counts = st.dictionaries(st.tuples(labels, labels), counts, max_size=8)


def score_bins() -> st.SearchStrategy[ScoreBins]:
    column = st.lists(counts, min_size=20, max_size=20)
    return st.builds(lambda p, q, s: ScoreBins(EDGES, tuple(p), tuple(q), tuple(s)), column, column, column)


@given(pair_counts, pair_counts, pair_counts)
def test_confusion_counts_add_associatively_and_commutatively(a: dict, b: dict, c: dict) -> None:
    x, y, z = (ConfusionCounts.from_pairs(p) for p in (a, b, c))
    assert (x + y) + z == x + (y + z)
    assert x + y == y + x
    assert x + ConfusionCounts.empty() == x


@given(pair_counts, pair_counts)
def test_confusion_sum_equals_counts_of_the_union(a: dict, b: dict) -> None:
    union = {k: a.get(k, 0.0) + b.get(k, 0.0) for k in set(a) | set(b)}
    assert ConfusionCounts.from_pairs(a) + ConfusionCounts.from_pairs(b) == ConfusionCounts.from_pairs(union)


@settings(max_examples=40)
@given(score_bins(), score_bins(), score_bins())
def test_score_bins_add_associatively(x: ScoreBins, y: ScoreBins, z: ScoreBins) -> None:
    assert (x + y) + z == x + (y + z)
    assert x + ScoreBins.empty(EDGES) == x


# MAPE divides by the actual: keep actuals either zero or of a magnitude a real target has.
actuals = st.lists(st.floats(-1e3, 1e3).filter(lambda v: v == 0 or abs(v) > 1e-6), max_size=40)


@settings(max_examples=50)
@given(actuals, actuals, st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_regression_sums_of_parts_equal_sums_of_whole(a: list[float], b: list[float], shift_a: float,
                                                      shift_b: float) -> None:
    ya, yb = np.array(a), np.array(b)
    whole = RegressionSums.from_arrays(np.concatenate([ya, yb]), np.concatenate([ya, yb]) * 1.1 + 1, shift_a)
    parts = RegressionSums.from_arrays(ya, ya * 1.1 + 1, shift_a) + RegressionSums.from_arrays(yb, yb * 1.1 + 1,
                                                                                              shift_b)
    # The sum keeps the larger part's shift; compared around the whole's.
    parts = parts.with_shift(shift_a)
    for name in ("n", "sum_error", "sum_abs_error", "sum_sq_error", "sum_actual", "sum_actual_sq",
                 "sum_abs_pct_error", "n_nonzero_actual"):
        assert getattr(parts, name) == pytest.approx(getattr(whole, name), rel=1e-9, abs=1e-6), name


def test_bin_index_follows_numpy_histogram() -> None:
    values = np.array([0.0, 0.05, 0.049999, 0.5, 0.95, 1.0])
    expected = np.histogram(values, bins=np.array(EDGES))[0]
    assert np.array_equal(np.bincount(bin_index(values, EDGES), minlength=20), expected)


def test_classification_stats_merge_keeps_classes_scores_and_log_loss() -> None:
    first = ClassificationStats.from_arrays(["a", "b"], ["a", "a"], {"a": [0.9, 0.6]})
    second = ClassificationStats.from_arrays(["c", "b", "b"], ["c", "b", "b"], {"a": [0.1, 0.2, 0.3]},
                                             labelled=[True, True, False])
    merged = first + second
    assert merged.confusion.classes == ("a", "b", "c")
    assert merged.n_predictions == 5
    assert merged.confusion.total == 4
    assert merged.scores["a"].n_positive == 1 and merged.scores["a"].n_negative == 3
    assert merged.log_loss is not None and merged.log_loss.n == 4


def test_group_and_feature_sums_merge_over_the_union() -> None:
    a = {"x": GroupCounts(10, 5, 2, 1, 1, 2)}
    b = {"y": GroupCounts(4, 1, 1, 0, 0, 1), "x": GroupCounts(1, 1, 1, 0, 0, 0)}
    assert add_groups(a, b) == {"x": GroupCounts(11, 6, 3, 1, 1, 2), "y": GroupCounts(4, 1, 1, 0, 0, 1)}
    f = add_features({"x": AttributionSums(2, 3, 1, 5)}, {"z": AttributionSums(1, 1, -1, 1)})
    assert set(f) == {"x", "z"} and f["z"] == AttributionSums(1, 1, -1, 1)


@pytest.mark.parametrize("build, message", [
    (lambda: ScoreBins(EDGES, (1.0,) * 20, (0.0,) * 20, (0.0,) * 19), "bins"),
    (lambda: ScoreBins(EDGES, (-1.0,) + (0.0,) * 19, (0.0,) * 20, (0.0,) * 20), ">= 0"),
    (lambda: ScoreBins((0.0, 0.5, 0.5, 1.0), (0.0,) * 3, (0.0,) * 3, (0.0,) * 3), "strictly increasing"),
    (lambda: ScoreBins(EDGES, (float("nan"),) + (0.0,) * 19, (0.0,) * 20, (0.0,) * 20), "non-finite"),
    (lambda: ConfusionCounts(("b", "a"), ((1.0, 0.0), (0.0, 1.0))), "sorted"),
    (lambda: ClassificationStats(ConfusionCounts.from_pairs({("a", "a"): 5.0}), 3.0), "labelled"),
    (lambda: GroupCounts(5, 6, 0, 0, 0, 0), "n_predicted_positive"),
    (lambda: GroupCounts(5, 2, 3, 0, 0, 0), "tp \\+ fp"),
    (lambda: AttributionSums(2, 1.0, 3.0, 1.0), "exceeds"),
    (lambda: RegressionSums(1, 0, 0, 0, 0, 0, 0, 2), "n_nonzero_actual"),
])
def test_bad_statistics_are_refused_with_a_clear_error(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_windows_over_different_bins_do_not_add() -> None:
    with pytest.raises(ValueError, match="different bin edges"):
        ScoreBins.empty(EDGES) + ScoreBins.empty(uniform_edges(10))
    with pytest.raises(ValueError, match="different bin edges"):
        PredictedScoreBins.from_scores(np.array([0.2]), EDGES) + PredictedScoreBins.from_scores(np.array([0.2]),
                                                                                               uniform_edges(10))
    with pytest.raises(ValueError, match="different bin edges"):
        Histogram.from_values(np.array([1.0]), (0.0, 2.0)) + Histogram.from_values(np.array([1.0]), (0.0, 3.0))


def test_coarsen_regroups_bins_and_refuses_edges_it_does_not_have() -> None:
    fine = ScoreBins.from_scores(np.array([0.01, 0.12, 0.33, 0.97]), np.array([True, False, True, False]),
                                 uniform_edges(100))
    coarse = fine.coarsen(uniform_edges(10))
    assert coarse.positives == (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert coarse.score_sum[9] == pytest.approx(0.97)
    with pytest.raises(ValueError, match="subset"):
        fine.coarsen(uniform_edges(7))


def test_histogram_keeps_out_of_range_values() -> None:
    h = Histogram.from_values(np.array([-5.0, 0.0, 0.5, 1.0, 9.0]), (0.0, 0.5, 1.0))
    assert (h.underflow, h.counts, h.overflow, h.total) == (1.0, (1.0, 2.0), 1.0, 5.0)
