"""Drift of one field between a reference and a current window. Pure: no I/O.

:func:`numeric_drift` and :func:`categorical_drift` compute every metric the
registry (:mod:`mlmon.metrics.registry`) lists for the field's kind, each on
its binning: numeric features on the reference profile's quantile bins (~1000,
see :mod:`mlmon.core.reference`) for Kolmogorov-Smirnov and Wasserstein, where
they stay within 1e-3 of scipy's exact values on raw samples, and on those bins
merged into ~20 groups of equal reference mass for PSI, Jensen-Shannon and
Hellinger, because on 1000 bins a 10k-row window leaves most bins empty and
those measures would report sampling noise as drift.

Both return a :class:`~mlmon.metrics.results.MetricSet`, the result shape of
every metric function: one :class:`~mlmon.metrics.results.MetricValue` per
metric, each carrying the field's test (``p_value``, ``test``: KS or
chi-square), ``n`` (current values compared), ``n_reference`` and the field's
details. A field with no values in one of the samples has every value None /
``insufficient_data``.

The building blocks (:mod:`mlmon.metrics.distances`) are re-exported here, and
the data-quality shares the drift job reports next to the drift metrics live
here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from mlmon.core.stats import CategoryStats, NumericStats
from mlmon.metrics import registry
from mlmon.metrics.distances import (COARSE_BINS, PSI_EPSILON, category_table, chi_square, coarsen, hellinger,
                                     jensen_shannon, ks_pvalue, ks_statistic, proportions, psi, wasserstein_binned)
from mlmon.metrics.registry import Binning, Comparison, DriftMetric, Kind, Measured
from mlmon.metrics.results import Detail, MetricSet, MetricValue

__all__ = ["COARSE_BINS", "PSI_EPSILON", "categorical_drift", "category_table", "chi_square", "coarsen", "hellinger",
           "jensen_shannon", "ks_pvalue", "ks_statistic", "missing_share", "numeric_drift", "out_of_range_share",
           "proportions", "psi", "unseen_categories", "wasserstein_binned"]

NO_VALUES = "no values in one of the samples"


# --- per-field results -----------------------------------------------------------

def numeric_drift(reference: NumericStats, current: NumericStats, discrete: bool = False,
                  coarse_bins: int = COARSE_BINS, *, feature: str = "") -> MetricSet:
    """The registered numeric drift metrics of one field. ``current`` must be binned on ``reference.edges``."""
    if current.edges != reference.edges:
        raise ValueError("current statistics must be binned on the reference's edges")
    metrics = registry.drift_metrics("numeric")
    r, c = reference.counts_array(), current.counts_array()
    n_r, n_c = reference.present, current.present
    if n_r == 0 or n_c == 0:
        return _insufficient("numeric", metrics, n_r, n_c, feature)
    fine = Comparison("numeric", registry.FINE, r, c, n_r, n_c, discrete=discrete, numeric=(reference, current))
    rc, cc = coarsen(r, c, coarse_bins)
    coarse = replace(fine, binning=registry.COARSE, ref_counts=rc, cur_counts=cc)
    mean_r, mean_c = reference.mean, current.mean
    assert mean_r is not None and mean_c is not None
    details: dict[str, Detail] = {
        "reference_std": reference.std or 0.0, "reference_mean": mean_r, "current_mean": mean_c,
        "bins": len(reference.edges) + 1, "coarse_bins": int(rc.size),
    }
    return _evaluate("numeric", metrics, {registry.FINE: fine, registry.COARSE: coarse}, details, feature)


def categorical_drift(reference: CategoryStats, current: CategoryStats, *, feature: str = "") -> MetricSet:
    """The registered categorical drift metrics of one field, on the reference's categories plus ``__other__``."""
    metrics = registry.drift_metrics("categorical")
    names, r, c = category_table(reference, current)
    n_r, n_c = reference.present, current.present
    if n_r == 0 or n_c == 0:
        return _insufficient("categorical", metrics, n_r, n_c, feature)
    table = Comparison("categorical", registry.CATEGORIES, r, c, n_r, n_c, labels=tuple(names))
    return _evaluate("categorical", metrics, {registry.CATEGORIES: table}, {}, feature)


def _test_name(kind: Kind) -> str:
    test = registry.field_test(kind)
    return test.name if test is not None else ""


def _insufficient(kind: Kind, metrics: tuple[DriftMetric, ...], n_r: int, n_c: int, feature: str) -> MetricSet:
    test = _test_name(kind)
    return MetricSet(tuple(
        MetricValue(m.name, None, n_c, feature=feature, missing="insufficient_data", note=NO_VALUES,
                    details={"reason": NO_VALUES}, test=test, n_reference=n_r)
        for m in metrics))


def _evaluate(kind: Kind, metrics: tuple[DriftMetric, ...], comparisons: Mapping[Binning, Comparison],
              field_details: Mapping[str, Detail], feature: str) -> MetricSet:
    """Every metric on its binning; the field's test p-value and all details go to every value."""
    measured: list[tuple[DriftMetric, Measured]] = []
    for m in metrics:
        out = m.compute(comparisons[m.binnings[kind]])
        measured.append((m, out if isinstance(out, Measured) else Measured(out)))
    p_value = next((out.p_value for m, out in measured if m.test), None)
    details: dict[str, Detail] = {}
    for _, out in measured:
        details.update(out.details)
    details.update(field_details)
    test = _test_name(kind)
    any_comparison = next(iter(comparisons.values()))
    n_r, n_c = any_comparison.n_reference, any_comparison.n_current
    values = []
    for m, out in measured:
        if math.isfinite(out.value):
            values.append(MetricValue(m.name, out.value, n_c, feature=feature, details=dict(details),
                                      p_value=p_value, test=test, n_reference=n_r))
        else:
            values.append(MetricValue(m.name, None, n_c, feature=feature, missing="undefined",
                                      note=out.note or f"{m.name} is not finite ({out.value})",
                                      details=dict(details), p_value=p_value, test=test, n_reference=n_r))
    return MetricSet(tuple(values))


# --- data quality ------------------------------------------------------------------

def missing_share(stats: NumericStats | CategoryStats) -> float | None:
    return stats.missing / stats.n if stats.n else None


def out_of_range_share(current: NumericStats) -> float | None:
    """Share of present values outside the reference range (the open outer bins)."""
    if current.present == 0:
        return None
    return (current.counts[0] + current.counts[-1]) / current.present


def unseen_categories(reference: CategoryStats, current: CategoryStats) -> tuple[float | None, list[str]]:
    """Share of present values in categories the reference never named, and the named ones among them."""
    if current.present == 0:
        return None, []
    unseen = sorted(k for k, v in current.counts.items() if v > 0 and k not in reference.counts)
    n_unseen = current.present - sum(current.counts.get(k, 0) for k in reference.counts)
    return n_unseen / current.present, unseen
