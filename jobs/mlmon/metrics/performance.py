"""Realised performance from sufficient statistics: classification and regression.

Pure functions over ``mlmon.core.perf_stats`` objects, checked against
scikit-learn on the same data (tests/metrics_math). Every metric function of
this package (drift, performance, CBPE, fairness, attribution) returns
``MetricValue`` objects (gathered in a ``MetricSet``, both defined in
:mod:`mlmon.metrics.results` and re-exported here): one result shape, which
maps one to one onto a metric document (metric, value, class / feature /
group, n, details).

A value that cannot be computed is ``None`` with ``missing`` saying why:
``"insufficient_data"`` (too few observations: no labels yet, an empty group)
or ``"undefined"`` (the data exist but the metric has no value, e.g. ROC AUC
when only one class occurs, precision of a class never predicted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlmon.core.perf_stats import ClassificationStats, ConfusionCounts, LogLossSums, RegressionSums, ScoreBins, uniform_edges
# The result shape lives in mlmon.metrics.results; re-exported here, where it was first defined.
from mlmon.metrics.results import Detail, MetricSet, MetricValue, Missing, ratio

__all__ = ["Detail", "MetricSet", "MetricValue", "Missing", "ratio", "ConfusionMatrix", "average_precision",
           "calibration_error", "classification_metrics", "confusion_matrix", "count_metrics", "log_loss",
           "regression_metrics", "roc_auc"]

# --- classification: counts ----------------------------------------------------


@dataclass(frozen=True)
class ConfusionMatrix:
    """Rows: actual class; columns: predicted class (sklearn's layout)."""

    classes: tuple[str, ...]
    counts: tuple[tuple[float, ...], ...]

    def normalised(self) -> tuple[tuple[float | None, ...], ...]:
        """Each row divided by its total (recall per cell); None for a class that never occurred."""
        return tuple(tuple(c / sum(row) if sum(row) else None for c in row) for row in self.counts)


def confusion_matrix(confusion: ConfusionCounts, classes: tuple[str, ...] | None = None) -> ConfusionMatrix:
    """The confusion matrix, optionally over a declared superset of classes (stable dashboard axes)."""
    labels = confusion.classes if classes is None else tuple(classes)
    m = confusion.matrix(labels)
    return ConfusionMatrix(labels, tuple(tuple(r) for r in m.tolist()))


def _nan_average(values: list[float | None], weights: list[float]) -> float | None:
    """Weighted mean over the defined values (sklearn's zero_division=np.nan averaging)."""
    pairs = [(v, w) for v, w in zip(values, weights) if v is not None]
    total = sum(w for _, w in pairs)
    if not pairs or total <= 0:
        return None
    return sum(v * w for v, w in pairs) / total


def count_metrics(confusion: ConfusionCounts, group: str = "") -> list[MetricValue]:
    """Accuracy; precision, recall, F1 and support per class; their macro, weighted and micro averages.

    A per-class value whose denominator is zero (precision of a class never
    predicted, recall of a class that never occurred) is None/``undefined``
    and left out of the averages, as sklearn does with ``zero_division=np.nan``.
    Classes are those in ``confusion.classes`` (a store may declare classes
    that did not occur: their support is 0, so they weigh nothing in
    ``weighted``, but their undefined values do not enter ``macro`` either).
    """
    m = confusion.matrix()
    n = float(m.sum())
    if n <= 0:
        return [MetricValue("accuracy", None, 0.0, group=group, missing="insufficient_data",
                            note="no labelled predictions in the window")]
    tp = np.diag(m)
    predicted = m.sum(axis=0)
    actual = m.sum(axis=1)
    out = [MetricValue("accuracy", float(tp.sum() / n), n, group=group)]
    per_metric: dict[str, list[float | None]] = {"precision": [], "recall": [], "f1": []}
    for i, cls in enumerate(confusion.classes):
        cells = {
            "precision": ratio(tp[i], predicted[i], "precision", predicted[i], class_label=cls, group=group,
                               note=f"class {cls!r} was never predicted"),
            "recall": ratio(tp[i], actual[i], "recall", actual[i], class_label=cls, group=group,
                            note=f"class {cls!r} never occurred"),
            "f1": ratio(2 * tp[i], predicted[i] + actual[i], "f1", actual[i], class_label=cls, group=group,
                        note=f"class {cls!r} was neither predicted nor observed"),
        }
        for name, mv in cells.items():
            per_metric[name].append(mv.value)
            out.append(mv)
        out.append(MetricValue("support", float(actual[i]), n, cls, group=group))
    weights = {"macro": [1.0] * len(confusion.classes), "weighted": actual.tolist()}
    for name, values in per_metric.items():
        for avg, w in weights.items():
            v = _nan_average(values, w)
            out.append(MetricValue(name, v, n, avg, group=group, missing="" if v is not None else "undefined",
                                   note="" if v is not None else f"no class has a defined {name}"))
        # Single-label classification: micro precision = micro recall = micro F1 = accuracy.
        out.append(MetricValue(name, float(tp.sum() / n), n, "micro", group=group))
    return out


# --- classification: scores ----------------------------------------------------


def _descending(bins: ScoreBins) -> tuple[np.ndarray, np.ndarray]:
    pos, neg, _ = bins.arrays
    return pos[::-1], neg[::-1]


def _one_class_missing(metric: str, bins: ScoreBins, class_label: str) -> MetricValue | None:
    p, q = bins.n_positive, bins.n_negative
    if p + q <= 0:
        return MetricValue(metric, None, 0.0, class_label, missing="insufficient_data",
                           note="no labelled scores in the window")
    if p <= 0 or q <= 0:
        present = "negatives" if p <= 0 else "positives"
        return MetricValue(metric, None, p + q, class_label, missing="undefined",
                           note=f"only {present} of class {class_label!r} in the window: {metric} needs both")
    return None


def roc_auc(bins: ScoreBins, class_label: str = "") -> MetricValue:
    """ROC AUC of binned scores, every bin treated as one tied score (as sklearn treats ties).

    Binning only changes pairs (positive, negative) that share a bin: exact
    AUC scores such a pair 0, 1/2 or 1, the binned one scores it 1/2. So
    ``|binned - exact| <= 0.5 * sum_b pos_b * neg_b / (P * N)``, returned as
    ``details["error_bound"]`` (exact ties in the data are ties here too).
    """
    if (missing := _one_class_missing("roc_auc", bins, class_label)) is not None:
        return missing
    pos, neg = _descending(bins)
    p, q = pos.sum(), neg.sum()
    negatives_ranked_below = q - np.cumsum(neg)
    auc = float((pos * negatives_ranked_below).sum() + 0.5 * (pos * neg).sum()) / (p * q)
    bound = float(0.5 * (pos * neg).sum() / (p * q))
    return MetricValue("roc_auc", min(max(auc, 0.0), 1.0), float(p + q), class_label,
                       details={"error_bound": bound, "bins": len(pos)})


def average_precision(bins: ScoreBins, class_label: str = "") -> MetricValue:
    """PR AUC as sklearn's average_precision_score: sum over thresholds of (R_k - R_{k-1}) * P_k.

    Thresholds are the bins. Within a bin the exact ranking is unknown: each
    positive's exact precision lies between the precision with the bin's
    positives ranked first and the one with a single positive after all the
    bin's negatives (a row weighs at least 1, since weights are 1 / sample rate),
    and the binned value lies there too; the weighted sum of those ranges is
    ``details["error_bound"]``.
    """
    if (missing := _one_class_missing("average_precision", bins, class_label)) is not None:
        return missing
    pos, neg = _descending(bins)
    p = pos.sum()
    tp = np.cumsum(pos)
    fp = np.cumsum(neg)
    has_pos = pos > 0
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=has_pos)
    ap = float((pos[has_pos] / p * precision[has_pos]).sum())
    tp0, fp0 = tp - pos, fp - neg
    first = np.minimum(pos, 1.0)
    best = (tp0 + pos) / np.maximum(tp0 + pos + fp0, 1e-300)
    worst = (tp0 + first) / np.maximum(tp0 + first + fp, 1e-300)
    bound = float((pos[has_pos] / p * (best - worst)[has_pos]).sum())
    return MetricValue("average_precision", min(max(ap, 0.0), 1.0), float(p + neg.sum()), class_label,
                       details={"error_bound": bound, "bins": len(pos)})


def calibration_error(bins: ScoreBins, n_bins: int = 10, class_label: str = "") -> MetricValue:
    """Expected calibration error over ``n_bins`` equal-width bins: sum_b n_b/N * |mean score_b - positive rate_b|.

    Computed as ``sum_b |sum of scores_b - positives_b| / N`` on the stored bins
    coarsened to ``n_bins`` (the stored edges must contain the coarse ones; if
    they do not, the value is None / ``undefined`` with the reason).
    ``details["max_calibration_error"]`` is the worst bin's gap (MCE).
    """
    try:
        coarse = bins.coarsen(uniform_edges(n_bins, bins.edges[0], bins.edges[-1]))
    except ValueError as exc:  # stored bins from another layout: say so instead of failing the whole window
        return MetricValue("calibration_error", None, bins.n_positive + bins.n_negative, class_label,
                           missing="undefined", note=f"stored score bins cannot form {n_bins} equal bins: {exc}")
    pos, neg, score_sum = coarse.arrays
    count = pos + neg
    total = float(count.sum())
    if total <= 0:
        return MetricValue("calibration_error", None, 0.0, class_label, missing="insufficient_data",
                           note="no labelled scores in the window")
    gap = np.abs(score_sum - pos)
    filled = count > 0
    return MetricValue("calibration_error", float(gap.sum() / total), total, class_label,
                       details={"max_calibration_error": float((gap[filled] / count[filled]).max()),
                                "bins": n_bins})


def log_loss(sums: LogLossSums) -> MetricValue:
    """Mean of -log(p of the actual class), probabilities clipped as sklearn does (``LOG_LOSS_EPS``)."""
    return ratio(sums.neg_log_likelihood, sums.n, "log_loss", sums.n, empty="insufficient_data",
                 note="no labelled probabilities in the window")


def _macro(metric: str, per_class: list[MetricValue]) -> MetricValue:
    defined = [v for v in per_class if v.value is not None]
    n = float(sum(v.n for v in per_class))
    if not defined:
        return MetricValue(metric, None, n, "macro", missing="undefined", note=f"{metric} is undefined for every class")
    skipped = [v.class_label for v in per_class if v.value is None]
    details: dict[str, Any] = {"classes_left_out": skipped}
    bounds = [b for v in defined if isinstance(b := v.details.get("error_bound"), float)]
    if len(bounds) == len(defined):
        # The macro value is the mean over the same classes, so its error is at most the mean bound.
        details["error_bound"] = float(np.mean(bounds))
    return MetricValue(metric, float(np.mean([v.value for v in defined])), n, "macro",
                       note=f"classes without a value left out: {skipped}" if skipped else "",
                       details=details)


def classification_metrics(stats: ClassificationStats, *, calibration_bins: int = 10) -> MetricSet:
    """Every realised classification metric of a window.

    - ``label_coverage``: labelled / all predictions of the window.
    - count metrics (``count_metrics``): accuracy, per-class and averaged precision / recall / F1.
    - per class in ``stats.scores`` (binary: the positive class only): ``roc_auc``,
      ``average_precision``, ``calibration_error``; with three or more classes also their macro average
      (sklearn's one-vs-rest ``average="macro"``).
    - ``log_loss`` when probabilities were logged.
    """
    labelled = stats.confusion.total
    out = [ratio(labelled, stats.n_predictions, "label_coverage", stats.n_predictions, empty="insufficient_data",
                 note="no predictions in the window", details={"labelled": labelled})]
    out += count_metrics(stats.confusion)
    for metric, fn in (("roc_auc", roc_auc), ("average_precision", average_precision)):
        per_class = [fn(bins, cls) for cls, bins in stats.scores.items()]
        out += per_class
        if len(per_class) >= 3:
            out.append(_macro(metric, per_class))
    out += [calibration_error(bins, calibration_bins, cls) for cls, bins in stats.scores.items()]
    if stats.log_loss is not None:
        out.append(log_loss(stats.log_loss))
    return MetricSet(tuple(out))


# --- regression -------------------------------------------------------------------


def regression_metrics(sums: RegressionSums) -> MetricSet:
    """MAE, RMSE, MAPE, R² and bias of a window (``error = prediction - actual``).

    - ``bias`` is the mean error: positive means the model over-predicts.
    - ``mape`` is the mean of ``|error| / |actual|`` over predictions whose
      actual is not zero, as a fraction (0.1 = 10 %). Zero actuals are left
      out and counted in ``details["n_zero_actual"]``: sklearn instead divides
      by machine epsilon, which turns one zero into a MAPE of ~1e15.
    - ``r2`` is ``1 - SSE / SST``; None (``undefined``) when the actuals are
      constant (SST = 0) - sklearn returns 1.0 or 0.0 there by convention.
    - ``error_histogram`` (when the store sent one) rides in ``mae``'s details.
    """
    n = sums.n
    if n <= 0:
        return MetricSet(tuple(MetricValue(m, None, 0.0, missing="insufficient_data",
                                           note="no labelled predictions in the window")
                               for m in ("mae", "rmse", "mape", "r2", "bias")))
    mae_details: dict[str, Detail] = {}
    if sums.error_histogram is not None:
        h = sums.error_histogram
        mae_details = {"error_histogram_edges": list(h.edges), "error_histogram_counts": list(h.counts),
                       "error_histogram_underflow": h.underflow, "error_histogram_overflow": h.overflow}
    sst = max(sums.sum_actual_sq - sums.sum_actual ** 2 / n, 0.0)
    # Relative floor: below it SST is rounding noise of sum_actual_sq, i.e. constant actuals.
    sst_is_zero = sst <= 1e-12 * max(sums.sum_actual_sq, 1e-300)
    values = [
        MetricValue("mae", sums.sum_abs_error / n, n, details=mae_details),
        MetricValue("rmse", math.sqrt(sums.sum_sq_error / n), n),
        ratio(sums.sum_abs_pct_error, sums.n_nonzero_actual, "mape", sums.n_nonzero_actual,
              note="every actual value is zero", details={"n_zero_actual": sums.n_zero_actual}),
        MetricValue("r2", None, n, missing="undefined", note="actual values are constant (zero variance)")
        if sst_is_zero else MetricValue("r2", 1.0 - sums.sum_sq_error / sst, n),
        MetricValue("bias", sums.sum_error / n, n),
    ]
    return MetricSet(tuple(values))

