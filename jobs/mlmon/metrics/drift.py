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

:func:`numeric_drift_windows` / :func:`categorical_drift_windows` compute a
field's metrics for many windows at once (what the drift job calls): each
window's values are those it gets alone, to the bit; the per-window functions
are the batch of one.

The building blocks (:mod:`mlmon.metrics.distances`) are re-exported here, and
the data-quality shares the drift job reports next to the drift metrics live
here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from mlmon.core.stats import CategoryStats, NumericStats
from mlmon.metrics import registry
from mlmon.metrics.distances import (COARSE_BINS, PSI_EPSILON, NumericSamples, category_rows, category_table,
                                     chi_square, coarsen, coarsen_rows, hellinger, jensen_shannon, ks_pvalue,
                                     ks_statistic, proportions, psi, same_mask_rows, wasserstein_binned)
from mlmon.metrics.registry import Comparisons, DriftMetric, Kind, Measured
from mlmon.metrics.results import Detail, MetricSet, MetricValue

__all__ = ["COARSE_BINS", "PSI_EPSILON", "categorical_drift", "categorical_drift_windows", "category_table",
           "chi_square", "coarsen", "hellinger", "jensen_shannon", "ks_pvalue", "ks_statistic", "missing_share",
           "numeric_drift", "numeric_drift_windows", "out_of_range_share", "proportions", "psi", "unseen_categories",
           "wasserstein_binned"]

NO_VALUES = "no values in one of the samples"


# --- per-field results -----------------------------------------------------------

def numeric_drift(reference: NumericStats, current: NumericStats, discrete: bool = False,
                  coarse_bins: int = COARSE_BINS, *, feature: str = "") -> MetricSet:
    """The registered numeric drift metrics of one field. ``current`` must be binned on ``reference.edges``."""
    return numeric_drift_windows(reference, (current,), discrete, coarse_bins, feature=feature)[0]


def numeric_drift_windows(reference: NumericStats, currents: Sequence[NumericStats], discrete: bool = False,
                          coarse_bins: int = COARSE_BINS, *, feature: str = "") -> list[MetricSet]:
    """:func:`numeric_drift` of many windows of one field, each metric computed for all of them at once."""
    for current in currents:
        if current.edges is not reference.edges and current.edges != reference.edges:
            raise ValueError("current statistics must be binned on the reference's edges")
    metrics, test = registry.drift_metrics("numeric"), _test_name("numeric")
    n_r = reference.present
    out, live = _without_values("numeric", metrics, n_r, [c.present for c in currents], feature)
    if live:
        samples = NumericSamples.of([currents[i] for i in live])
        fine = Comparisons("numeric", registry.FINE, reference.counts_array(), samples.counts, n_r,
                           tuple(int(s.present) for s in samples.stats), discrete=discrete, reference=reference,
                           currents=samples)
        ref_coarse, cur_coarse = coarsen_rows(fine.ref_counts, fine.cur_counts, coarse_bins)
        # coarsen() drops the groups empty on both sides, which vary by window: windows with the same
        # groups are one rectangular batch.
        coarse = [(rows, replace(fine, binning=registry.COARSE, ref_counts=ref_coarse[keep],
                                 cur_counts=cur_coarse[rows][:, keep], n_current=tuple(fine.n_current[r] for r in rows),
                                 currents=samples.take(rows)))
                  for rows, keep in same_mask_rows((ref_coarse + cur_coarse) > 0)]
        measured = {m.name: _measure(m, fine, coarse, len(live)) for m in metrics}
        mean_r = reference.mean
        assert mean_r is not None
        coarse_sizes = [0] * len(live)
        for rows, batch in coarse:
            for r in rows:
                coarse_sizes[r] = batch.ref_counts.size
        for j, i in enumerate(live):
            mean_c = currents[i].mean
            assert mean_c is not None
            details: dict[str, Detail] = {
                "reference_std": reference.std or 0.0, "reference_mean": mean_r, "current_mean": mean_c,
                "bins": len(reference.edges) + 1, "coarse_bins": coarse_sizes[j],
            }
            out[i] = _evaluate(test, metrics, [measured[m.name][j] for m in metrics], details, feature,
                               n_r, fine.n_current[j])
    return [m for m in out if m is not None]


def _without_values(kind: Kind, metrics: tuple[DriftMetric, ...], n_r: int, presents: Sequence[int],
                    feature: str) -> tuple[list[MetricSet | None], list[int]]:
    """Per window: its insufficient-data result when one sample has no values (else None), and the others' indexes."""
    out: list[MetricSet | None] = [None] * len(presents)
    live = []
    for i, n_c in enumerate(presents):
        if n_r == 0 or n_c == 0:
            out[i] = _insufficient(kind, metrics, n_r, n_c, feature)
        else:
            live.append(i)
    return out, live


def _measure(metric: DriftMetric, fine: Comparisons, coarse: list[tuple[np.ndarray, Comparisons]],
             windows: int) -> Sequence[float | Measured]:
    """One numeric metric of every window, on its binning."""
    if metric.binnings["numeric"] == registry.FINE:
        return metric.measure(fine)
    out: list[float | Measured | None] = [None] * windows
    for rows, batch in coarse:
        for r, value in zip(rows, metric.measure(batch)):
            out[r] = value
    return [v for v in out if v is not None]


def categorical_drift(reference: CategoryStats, current: CategoryStats, *, feature: str = "") -> MetricSet:
    """The registered categorical drift metrics of one field, on the reference's categories plus ``__other__``."""
    return categorical_drift_windows(reference, (current,), feature=feature)[0]


def categorical_drift_windows(reference: CategoryStats, currents: Sequence[CategoryStats], *,
                              feature: str = "") -> list[MetricSet]:
    """:func:`categorical_drift` of many windows of one field, each metric computed for all of them at once."""
    metrics, test = registry.drift_metrics("categorical"), _test_name("categorical")
    n_r = reference.present
    out, live = _without_values("categorical", metrics, n_r, [c.present for c in currents], feature)
    if live:
        names, r, c = category_rows(reference, [currents[i] for i in live])
        table = Comparisons("categorical", registry.CATEGORIES, r, c, n_r,
                            tuple(currents[i].present for i in live), labels=tuple(names))
        measured = [m.measure(table) for m in metrics]
        for j, i in enumerate(live):
            out[i] = _evaluate(test, metrics, [values[j] for values in measured], {}, feature, n_r,
                               table.n_current[j])
    return [m for m in out if m is not None]


def _test_name(kind: Kind) -> str:
    test = registry.field_test(kind)
    return test.name if test is not None else ""


def _insufficient(kind: Kind, metrics: tuple[DriftMetric, ...], n_r: int, n_c: int, feature: str) -> MetricSet:
    test = _test_name(kind)
    return MetricSet(tuple(
        MetricValue(m.name, None, n_c, feature=feature, missing="insufficient_data", note=NO_VALUES,
                    details={"reason": NO_VALUES}, test=test, n_reference=n_r)
        for m in metrics))


def _evaluate(test: str, metrics: tuple[DriftMetric, ...], measured: Sequence[float | Measured],
              field_details: Mapping[str, Detail], feature: str, n_r: int, n_c: int) -> MetricSet:
    """One window's values; the field's test p-value and all details go to every value."""
    p_value = next((out.p_value if isinstance(out, Measured) else None
                    for m, out in zip(metrics, measured) if m.test), None)
    details: dict[str, Detail] = {}
    for out in measured:
        if isinstance(out, Measured):
            details.update(out.details)
    details.update(field_details)
    values = []
    for m, out in zip(metrics, measured):
        value, note = (out.value, out.note) if isinstance(out, Measured) else (out, "")
        if math.isfinite(value):
            values.append(MetricValue(m.name, value, n_c, feature=feature, details=dict(details),
                                      p_value=p_value, test=test, n_reference=n_r))
        else:
            values.append(MetricValue(m.name, None, n_c, feature=feature, missing="undefined",
                                      note=note or f"{m.name} is not finite ({value})",
                                      details=dict(details), p_value=p_value, test=test, n_reference=n_r))
    return MetricSet(tuple(values))


# --- data quality ------------------------------------------------------------------

def missing_share(stats: NumericStats | CategoryStats) -> float | None:
    return stats.missing / stats.n if stats.n else None


def out_of_range_share(current: NumericStats) -> float | None:
    """Share of present values outside the reference range (the open outer bins)."""
    if current.present == 0:
        return None
    return sum(current.outer_counts) / current.present


def unseen_categories(reference: CategoryStats, current: CategoryStats) -> tuple[float | None, list[str]]:
    """Share of present values in categories the reference never named, and the named ones among them."""
    if current.present == 0:
        return None, []
    unseen = sorted(k for k, v in current.counts.items() if v > 0 and k not in reference.counts)
    n_unseen = current.present - sum(current.counts.get(k, 0) for k in reference.counts)
    return n_unseen / current.present, unseen
