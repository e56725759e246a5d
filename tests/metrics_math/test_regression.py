"""Realised regression metrics from sums, checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlmon.metrics.performance import regression_metrics
from mlmon.core.perf_stats import RegressionSums


def test_regression_metrics_match_sklearn(rng: np.random.Generator) -> None:
    actual = rng.gamma(3.0, 20.0, 5000)
    predicted = actual * rng.normal(1.05, 0.1, 5000) + rng.normal(0, 3, 5000)
    ms = regression_metrics(RegressionSums.from_arrays(actual, predicted, shift=60.0))
    assert ms.value("mae") == pytest.approx(skm.mean_absolute_error(actual, predicted), rel=1e-12)
    assert ms.value("rmse") == pytest.approx(np.sqrt(skm.mean_squared_error(actual, predicted)), rel=1e-12)
    assert ms.value("mape") == pytest.approx(skm.mean_absolute_percentage_error(actual, predicted), rel=1e-12)
    assert ms.value("r2") == pytest.approx(skm.r2_score(actual, predicted), rel=1e-10)
    assert ms.value("bias") == pytest.approx(float(np.mean(predicted - actual)), rel=1e-12)
    assert ms.value("bias") > 0  # predictions run 5 % high: positive bias means over-prediction


def test_mape_leaves_zero_actuals_out_and_counts_them(rng: np.random.Generator) -> None:
    actual = rng.normal(100, 10, 1000)
    actual[:7] = 0.0
    predicted = actual + rng.normal(0, 5, 1000)
    mape = regression_metrics(RegressionSums.from_arrays(actual, predicted)).get("mape")
    nonzero = actual != 0
    assert mape.value == pytest.approx(skm.mean_absolute_percentage_error(actual[nonzero], predicted[nonzero]))
    assert mape.details["n_zero_actual"] == 7 and mape.n == 993
    # sklearn divides by machine epsilon instead: seven zeros swamp everything else.
    assert skm.mean_absolute_percentage_error(actual, predicted) > 1e10


def test_r2_stays_accurate_for_large_alike_actuals_with_a_shift(rng: np.random.Generator) -> None:
    actual = 1e9 + rng.normal(0, 1, 2000)
    predicted = actual + rng.normal(0, 0.5, 2000)
    expected = skm.r2_score(actual, predicted)
    shifted = regression_metrics(RegressionSums.from_arrays(actual, predicted, shift=1e9)).value("r2")
    assert shifted == pytest.approx(expected, abs=1e-9)
    # Windows summed around different shifts still agree.
    a = RegressionSums.from_arrays(actual[:1000], predicted[:1000], shift=1e9)
    b = RegressionSums.from_arrays(actual[1000:], predicted[1000:], shift=1e9 + 0.3)
    assert regression_metrics(a + b).value("r2") == pytest.approx(expected, abs=1e-9)


def test_constant_actuals_make_r2_undefined_not_a_convention() -> None:
    ms = regression_metrics(RegressionSums.from_arrays(np.full(10, 3.0), np.arange(10.0)))
    r2 = ms.get("r2")
    assert r2.value is None and r2.missing == "undefined"
    assert ms.value("mae") == pytest.approx(skm.mean_absolute_error(np.full(10, 3.0), np.arange(10.0)))


def test_all_zero_actuals_make_mape_undefined() -> None:
    mape = regression_metrics(RegressionSums.from_arrays(np.zeros(4), np.ones(4))).get("mape")
    assert mape.value is None and mape.missing == "undefined" and mape.details["n_zero_actual"] == 4


def test_empty_window_is_insufficient_data() -> None:
    ms = regression_metrics(RegressionSums.empty())
    assert {v.metric for v in ms} == {"mae", "rmse", "mape", "r2", "bias"}
    assert all(v.value is None and v.missing == "insufficient_data" for v in ms)


def test_error_histogram_rides_along_and_merges(rng: np.random.Generator) -> None:
    edges = tuple(np.linspace(-3, 3, 7).tolist())
    actual = rng.normal(0, 1, 500)
    predicted = actual + rng.normal(0, 1.2, 500)
    a = RegressionSums.from_arrays(actual[:200], predicted[:200], error_edges=edges)
    b = RegressionSums.from_arrays(actual[200:], predicted[200:], error_edges=edges)
    details = regression_metrics(a + b).get("mae").details
    errors = predicted - actual
    inside = np.histogram(errors, bins=np.array(edges))[0]
    assert details["error_histogram_counts"] == inside.astype(float).tolist()
    assert details["error_histogram_underflow"] == float(np.sum(errors < -3))
    assert details["error_histogram_overflow"] == float(np.sum(errors > 3))


def test_non_finite_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        RegressionSums.from_arrays(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
