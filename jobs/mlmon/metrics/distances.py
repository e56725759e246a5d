"""Distances and tests between two binned samples of one field. Pure: no I/O.

The building blocks of the drift metrics (:mod:`mlmon.metrics.registry` says
which metric uses which, on which binning): Kolmogorov-Smirnov and its
asymptotic p-value, Wasserstein from histograms and tail sums, PSI,
Jensen-Shannon, Hellinger, the chi-square homogeneity test, and the binnings
themselves (:func:`coarsen` for groups of equal reference mass,
:func:`category_table` for categories). Re-exported by :mod:`mlmon.metrics.drift`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps
from scipy.spatial import distance

from mlmon.core.stats import OTHER, CategoryStats, NumericStats
from mlmon.metrics.discrete import abs_linear_mean
from mlmon.metrics.discrete import inner_integral as discrete_inner_integral

#: Smoothing for empty bins in PSI (a log ratio): the common 1e-4 floor on proportions.
PSI_EPSILON = 1e-4
#: Groups of equal reference mass used for PSI / Jensen-Shannon / Hellinger on numeric features.
COARSE_BINS = 20


def proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)


def ks_statistic(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-sample KS D: largest gap between the empirical CDFs at the bin edges.

    Exact when every distinct value has its own bin (discrete data); otherwise
    a lower bound of the raw-sample D off by at most the largest bin mass.
    """
    cdf_r = np.cumsum(proportions(ref_counts))
    cdf_c = np.cumsum(proportions(cur_counts))
    return float(np.max(np.abs(cdf_r - cdf_c)))


def ks_pvalue(d: float, n_reference: int, n_current: int) -> float:
    """P-value of D as scipy's ``ks_2samp(method='asymp')`` computes it."""
    if n_reference == 0 or n_current == 0:
        return 1.0
    en = n_reference * n_current / (n_reference + n_current)
    return float(np.clip(sps.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def wasserstein_binned(stats_ref: NumericStats, stats_cur: NumericStats, discrete: bool = False) -> float:
    """Earth mover's distance (W1) between two histograms over the same edges.

    W1 is the integral of |F_ref - F_cur|. Inside a bin both CDFs are taken as
    linear (values uniform in the bin), and the integral of |linear| is exact
    per bin. For ``discrete`` features (:func:`mlmon.core.reference.discrete_edges`:
    every reference value has its own bin, a point, and so has every gap between
    two values) the reference CDF is a step at each bin's left edge, and where
    the current values sit inside their bins comes from the current sample's
    sum and sum of squares (:mod:`mlmon.metrics.discrete`). The open outer bins
    use the sums of the values beyond the edges, for which the integral is
    exact (E[(e0 - X)+] and E[(X - e_last)+]).
    """
    edges = np.asarray(stats_ref.edges, dtype=np.float64)
    n_r, n_c = stats_ref.present, stats_cur.present
    if n_r == 0 or n_c == 0:
        return float("nan")
    if discrete:
        inner = discrete_inner_integral(stats_ref, stats_cur)
    else:
        cum = np.cumsum(stats_ref.counts_array() / n_r - stats_cur.counts_array() / n_c)
        # Inner bin i spans [e[i-1], e[i]): F_r - F_c goes from cum[i-1] to cum[i] across it.
        inner = float(np.sum(abs_linear_mean(cum[:-2], cum[1:-1]) * np.diff(edges)))
    lower = _tail_excess(edges[0], stats_ref, stats_cur, below=True)
    upper = _tail_excess(edges[-1], stats_ref, stats_cur, below=False)
    return inner + lower + upper


def _tail_excess(edge: float, ref: NumericStats, cur: NumericStats, below: bool) -> float:
    """Integral of |F_r - F_c| beyond an outer edge, from the tail sums (exact if one side is empty)."""
    def excess(s: NumericStats) -> float:
        if below:
            return (s.counts[0] * edge - s.below_sum) / s.present
        return (s.above_sum - s.counts[-1] * edge) / s.present
    return abs(excess(ref) - excess(cur))


def coarsen(ref_counts: np.ndarray, cur_counts: np.ndarray, groups: int = COARSE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent fine bins into ~``groups`` bins of equal reference mass (outer bins join their neighbours)."""
    cdf = np.cumsum(proportions(ref_counts))
    # group id of each fine bin: which 1/groups slice of reference mass it ends in.
    gid = np.minimum((cdf * groups - 1e-9).astype(np.int64), groups - 1)
    gid = np.maximum.accumulate(np.clip(gid, 0, groups - 1))
    r = np.bincount(gid, weights=ref_counts, minlength=groups)
    c = np.bincount(gid, weights=cur_counts, minlength=groups)
    keep = (r + c) > 0
    return r[keep], c[keep]


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index, sum((q - p) * ln(q / p)), proportions floored at ``epsilon``."""
    p = np.maximum(proportions(ref_counts), epsilon)
    q = np.maximum(proportions(cur_counts), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]): scipy's implementation."""
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return float("nan")
    return float(distance.jensenshannon(ref_counts, cur_counts, base=2))


def hellinger(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    bc = float(np.sum(np.sqrt(proportions(ref_counts) * proportions(cur_counts))))
    return math.sqrt(max(0.0, 1.0 - bc))


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Two-sample chi-square test of homogeneity on the 2 x k contingency table (scipy's).

    A contingency test, not goodness-of-fit against reference proportions taken
    as exact: the reference is a sample too, and treating it as exact inflates
    the statistic when the two samples differ in size.
    """
    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    res = sps.chi2_contingency(table)
    return float(res.statistic), float(res.pvalue), int(res.dof)


def category_table(reference: CategoryStats, current: CategoryStats) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Aligned counts over the reference's categories plus one ``__other__`` column.

    ``__other__`` holds the reference's own "other" bucket and every current
    value outside the reference's named categories (unseen categories).
    """
    names = sorted(reference.counts)
    ref = np.array([reference.counts[k] for k in names] + [reference.other], dtype=np.float64)
    cur_known = [current.counts.get(k, 0) for k in names]
    unseen = current.present - sum(cur_known)
    cur = np.array(cur_known + [unseen], dtype=np.float64)
    return names + [OTHER], ref, cur
