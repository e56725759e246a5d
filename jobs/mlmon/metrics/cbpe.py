"""Confidence-based performance estimation (CBPE, as NannyML does): performance without labels.

Idea: if ``p`` is a *calibrated* probability that a prediction's actual class
is the positive one, a prediction of "positive" is a true positive with
probability ``p`` and a false positive with probability ``1 - p``; summing
over a window gives the expected confusion matrix, hence expected accuracy,
precision, recall, F1 and ROC AUC - before any label arrives.

Assumptions (stated in every result's details and to be stated in the README):

- **No concept drift.** The calibration ``P(actual | score)`` is fitted on a
  labelled reference and assumed to still hold in the window. Covariate
  shift (the score distribution moving) is fine - that is what CBPE tracks;
  a change in how outcomes relate to scores is invisible to it, and the
  estimate then stays confidently wrong. Keep comparing with realised
  metrics once labels arrive (``estimation_error``).
- The reference is large and representative enough for the isotonic fit.

Sufficient statistics, and why: ``CbpeStats`` - the *raw* score of a class,
binned (count and score sum per bin), split by predicted class. Not sums of
calibrated ``p`` and ``p²``: those would require the store to apply the
calibration (a script in every Elasticsearch aggregation, a join in SQL), and
refitting the calibration would require re-querying every window. With raw
bins the store runs the same histogram query as for labelled scores, and the
calibration is applied here to each bin's mean raw score. The isotonic map is
piecewise linear, so for a bin without a knot of the map this is exact for
the sum of calibrated probabilities; the approximation is confined to the
few bins that contain a knot and shrinks with the bin width (tests: within
1e-3 of row-level CBPE at 1000 bins). The bins also carry the score ranking
that the ROC AUC estimate needs.

Confidence band: under the assumption, the confusion cells are sums of
independent Bernoulli(p) draws, so ``Var(TP) = sum p (1 - p)`` over the
predicted positives, likewise for FN; accuracy and precision are linear in
them, recall and F1 get the delta method. ``details`` carry ``std``,
``lower`` and ``upper`` (``z`` standard deviations, clipped to [0, 1]): the
range the *realised* metric should fall in. It does not include the error of
the reference calibration itself. ROC AUC gets no band.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from sklearn.isotonic import IsotonicRegression

from mlmon.metrics.performance import ROWS_PER_PASS, MetricSet, MetricValue, roc_auc, roc_auc_rows
from mlmon.core.perf_stats import CbpeStats, ScoreBins, bins_by_row

ASSUMPTION = "no concept drift: P(actual | score) as calibrated on the reference"


@dataclass(frozen=True)
class IsotonicCalibration:
    """A fitted isotonic map raw score -> P(positive), as plain arrays (serialises into a reference profile).

    ``apply`` reproduces ``IsotonicRegression(out_of_bounds="clip").predict``
    exactly: linear interpolation between the thresholds, constant outside.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or not self.x:
            raise ValueError("calibration needs equally many (>= 1) x and y thresholds")
        if any(b < a for a, b in zip(self.x, self.x[1:])) or any(b < a for a, b in zip(self.y, self.y[1:])):
            raise ValueError("calibration thresholds must be non-decreasing")
        if not all(0.0 <= v <= 1.0 for v in self.y):
            raise ValueError("calibrated probabilities must lie in [0, 1]")

    @classmethod
    def fit(cls, scores: np.ndarray, actual_positive: np.ndarray, sample_weight: np.ndarray | None = None) -> Self:
        """Fit on a labelled reference: raw positive-class scores and whether the actual class was positive."""
        s = np.asarray(scores, dtype=float)
        a = np.asarray(actual_positive, dtype=bool)
        if s.shape != a.shape or s.ndim != 1:
            raise ValueError(f"scores {s.shape} and labels {a.shape} must be 1-d and of equal length")
        if len(s) == 0 or not np.all(np.isfinite(s)):
            raise ValueError("calibration needs at least one finite score and no NaN / inf")
        if a.all() or not a.any():
            raise ValueError("calibration needs both positive and negative actuals in the reference")
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(s, a.astype(float), sample_weight=sample_weight)
        return cls(tuple(float(v) for v in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_))

    def apply(self, scores: np.ndarray) -> np.ndarray:
        calibrated: np.ndarray = np.interp(np.asarray(scores, dtype=float), self.x, self.y)
        return calibrated

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        try:
            return cls(tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["y"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a calibration mapping (needs lists 'x' and 'y'): {exc}") from exc


@dataclass(frozen=True)
class ExpectedConfusion:
    """Expected binary confusion cells under the calibration, with the variances of TP and FN."""

    tp: float
    fp: float
    fn: float
    tn: float
    var_tp: float
    var_fn: float
    #: Expected positives / negatives per score bin over the CBPE edges, for the AUC estimate.
    expected_bins: ScoreBins = field(compare=False, repr=False)

    @property
    def n(self) -> float:
        return self.tp + self.fp + self.fn + self.tn


def expected_confusion(stats: CbpeStats, calibration: IsotonicCalibration) -> ExpectedConfusion:
    return _expected([stats], calibration)[0][0]


def _expected(stats: Sequence[CbpeStats], calibration: IsotonicCalibration
              ) -> tuple[list[ExpectedConfusion], np.ndarray, np.ndarray]:
    """:func:`expected_confusion` of each of (non-empty) ``stats``, over one layout of edges, computed for all at
    once (the calibration applied to each bin's mean raw score), with their expected positives and negatives per
    bin as rows (the ROC AUC estimate reads them)."""
    edges = stats[0].predicted_positive.edges
    if any(st.predicted_positive.edges is not edges and st.predicted_positive.edges != edges for st in stats):
        raise ValueError("CBPE statistics estimated together must share one layout of score edges")
    predicted = [(st.predicted_positive.arrays, st.predicted_negative.arrays) for st in stats]
    n_pp, s_pp, n_pn, s_pn = (np.stack([p[side][col] for p in predicted]) for side in (0, 1) for col in (0, 1))
    p_pp = calibration.apply(np.divide(s_pp, n_pp, out=np.zeros_like(n_pp), where=n_pp > 0))
    p_pn = calibration.apply(np.divide(s_pn, n_pn, out=np.zeros_like(n_pn), where=n_pn > 0))
    tp, fn = (n_pp * p_pp).sum(axis=1), (n_pn * p_pn).sum(axis=1)
    fp, tn = n_pp.sum(axis=1) - tp, n_pn.sum(axis=1) - fn
    var_tp, var_fn = (n_pp * p_pp * (1 - p_pp)).sum(axis=1), (n_pn * p_pn * (1 - p_pn)).sum(axis=1)
    exp_pos = n_pp * p_pp + n_pn * p_pn
    exp_neg = np.maximum(n_pp + n_pn - exp_pos, 0.0)
    bins = bins_by_row(ScoreBins, edges, [exp_pos, exp_neg, np.zeros_like(exp_pos)])
    found = [ExpectedConfusion(tp=float(tp[i]), fp=float(fp[i]), fn=float(fn[i]), tn=float(tn[i]),
                               var_tp=float(var_tp[i]), var_fn=float(var_fn[i]), expected_bins=bins[i])
             for i in range(len(stats))]
    return found, exp_pos, exp_neg


def _estimate(metric: str, value: float | None, var: float, n: float, z: float, class_label: str,
              note: str = "") -> MetricValue:
    if value is None:
        return MetricValue(metric, None, n, class_label, missing="undefined", note=note,
                           details={"assumption": ASSUMPTION})
    std = math.sqrt(max(var, 0.0))
    return MetricValue(metric, value, n, class_label, details={
        "std": std, "lower": max(value - z * std, 0.0), "upper": min(value + z * std, 1.0), "z": z,
        "assumption": ASSUMPTION})


def _binary_estimates(e: ExpectedConfusion, z: float, class_label: str, auc: MetricValue | None = None
                      ) -> list[MetricValue]:
    """Accuracy, precision, recall, F1 and ROC AUC of ``e`` (``auc``: the AUC of its expected bins, when known)."""
    n = e.n
    if n <= 0:
        return [MetricValue(m, None, 0.0, "" if m == "accuracy" else class_label, missing="insufficient_data",
                            note="no predictions in the window")
                for m in ("accuracy", "precision", "recall", "f1", "roc_auc")]
    n_pp = e.tp + e.fp
    actual = e.tp + e.fn
    f1_den = n_pp + actual
    # Accuracy is not per class: class_label "" matches the realised accuracy's key.
    out = [_estimate("accuracy", (e.tp + e.tn) / n, (e.var_tp + e.var_fn) / n ** 2, n, z, "")]
    out.append(_estimate("precision", e.tp / n_pp if n_pp > 0 else None, e.var_tp / n_pp ** 2 if n_pp > 0 else 0.0,
                         n_pp, z, class_label, note=f"class {class_label!r} was never predicted"))
    if actual > 0:
        recall_var = (e.fn ** 2 * e.var_tp + e.tp ** 2 * e.var_fn) / actual ** 4
        out.append(_estimate("recall", e.tp / actual, recall_var, n, z, class_label))
    else:
        out.append(_estimate("recall", None, 0.0, n, z, class_label, note="no positives expected"))
    if f1_den > 0:
        f1_var = (4 * (n_pp + e.fn) ** 2 * e.var_tp + 4 * e.tp ** 2 * e.var_fn) / f1_den ** 4
        out.append(_estimate("f1", 2 * e.tp / f1_den, f1_var, n, z, class_label))
    else:
        out.append(_estimate("f1", None, 0.0, n, z, class_label, note="nothing predicted or expected positive"))
    if auc is None:
        auc = roc_auc(e.expected_bins, class_label)
    out.append(MetricValue("roc_auc", auc.value, auc.n, class_label, missing=auc.missing, note=auc.note,
                           details={**auc.details, "assumption": ASSUMPTION}))
    return out


def estimate_binary(stats: CbpeStats, calibration: IsotonicCalibration, positive_label: str,
                    z: float = 1.96) -> MetricSet:
    """Estimated accuracy, precision, recall, F1 and ROC AUC of the positive class for an unlabelled window.

    Also ``expected_positive_rate`` (expected share of actual positives) with
    the expected confusion cells in its details.
    """
    return estimate_binary_of([stats], calibration, positive_label, z)[0]


def estimate_binary_of(stats: Sequence[CbpeStats], calibration: IsotonicCalibration, positive_label: str,
                       z: float = 1.96) -> list[MetricSet]:
    """:func:`estimate_binary` of each of ``stats`` (of equally many bins), the binned parts of up to
    ``ROWS_PER_PASS`` of them at once."""
    if len(stats) > ROWS_PER_PASS:
        return [found for i in range(0, len(stats), ROWS_PER_PASS)
                for found in estimate_binary_of(stats[i:i + ROWS_PER_PASS], calibration, positive_label, z)]
    if not stats:
        return []
    expected, exp_pos, exp_neg = _expected(stats, calibration)
    aucs = roc_auc_rows(exp_pos, exp_neg, [positive_label] * len(expected))
    out = []
    for e, auc in zip(expected, aucs):
        values = _binary_estimates(e, z, positive_label, auc)
        if e.n > 0:
            values.append(MetricValue("expected_positive_rate", (e.tp + e.fn) / e.n, e.n, positive_label, details={
                "tp": e.tp, "fp": e.fp, "fn": e.fn, "tn": e.tn, "assumption": ASSUMPTION}))
        out.append(MetricSet(tuple(values)))
    return out


def estimate_multiclass(stats: Mapping[str, CbpeStats], calibrations: Mapping[str, IsotonicCalibration],
                        z: float = 1.96) -> MetricSet:
    """One-vs-rest CBPE: per class precision / recall / F1 / ROC AUC, their macro averages, and accuracy.

    ``stats[c]`` bins the score of class ``c`` split by whether ``c`` was the
    predicted class; ``calibrations[c]`` maps that score to P(actual = c).
    Expected accuracy is sum over classes of expected TP_c / n. The one-vs-rest
    calibrated probabilities are not renormalised to sum to 1 per prediction
    (per-class histograms cannot be): with a good reference fit they nearly do.
    """
    missing = set(stats) ^ set(calibrations)
    if missing:
        raise ValueError(f"classes without both statistics and a calibration: {sorted(missing)}")
    if len(stats) < 3:
        raise ValueError("multiclass CBPE needs three or more classes; use estimate_binary for two")
    out: list[MetricValue] = []
    expected = {c: expected_confusion(stats[c], calibrations[c]) for c in sorted(stats)}
    totals = {round(e.n, 6) for e in expected.values()}
    if len(totals) > 1:
        raise ValueError(f"per-class statistics cover different numbers of predictions: {sorted(totals)}")
    per_class: dict[str, list[MetricValue]] = {}
    for c, e in expected.items():
        for mv in _binary_estimates(e, z, c):
            if mv.metric != "accuracy":  # one-vs-rest accuracy is not the multiclass accuracy
                per_class.setdefault(mv.metric, []).append(mv)
                out.append(mv)
    n = next(iter(expected.values())).n
    if n <= 0:
        out.append(MetricValue("accuracy", None, 0.0, missing="insufficient_data", note="no predictions in the window"))
        return MetricSet(tuple(out))
    out.append(_estimate("accuracy", sum(e.tp for e in expected.values()) / n,
                         sum(e.var_tp for e in expected.values()) / n ** 2, n, z, ""))
    for metric, values in per_class.items():
        defined = [v.value for v in values if v.value is not None]
        if defined:
            out.append(MetricValue(metric, float(np.mean(defined)), n, "macro",
                                   details={"assumption": ASSUMPTION,
                                            "classes_left_out": [v.class_label for v in values if v.value is None]}))
        else:
            out.append(MetricValue(metric, None, n, "macro", missing="undefined",
                                   note=f"{metric} is undefined for every class"))
    return MetricSet(tuple(out))


def estimation_error(estimated: MetricSet, realised: MetricSet) -> MetricSet:
    """Estimated minus realised, per metric both define; ``details["within_band"]`` when a band exists.

    Recorded once a window is final (see ``PerformanceJob._estimated``), to show how far CBPE can be trusted.
    """
    out = []
    for est in estimated:
        try:
            real = realised.get(est.metric, est.class_label, est.feature, est.group)
        except KeyError:
            continue
        if est.value is None or real.value is None:
            continue
        details: dict[str, Any] = {"estimated": est.value, "realised": real.value}
        if "lower" in est.details and "upper" in est.details:
            lower, upper = est.details["lower"], est.details["upper"]
            if isinstance(lower, float) and isinstance(upper, float):
                details["within_band"] = lower <= real.value <= upper
        out.append(MetricValue(est.metric, est.value - real.value, real.n, est.class_label, est.feature, est.group,
                               details=details))
    return MetricSet(tuple(out))
