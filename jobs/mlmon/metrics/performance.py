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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlmon.core.perf_stats import (ClassificationStats, ConfusionCounts, LogLossSums, RegressionSums, ScoreBins,
                                   coarse_cuts, uniform_edges)
# The result shape lives in mlmon.metrics.results; re-exported here, where it was first defined.
from mlmon.metrics.results import Detail, MetricSet, MetricValue, Missing, ratio

__all__ = ["Detail", "MetricSet", "MetricValue", "Missing", "ratio", "ConfusionMatrix", "average_precision",
           "average_precisions", "calibration_error", "calibration_errors", "classification_metrics",
           "classification_metrics_of", "confusion_matrix", "count_metrics", "log_loss", "regression_metrics", "roc_auc",
           "roc_auc_rows", "roc_aucs", "ROWS_PER_PASS"]

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
    # Python floats: the per-class arithmetic below is scalar, where numpy scalars are slower.
    tp: list[float] = np.diag(m).tolist()
    predicted: list[float] = m.sum(axis=0).tolist()
    actual: list[float] = m.sum(axis=1).tolist()
    accuracy = float(np.diag(m).sum() / n)
    out = [MetricValue("accuracy", accuracy, n, group=group)]
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
    weights = {"macro": [1.0] * len(confusion.classes), "weighted": actual}
    for name, values in per_metric.items():
        for avg, w in weights.items():
            v = _nan_average(values, w)
            out.append(MetricValue(name, v, n, avg, group=group, missing="" if v is not None else "undefined",
                                   note="" if v is not None else f"no class has a defined {name}"))
        # Single-label classification: micro precision = micro recall = micro F1 = accuracy.
        out.append(MetricValue(name, accuracy, n, "micro", group=group))
    return out


# --- classification: scores ----------------------------------------------------


# Each score metric is computed for many score bins at once (a round asks ~10^3 window parts, each of
# ~10^3 bins): rows of one array per column, one numpy pass per metric instead of ~20 small ones per part.
# The single-bins functions are the same code over one row.

#: Rows of score bins per numpy pass: with ~10^3 bins a row, each temporary array stays in a core's cache
#: (a batch's ~500 parts in one pass ran slower, out of cache).
ROWS_PER_PASS = 64


def _rows(bins: Sequence[ScoreBins]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positives, negatives and score sums of ``bins`` (equally many bins each), one row per bins."""
    arrays = [b.arrays for b in bins]
    pos, neg, ssum = (np.stack([a[i] for a in arrays]) if arrays else np.zeros((0, 0)) for i in range(3))
    return pos, neg, ssum


def _one_class_missing(metric: str, p: float, q: float, class_label: str) -> MetricValue | None:
    """Why ``metric`` has no value for bins of ``p`` positives and ``q`` negatives (None: it has one)."""
    if p + q <= 0:
        return MetricValue(metric, None, 0.0, class_label, missing="insufficient_data",
                           note="no labelled scores in the window")
    if p <= 0 or q <= 0:
        present = "negatives" if p <= 0 else "positives"
        return MetricValue(metric, None, p + q, class_label, missing="undefined",
                           note=f"only {present} of class {class_label!r} in the window: {metric} needs both")
    return None


def roc_aucs(bins: Sequence[ScoreBins], class_labels: Sequence[str]) -> list[MetricValue]:
    """:func:`roc_auc` of each of ``bins`` (of equally many bins), for ``class_labels`` in order."""
    pos, neg, _ = _rows(bins)
    return roc_auc_rows(pos, neg, class_labels)


def roc_auc_rows(pos: np.ndarray, neg: np.ndarray, class_labels: Sequence[str]) -> list[MetricValue]:
    """:func:`roc_auc` of score bins given as rows of positives and negatives (ascending scores)."""
    pos, neg = pos[:, ::-1], neg[:, ::-1]  # descending scores
    p, q = pos.sum(axis=1), neg.sum(axis=1)
    negatives_ranked_below = q[:, None] - np.cumsum(neg, axis=1)
    ties = (pos * neg).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows with one class only: left out below
        auc = ((pos * negatives_ranked_below).sum(axis=1) + 0.5 * ties) / (p * q)
        bound = 0.5 * ties / (p * q)
    out = []
    for i, cls in enumerate(class_labels):
        missing = _one_class_missing("roc_auc", float(p[i]), float(q[i]), cls)
        out.append(missing or MetricValue("roc_auc", min(max(float(auc[i]), 0.0), 1.0), float(p[i] + q[i]), cls,
                                          details={"error_bound": float(bound[i]), "bins": pos.shape[1]}))
    return out


def roc_auc(bins: ScoreBins, class_label: str = "") -> MetricValue:
    """ROC AUC of binned scores, every bin treated as one tied score (as sklearn treats ties).

    Binning only changes pairs (positive, negative) that share a bin: exact
    AUC scores such a pair 0, 1/2 or 1, the binned one scores it 1/2. So
    ``|binned - exact| <= 0.5 * sum_b pos_b * neg_b / (P * N)``, returned as
    ``details["error_bound"]`` (exact ties in the data are ties here too).
    """
    return roc_aucs([bins], [class_label])[0]


def average_precisions(bins: Sequence[ScoreBins], class_labels: Sequence[str]) -> list[MetricValue]:
    """:func:`average_precision` of each of ``bins`` (of equally many bins), for ``class_labels`` in order."""
    pos, neg, _ = _rows(bins)
    pos, neg = pos[:, ::-1], neg[:, ::-1]  # descending scores
    p, q = pos.sum(axis=1), neg.sum(axis=1)
    tp = np.cumsum(pos, axis=1)
    fp = np.cumsum(neg, axis=1)
    has_pos = pos > 0
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=has_pos)
    tp0, fp0 = tp - pos, fp - neg
    first = np.minimum(pos, 1.0)
    best = (tp0 + pos) / np.maximum(tp0 + pos + fp0, 1e-300)
    worst = (tp0 + first) / np.maximum(tp0 + first + fp, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows without positives: left out below
        share = np.where(has_pos, pos / p[:, None], 0.0)
    ap = (share * precision).sum(axis=1)
    bound = (share * (best - worst)).sum(axis=1)
    out = []
    for i, cls in enumerate(class_labels):
        missing = _one_class_missing("average_precision", float(p[i]), float(q[i]), cls)
        out.append(missing or MetricValue("average_precision", min(max(float(ap[i]), 0.0), 1.0), float(p[i] + q[i]),
                                          cls, details={"error_bound": float(bound[i]), "bins": pos.shape[1]}))
    return out


def average_precision(bins: ScoreBins, class_label: str = "") -> MetricValue:
    """PR AUC as sklearn's average_precision_score: sum over thresholds of (R_k - R_{k-1}) * P_k.

    Thresholds are the bins. Within a bin the exact ranking is unknown: each
    positive's exact precision lies between the precision with the bin's
    positives ranked first and the one with a single positive after all the
    bin's negatives (a row weighs at least 1, since weights are 1 / sample rate),
    and the binned value lies there too; the weighted sum of those ranges is
    ``details["error_bound"]``.
    """
    return average_precisions([bins], [class_label])[0]


def calibration_errors(bins: Sequence[ScoreBins], n_bins: int, class_labels: Sequence[str]) -> list[MetricValue]:
    """:func:`calibration_error` of each of ``bins`` (all over the same edges), for ``class_labels`` in order."""
    if not bins:
        return []
    edges = bins[0].edges
    if any(b.edges is not edges and b.edges != edges for b in bins):
        raise ValueError("calibration_errors: every score bins must share one layout of edges")
    try:
        cuts, _ = coarse_cuts(edges, uniform_edges(n_bins, edges[0], edges[-1]))
    except ValueError as exc:  # stored bins from another layout: say so instead of failing the whole window
        return [MetricValue("calibration_error", None, b.n_positive + b.n_negative, cls, missing="undefined",
                            note=f"stored score bins cannot form {n_bins} equal bins: {exc}")
                for b, cls in zip(bins, class_labels)]
    pos, neg, score_sum = (np.add.reduceat(v, cuts[:-1], axis=1) for v in _rows(bins))
    count = pos + neg
    total = count.sum(axis=1)
    gap = np.abs(score_sum - pos)
    with np.errstate(divide="ignore", invalid="ignore"):  # empty bins are left out of the worst gap
        worst = np.where(count > 0, gap / count, -np.inf).max(axis=1)
        value = gap.sum(axis=1) / total
    out = []
    for i, cls in enumerate(class_labels):
        if total[i] <= 0:
            out.append(MetricValue("calibration_error", None, 0.0, cls, missing="insufficient_data",
                                   note="no labelled scores in the window"))
        else:
            out.append(MetricValue("calibration_error", float(value[i]), float(total[i]), cls,
                                   details={"max_calibration_error": float(worst[i]), "bins": n_bins}))
    return out


def calibration_error(bins: ScoreBins, n_bins: int = 10, class_label: str = "") -> MetricValue:
    """Expected calibration error over ``n_bins`` equal-width bins: sum_b n_b/N * |mean score_b - positive rate_b|.

    Computed as ``sum_b |sum of scores_b - positives_b| / N`` on the stored bins
    coarsened to ``n_bins`` (the stored edges must contain the coarse ones; if
    they do not, the value is None / ``undefined`` with the reason).
    ``details["max_calibration_error"]`` is the worst bin's gap (MCE).
    """
    return calibration_errors([bins], n_bins, [class_label])[0]


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
    return classification_metrics_of([stats], calibration_bins=calibration_bins)[0]


def classification_metrics_of(stats: Sequence[ClassificationStats], *, calibration_bins: int = 10) -> list[MetricSet]:
    """:func:`classification_metrics` of each of ``stats``, the score metrics of up to ``ROWS_PER_PASS`` of them
    computed at once (per layout of score bins)."""
    if len(stats) > ROWS_PER_PASS:
        return [found for i in range(0, len(stats), ROWS_PER_PASS)
                for found in classification_metrics_of(stats[i:i + ROWS_PER_PASS], calibration_bins=calibration_bins)]
    layouts: dict[int, list[tuple[int, str, ScoreBins]]] = {}  # by the edges' identity: a round shares one tuple
    for i, st in enumerate(stats):
        for cls, bins in st.scores.items():
            layouts.setdefault(id(bins.edges), []).append((i, cls, bins))
    scored: dict[tuple[int, str, str], MetricValue] = {}  # (stats, metric, class) -> value
    for found in layouts.values():
        group = [b for _, _, b in found]
        classes = [c for _, c, _ in found]
        for values in (roc_aucs(group, classes), average_precisions(group, classes),
                       calibration_errors(group, calibration_bins, classes)):
            scored.update(((i, v.metric, c), v) for (i, c, _), v in zip(found, values))
    out = []
    for i, st in enumerate(stats):
        labelled = st.confusion.total
        values = [ratio(labelled, st.n_predictions, "label_coverage", st.n_predictions, empty="insufficient_data",
                        note="no predictions in the window", details={"labelled": labelled})]
        values += count_metrics(st.confusion)
        for metric in ("roc_auc", "average_precision"):
            per_class = [scored[(i, metric, cls)] for cls in st.scores]
            values += per_class
            if len(per_class) >= 3:
                values.append(_macro(metric, per_class))
        values += [scored[(i, "calibration_error", cls)] for cls in st.scores]
        if st.log_loss is not None:
            values.append(log_loss(st.log_loss))
        out.append(MetricSet(tuple(values)))
    return out


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

