"""CBPE: calibration as plain arrays, binned estimation, closeness to realised metrics, failure under concept drift."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from mlmon.metrics.cbpe import IsotonicCalibration, estimate_binary, estimate_multiclass, estimation_error
from mlmon.metrics.performance import MetricSet, classification_metrics
from mlmon.core.perf_stats import CbpeStats, ClassificationStats, uniform_edges

EDGES = uniform_edges(1000)
Calibrated = Callable[..., tuple[np.ndarray, np.ndarray]]


@pytest.fixture
def calibration(calibrated: Calibrated) -> IsotonicCalibration:
    actual, scores = calibrated(50000)
    return IsotonicCalibration.fit(scores, actual)


def realised(actual: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> MetricSet:
    y = np.where(actual, "1", "0")
    pred = np.where(scores >= threshold, "1", "0")
    return classification_metrics(ClassificationStats.from_arrays(y, pred, {"1": scores}))


def test_calibration_reproduces_sklearn_predict_and_round_trips(rng: np.random.Generator) -> None:
    scores = rng.beta(2, 3, 5000)
    actual = rng.random(5000) < scores ** 1.5
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, actual)
    cal = IsotonicCalibration.fit(scores, actual)
    probe = np.concatenate([rng.random(1000), [-0.5, 0.0, 1.0, 2.0]])
    assert np.allclose(cal.apply(probe), iso.predict(probe), atol=1e-12)
    assert IsotonicCalibration.from_dict(cal.to_dict()) == cal


@pytest.mark.parametrize("scores, actual, message", [
    (np.array([0.1, 0.2]), np.array([True, True]), "both positive and negative"),
    (np.array([0.1, np.nan]), np.array([True, False]), "NaN"),
    (np.array([0.1, 0.2]), np.array([True]), "equal length"),
])
def test_calibration_refuses_unusable_references(scores: np.ndarray, actual: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IsotonicCalibration.fit(scores, actual)


def test_calibration_from_dict_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="'x' and 'y'"):
        IsotonicCalibration.from_dict({"x": [0.0]})
    with pytest.raises(ValueError, match="non-decreasing"):
        IsotonicCalibration.from_dict({"x": [0.0, 1.0], "y": [0.9, 0.1]})


def test_binned_estimate_matches_row_level_cbpe(calibrated: Calibrated,
                                                calibration: IsotonicCalibration) -> None:
    _, scores = calibrated(20000)
    pred = scores >= 0.5
    est = estimate_binary(CbpeStats.from_scores(scores, pred, EDGES), calibration, "1")
    p = calibration.apply(scores)  # row-level CBPE, as NannyML computes it
    tp, fp, fn = p[pred].sum(), (1 - p[pred]).sum(), p[~pred].sum()
    row_level = {"accuracy": (tp + (1 - p[~pred]).sum()) / len(p), "precision": tp / (tp + fp),
                 "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}
    for metric, expected in row_level.items():
        assert est.value(metric, "" if metric == "accuracy" else "1") == pytest.approx(expected, abs=1e-3), metric
    order = np.argsort(-scores)
    tpr = np.concatenate([[0], np.cumsum(p[order]) / p.sum()])
    fpr = np.concatenate([[0], np.cumsum(1 - p[order]) / (1 - p).sum()])
    assert est.value("roc_auc", "1") == pytest.approx(np.trapezoid(tpr, fpr), abs=2e-3)


def test_estimate_is_close_to_realised_when_scores_are_calibrated(calibrated: Calibrated,
                                                                  calibration: IsotonicCalibration) -> None:
    actual, scores = calibrated(20000)
    est = estimate_binary(CbpeStats.from_scores(scores, scores >= 0.5, EDGES), calibration, "1")
    real = realised(actual, scores)
    for metric, cls in (("accuracy", ""), ("precision", "1"), ("recall", "1"), ("f1", "1")):
        e = est.get(metric, cls)
        # n = 20000: sampling std ~0.004; 4 std plus 0.01 for the reference fit's own error.
        assert abs(e.value - real.value(metric, cls)) <= 4 * e.details["std"] + 0.01, metric
    assert est.value("roc_auc", "1") == pytest.approx(real.value("roc_auc", "1"), abs=0.02)


def test_band_covers_the_realised_value_most_of_the_time(calibrated: Calibrated,
                                                         calibration: IsotonicCalibration) -> None:
    hits = []
    for _ in range(40):
        actual, scores = calibrated(2000)
        est = estimate_binary(CbpeStats.from_scores(scores, scores >= 0.5, EDGES), calibration, "1")
        errors = estimation_error(est, realised(actual, scores))
        hits.append(errors.get("accuracy").details["within_band"])
    # A 95 % band; 40 windows: fewer than 32 hits would be a broken band, not bad luck (p < 1e-3).
    assert sum(hits) >= 32


def test_concept_drift_is_invisible_to_cbpe_and_shows_in_the_estimation_error(
        calibrated: Calibrated, calibration: IsotonicCalibration) -> None:
    actual, scores = calibrated(20000, concept_drift=True)
    est = estimate_binary(CbpeStats.from_scores(scores, scores >= 0.5, EDGES), calibration, "1")
    error = estimation_error(est, realised(actual, scores)).get("accuracy")
    assert abs(error.value) > 10 * est.get("accuracy").details["std"]
    assert error.details["within_band"] is False
    assert "no concept drift" in str(est.get("accuracy").details["assumption"])


def test_window_sub_statistics_add_up_to_the_same_estimate(calibrated: Calibrated,
                                                           calibration: IsotonicCalibration) -> None:
    _, scores = calibrated(6000)
    pred = scores >= 0.4
    whole = estimate_binary(CbpeStats.from_scores(scores, pred, EDGES), calibration, "1")
    parts = CbpeStats.from_scores(scores[:2500], pred[:2500], EDGES) + CbpeStats.from_scores(scores[2500:],
                                                                                          pred[2500:], EDGES)
    for a, b in zip(whole, estimate_binary(parts, calibration, "1")):
        assert a.value == pytest.approx(b.value, abs=1e-12)


def test_empty_window_is_insufficient_data(calibration: IsotonicCalibration) -> None:
    est = estimate_binary(CbpeStats.from_scores(np.array([]), np.array([], dtype=bool), EDGES), calibration, "1")
    assert all(v.value is None and v.missing == "insufficient_data" for v in est)


def test_nothing_predicted_positive_leaves_precision_undefined(calibrated: Calibrated,
                                                              calibration: IsotonicCalibration) -> None:
    _, scores = calibrated(500)
    est = estimate_binary(CbpeStats.from_scores(scores, np.zeros(500, dtype=bool), EDGES), calibration, "1")
    assert est.get("precision", "1").missing == "undefined"
    assert est.value("recall", "1") == 0.0


def test_multiclass_one_vs_rest_estimate_is_close_to_realised(rng: np.random.Generator) -> None:
    classes = ["a", "b", "c"]

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        proba = rng.dirichlet([1.0, 1.0, 1.0], n)  # true class probabilities: calibrated by construction
        actual = (rng.random((n, 1)) > proba.cumsum(axis=1)).sum(axis=1)
        return actual, proba

    ref_actual, ref_proba = sample(30000)
    calibrations = {c: IsotonicCalibration.fit(ref_proba[:, i], ref_actual == i) for i, c in enumerate(classes)}
    actual, proba = sample(20000)
    pred = proba.argmax(axis=1)
    stats = {c: CbpeStats.from_scores(proba[:, i], pred == i, EDGES) for i, c in enumerate(classes)}
    est = estimate_multiclass(stats, calibrations)
    assert est.value("accuracy") == pytest.approx(skm.accuracy_score(actual, pred),
                                                  abs=4 * est.get("accuracy").details["std"] + 0.01)
    assert est.value("f1", "macro") == pytest.approx(skm.f1_score(actual, pred, average="macro"), abs=0.02)
    assert est.value("roc_auc", "macro") == pytest.approx(
        skm.roc_auc_score(actual, proba, multi_class="ovr"), abs=0.02)
    with pytest.raises(ValueError, match="both statistics and a calibration"):
        estimate_multiclass({c: stats[c] for c in classes[:2]}, calibrations)
