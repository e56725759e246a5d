"""Realised classification metrics from counts and score bins, checked against scikit-learn."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mlmon.metrics.performance import (MetricSet, average_precision, calibration_error, classification_metrics,
                                       confusion_matrix, roc_auc)
from mlmon.core.perf_stats import ClassificationStats, ScoreBins, uniform_edges

BinaryData = tuple[np.ndarray, np.ndarray]


def binary_window(actual: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> tuple[MetricSet, np.ndarray,
                                                                                            np.ndarray]:
    y = np.where(actual, "yes", "no")
    pred = np.where(scores >= threshold, "yes", "no")
    stats = ClassificationStats.from_arrays(y, pred, {"yes": scores})
    return classification_metrics(stats), y, pred


def test_binary_count_metrics_match_sklearn(binary_scores: Callable[[int], BinaryData]) -> None:
    actual, scores = binary_scores(5000)
    ms, y, pred = binary_window(actual, scores)
    assert ms.value("accuracy") == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=["no", "yes"])
    for i, cls in enumerate(["no", "yes"]):
        assert ms.value("precision", cls) == pytest.approx(p[i], abs=1e-12)
        assert ms.value("recall", cls) == pytest.approx(r[i], abs=1e-12)
        assert ms.value("f1", cls) == pytest.approx(f[i], abs=1e-12)
        assert ms.value("support", cls) == s[i]
    for avg in ("macro", "weighted", "micro"):
        expected = skm.precision_recall_fscore_support(y, pred, average=avg)[:3]
        got = [ms.value(m, avg) for m in ("precision", "recall", "f1")]
        assert got == pytest.approx(list(expected), abs=1e-12)


def test_binary_auc_and_average_precision_within_their_bound_of_exact(binary_scores: Callable[[int], BinaryData]
                                                                      ) -> None:
    actual, scores = binary_scores(20000)
    ms, _, _ = binary_window(actual, scores)
    auc, ap = ms.get("roc_auc", "yes"), ms.get("average_precision", "yes")
    exact_auc, exact_ap = skm.roc_auc_score(actual, scores), skm.average_precision_score(actual, scores)
    assert auc.value is not None and ap.value is not None
    assert abs(auc.value - exact_auc) <= auc.details["error_bound"]
    assert abs(ap.value - exact_ap) <= ap.details["error_bound"]
    # 1000 bins on realistic scores: well within 1e-3 of sklearn.
    assert auc.value == pytest.approx(exact_auc, abs=1e-3)
    assert ap.value == pytest.approx(exact_ap, abs=1e-3)


def test_exactly_tied_scores_are_ties_in_the_bins_too(rng: np.random.Generator) -> None:
    actual = rng.random(3000) < 0.4
    scores = np.where(actual, rng.choice([0.2, 0.6, 0.9], 3000, p=[0.2, 0.3, 0.5]),
                      rng.choice([0.2, 0.6, 0.9], 3000, p=[0.5, 0.3, 0.2]))
    bins = ScoreBins.from_scores(scores, actual, uniform_edges(1000))
    # Only three distinct scores, each alone in its bin: binning loses nothing.
    assert roc_auc(bins).value == pytest.approx(skm.roc_auc_score(actual, scores), abs=1e-12)
    assert average_precision(bins).value == pytest.approx(skm.average_precision_score(actual, scores), abs=1e-12)


def test_coarse_bins_report_a_larger_bound_that_still_holds(binary_scores: Callable[[int], BinaryData]) -> None:
    actual, scores = binary_scores(5000)
    coarse = ScoreBins.from_scores(scores, actual, uniform_edges(10))
    fine = ScoreBins.from_scores(scores, actual, uniform_edges(1000))
    c, f = roc_auc(coarse), roc_auc(fine)
    assert c.details["error_bound"] > 10 * f.details["error_bound"]
    assert abs(c.value - skm.roc_auc_score(actual, scores)) <= c.details["error_bound"]
    cap = average_precision(coarse)
    assert abs(cap.value - skm.average_precision_score(actual, scores)) <= cap.details["error_bound"]


def test_log_loss_matches_sklearn_including_clipping(binary_scores: Callable[[int], BinaryData]) -> None:
    actual, scores = binary_scores(3000)
    scores[:5] = [0.0, 1.0, 0.0, 1.0, 0.0]  # certain and wrong somewhere: clipping decides the value
    ms, _, _ = binary_window(actual, scores)
    assert ms.value("log_loss") == pytest.approx(skm.log_loss(actual, scores), rel=1e-9)


def test_calibration_error_matches_calibration_curve(binary_scores: Callable[[int], BinaryData],
                                                     rng: np.random.Generator) -> None:
    actual, _ = binary_scores(8000)
    scores = np.where(actual, rng.beta(5, 2, 8000), rng.beta(2, 5, 8000))  # continuous: no score on a bin edge
    ms, _, _ = binary_window(actual, scores)
    prob_true, prob_pred = calibration_curve(actual, scores, n_bins=10, strategy="uniform")
    counts = np.histogram(scores, bins=np.linspace(0, 1, 11))[0]
    weights = counts[counts > 0] / len(scores)
    ece = ms.get("calibration_error", "yes")
    assert ece.value == pytest.approx(float((weights * np.abs(prob_true - prob_pred)).sum()), abs=1e-12)
    assert ece.details["max_calibration_error"] == pytest.approx(float(np.abs(prob_true - prob_pred).max()), abs=1e-12)


def test_perfectly_calibrated_scores_have_small_calibration_error(rng: np.random.Generator) -> None:
    scores = rng.random(50000)
    actual = rng.random(50000) < scores
    ece = calibration_error(ScoreBins.from_scores(scores, actual, uniform_edges(1000)))
    assert ece.value is not None and ece.value < 0.01


def test_multiclass_matches_sklearn(rng: np.random.Generator) -> None:
    classes = np.array(["cat", "dog", "eel"])
    n = 6000
    actual = rng.choice(classes, n, p=[0.5, 0.3, 0.2])
    logits = rng.normal(size=(n, 3)) + 1.5 * (actual[:, None] == classes[None, :])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = classes[proba.argmax(axis=1)]
    stats = ClassificationStats.from_arrays(actual, pred, {c: proba[:, i] for i, c in enumerate(classes)})
    ms = classification_metrics(stats)
    assert ms.value("accuracy") == pytest.approx(skm.accuracy_score(actual, pred), abs=1e-12)
    for avg in ("macro", "weighted", "micro"):
        assert ms.value("f1", avg) == pytest.approx(skm.f1_score(actual, pred, average=avg), abs=1e-12)
    assert ms.value("roc_auc", "macro") == pytest.approx(
        skm.roc_auc_score(actual, proba, multi_class="ovr", average="macro", labels=classes), abs=1e-3)
    onehot = (actual[:, None] == classes[None, :]).astype(int)
    assert ms.value("average_precision", "macro") == pytest.approx(
        skm.average_precision_score(onehot, proba, average="macro"), abs=1e-3)
    assert ms.value("log_loss") == pytest.approx(skm.log_loss(actual, proba, labels=classes), rel=1e-9)
    cm = confusion_matrix(stats.confusion)
    assert np.array_equal(np.array(cm.counts), skm.confusion_matrix(actual, pred, labels=classes))


def test_class_never_predicted_is_undefined_and_left_out_of_averages_as_sklearn_nan() -> None:
    actual = ["a", "a", "b", "b", "c", "c", "c"]
    pred = ["a", "b", "b", "b", "a", "a", "b"]  # "c" never predicted
    ms = classification_metrics(ClassificationStats.from_arrays(actual, pred))
    prec = ms.get("precision", "c")
    assert prec.value is None and prec.missing == "undefined" and "never predicted" in prec.note
    assert ms.value("recall", "c") == 0.0
    for avg in ("macro", "weighted"):
        expected = skm.precision_recall_fscore_support(actual, pred, average=avg, zero_division=np.nan)[:3]
        assert [ms.value(m, avg) for m in ("precision", "recall", "f1")] == pytest.approx(list(expected), abs=1e-12)


def test_single_class_window_has_no_auc_and_says_why() -> None:
    stats = ClassificationStats.from_arrays(["yes"] * 4, ["yes", "yes", "no", "yes"], {"yes": [0.9, 0.8, 0.3, 0.7]})
    ms = classification_metrics(stats)
    for metric in ("roc_auc", "average_precision"):
        mv = ms.get(metric, "yes")
        assert mv.value is None and mv.missing == "undefined" and "only positives" in mv.note
    assert ms.value("accuracy") == 0.75


def test_empty_window_is_insufficient_data_not_zero() -> None:
    stats = ClassificationStats.from_arrays([], [], {"yes": []})
    ms = classification_metrics(stats)
    for key in (("label_coverage", ""), ("accuracy", ""), ("roc_auc", "yes"), ("calibration_error", "yes"),
                ("log_loss", "")):
        mv = ms.get(*key)
        assert mv.value is None and mv.missing == "insufficient_data", key


def test_coverage_counts_unlabelled_predictions_and_metrics_use_labelled_only(
        binary_scores: Callable[[int], BinaryData], rng: np.random.Generator) -> None:
    actual, scores = binary_scores(4000)
    labelled = rng.random(4000) < 0.3
    y = np.where(actual, "yes", "no")
    pred = np.where(scores >= 0.5, "yes", "no")
    ms = classification_metrics(ClassificationStats.from_arrays(y, pred, {"yes": scores}, labelled=labelled))
    assert ms.value("label_coverage") == pytest.approx(labelled.mean())
    assert ms.get("accuracy").n == labelled.sum()
    assert ms.value("accuracy") == pytest.approx(skm.accuracy_score(y[labelled], pred[labelled]))


def test_late_labels_recompute_from_sub_windows_to_the_same_metrics(binary_scores: Callable[[int], BinaryData]
                                                                    ) -> None:
    actual, scores = binary_scores(3000)
    y = np.where(actual, "yes", "no")
    pred = np.where(scores >= 0.5, "yes", "no")
    whole = classification_metrics(ClassificationStats.from_arrays(y, pred, {"yes": scores}))
    parts = [ClassificationStats.from_arrays(y[i:i + 1000], pred[i:i + 1000], {"yes": scores[i:i + 1000]})
             for i in range(0, 3000, 1000)]
    merged = classification_metrics(parts[0] + parts[1] + parts[2])
    assert len(whole) == len(merged)
    for a, b in zip(whole, merged):
        assert (a.metric, a.class_label, a.missing) == (b.metric, b.class_label, b.missing)
        assert a.value == pytest.approx(b.value, abs=1e-12)


def test_confusion_matrix_over_declared_classes_keeps_stable_axes() -> None:
    stats = ClassificationStats.from_arrays(["a", "b"], ["a", "a"])
    cm = confusion_matrix(stats.confusion, ("a", "b", "z"))
    assert cm.counts == ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert cm.normalised()[2] == (None, None, None)
    with pytest.raises(ValueError, match="dropped"):
        confusion_matrix(stats.confusion, ("a",))


def test_calibration_error_on_incompatible_bins_says_why_instead_of_failing(rng: np.random.Generator) -> None:
    scores = rng.random(100)
    ece = calibration_error(ScoreBins.from_scores(scores, scores > 0.5, uniform_edges(7)), n_bins=10)
    assert ece.value is None and ece.missing == "undefined" and "10 equal bins" in ece.note
