"""Fairness of a binary classifier across the groups of one sensitive attribute.

Input: ``GroupCounts`` per group (what a store's GROUP BY group, predicted,
actual returns). Output: per-group rates and between-group gaps, with the
definitions of fairlearn (checked against it in tests):

- ``selection_rate``: predicted positive / predictions. Needs no labels, so
  it covers every prediction of the group, labelled or not (fairlearn sees only
  the rows it is given; with every row labelled the two agree).
- ``true_positive_rate`` (recall) over labelled actual positives,
  ``false_positive_rate`` over labelled actual negatives,
  ``accuracy`` over labelled predictions, ``precision`` over labelled predicted
  positives, ``label_coverage`` = labelled / predictions.
- ``demographic_parity_difference``: max - min selection rate over groups.
- ``disparate_impact_ratio``: min / max selection rate (fairlearn's
  demographic_parity_ratio); ``details["four_fifths_rule"]`` is whether it is
  at least 0.8, the US EEOC rule of thumb.
- ``equal_opportunity_difference``: max - min true positive rate.
- ``equalized_odds_difference``: the larger of the TPR gap and the FPR gap.

Small groups: a rate whose denominator (predictions, actual positives, ...)
is below ``min_group_size`` is None / ``insufficient_data`` for that group and
the group is left out of the gaps built on that rate (``details`` list who
was left out); a gap with fewer than two groups left is ``insufficient_data``.
A noisy rate of ten people would otherwise raise the alarm for everyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from mlmon.metrics.results import Detail, MetricSet, MetricValue
from mlmon.core.perf_stats import GroupCounts

#: Disparate impact below this ratio fails the four-fifths rule.
FOUR_FIFTHS = 0.8


def _rate(metric: str, numerator: float, denominator: float, group: str, min_group_size: float,
          what: str) -> MetricValue:
    if denominator <= 0 or denominator < min_group_size:
        return MetricValue(metric, None, denominator, group=group, missing="insufficient_data",
                           note=f"{denominator:g} {what} in group {group!r}, fewer than min_group_size={min_group_size:g}")
    return MetricValue(metric, numerator / denominator, denominator, group=group)


def group_metrics(group: str, c: GroupCounts, min_group_size: float) -> list[MetricValue]:
    """The rates of one group (each gated on its own denominator)."""
    coverage = (MetricValue("label_coverage", c.n_labelled / c.n_predictions, c.n_predictions, group=group,
                            details={"labelled": c.n_labelled})
                if c.n_predictions > 0 else
                MetricValue("label_coverage", None, 0.0, group=group, missing="insufficient_data",
                            note=f"no predictions in group {group!r}"))
    return [
        _rate("selection_rate", c.n_predicted_positive, c.n_predictions, group, min_group_size, "predictions"),
        _rate("true_positive_rate", c.tp, c.tp + c.fn, group, min_group_size, "labelled actual positives"),
        _rate("false_positive_rate", c.fp, c.fp + c.tn, group, min_group_size, "labelled actual negatives"),
        _rate("accuracy", c.tp + c.tn, c.n_labelled, group, min_group_size, "labelled predictions"),
        _rate("precision", c.tp, c.tp + c.fp, group, min_group_size, "labelled predicted positives"),
        coverage,
    ]


def _gap(metric: str, rates: list[MetricValue], kind: Literal["difference", "ratio"]) -> MetricValue:
    """max - min (``kind="difference"``) or min / max (``kind="ratio"``) of the defined rates."""
    defined = sorted((r.value, r.group, r.n) for r in rates if r.value is not None)
    left_out = [r.group for r in rates if r.value is None]
    n = sum(size for _, _, size in defined)
    if len(defined) < 2:
        return MetricValue(metric, None, n, missing="insufficient_data",
                           note=f"{len(defined)} group(s) large enough, need 2", details={"groups_left_out": left_out})
    (low, low_group, _), (high, high_group, _) = defined[0], defined[-1]
    details: dict[str, Detail] = {"min_group": low_group, "max_group": high_group, "min": low, "max": high,
               "groups_left_out": left_out}
    if kind == "difference":
        return MetricValue(metric, high - low, n, details=details)
    if high <= 0:
        return MetricValue(metric, None, n, missing="undefined", note="no group has a positive rate",
                           details=details)
    value = low / high
    return MetricValue(metric, value, n, details={**details, "four_fifths_rule": value >= FOUR_FIFTHS})


def fairness_metrics(groups: Mapping[str, GroupCounts], min_group_size: float = 30.0) -> MetricSet:
    """Per-group rates (``group=<value>``) and between-group gaps (``group=""``) of one sensitive attribute."""
    if min_group_size < 0:
        raise ValueError(f"min_group_size must be >= 0, got {min_group_size}")
    per_group = {g: group_metrics(g, c, min_group_size) for g, c in sorted(groups.items())}
    out = [mv for values in per_group.values() for mv in values]

    def rates(metric: str) -> list[MetricValue]:
        return [mv for values in per_group.values() for mv in values if mv.metric == metric]

    tpr_gap = _gap("equal_opportunity_difference", rates("true_positive_rate"), "difference")
    fpr_gap = _gap("false_positive_rate_difference", rates("false_positive_rate"), "difference")
    out += [
        _gap("demographic_parity_difference", rates("selection_rate"), "difference"),
        _gap("disparate_impact_ratio", rates("selection_rate"), "ratio"),
        tpr_gap,
        _equalized_odds(tpr_gap, fpr_gap),
    ]
    return MetricSet(tuple(out))


def _equalized_odds(tpr_gap: MetricValue, fpr_gap: MetricValue) -> MetricValue:
    """max(TPR gap, FPR gap): needs both gaps, else the worst case is unknown."""
    details = {"true_positive_rate_difference": tpr_gap.value, "false_positive_rate_difference": fpr_gap.value}
    if tpr_gap.value is None or fpr_gap.value is None:
        missing = tpr_gap if tpr_gap.value is None else fpr_gap
        return MetricValue("equalized_odds_difference", None, min(tpr_gap.n, fpr_gap.n), missing=missing.missing,
                           note=missing.note, details=details)
    return MetricValue("equalized_odds_difference", max(tpr_gap.value, fpr_gap.value), tpr_gap.n + fpr_gap.n,
                       details=details)
