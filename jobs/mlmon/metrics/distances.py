"""Distances and tests between two binned samples of one field. Pure: no I/O.

The building blocks of the drift metrics (:mod:`mlmon.metrics.registry` says
which metric uses which, on which binning): Kolmogorov-Smirnov and its
asymptotic p-value, Wasserstein from counts and offset sums per bin, PSI,
Jensen-Shannon, Hellinger, the chi-square homogeneity test, and the binnings
themselves (:func:`coarsen` for groups of equal reference mass,
:func:`category_table` for categories). Re-exported by :mod:`mlmon.metrics.drift`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from scipy.spatial import distance

from mlmon.core.stats import OTHER, SUM_ROUNDING, CategoryStats, NumericStats, bin_anchors

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
    """Earth mover's distance (W1) between two samples known by their counts and offset sums per bin.

    W1 is the integral of |D|, D = F_ref - F_cur. Over an inner bin [a, b) of
    width w holding shares p (reference) and q (current), with mean positions
    t_r, t_c (0 at a, 1 at b, from the offset sums), the integral of D itself
    is exact whatever the values' layout inside the bin::

        J = w * (D(a) + p * (1 - t_r) - q * (1 - t_c))

    since the integral of a step CDF over [a, b) is F(a) * w + sum over the bin's
    values of (b - x) / n. Where D keeps its sign across the bin (D(a) >= q or
    D(a) <= -p: D stays within [D(a) - q, D(a) + p]) the bin contributes |J|,
    exactly. Otherwise D may cross zero inside the bin, and |D| depends on how
    the values spread around their means, which the sums do not say. There the
    layout is modelled (:func:`_crossing_integrals`): a side with one value in
    the bin is a point at its mean (exact); more values are a mixture of a
    point at their mean and a smooth density with that mean, in the proportion
    the sample's sum of squares shows over all bins (:func:`_spread_share`).
    The true and the modelled integral both lie in
    [|J|, |J| + 2w * min(D(a) + p, q - D(a))] and differ by at most w times the
    share of the bin's mass whose layout is not known, so each crossing bin
    errs by at most ``w * min(2 * min(D(a) + p, q - D(a)), p' + q')`` with
    p', q' the shares of sides of more than one value (:func:`wasserstein_error_bound`
    sums it): the bin's width times the mass moving inside it, and only where
    the CDFs cross. The open outer bins use their offset sums (E[(e0 - X)+] and
    E[(X - e_last)+]), exact when one side has no values there, as a reference
    profile has none beyond its own minimum and maximum.

    Statistics without offset sums (profiles stored before them, windows
    resampled from a profile) are taken as spread uniformly over each bin, the
    linear-CDF integral, or for a ``discrete`` profile as sitting on each bin's
    left edge, where a discrete profile keeps its values. With offset sums on
    both sides ``discrete`` changes nothing: the bins (a point per value, narrow
    bins in the gaps, :func:`mlmon.core.reference.discrete_edges`) say it.
    """
    n_r, n_c = stats_ref.present, stats_cur.present
    if n_r == 0 or n_c == 0:
        return float("nan")
    bins = _inner_bins(stats_ref, stats_cur, discrete)
    inner = np.abs(bins.signed)
    crossing = bins.crossing
    if crossing.any():
        inner[crossing] = _crossing_integrals(bins, crossing)
    lower, upper = (_tail_excess(stats_ref, stats_cur, below) for below in (True, False))
    return float(np.sum(inner * bins.widths)) + abs(lower[0] - lower[1]) + abs(upper[0] - upper[1])


def wasserstein_error_bound(stats_ref: NumericStats, stats_cur: NumericStats, discrete: bool = False) -> float:
    """Largest possible error of :func:`wasserstein_binned` for these statistics (0 when it is exact)."""
    if stats_ref.present == 0 or stats_cur.present == 0:
        return float("nan")
    b = _inner_bins(stats_ref, stats_cur, discrete)
    by_range = 2 * np.minimum(b.start + b.ref.mass, b.cur.mass - b.start)
    by_layout = b.ref.mass * ~b.ref.exact + b.cur.mass * ~b.cur.exact
    inner = float(np.sum(np.where(b.crossing, np.minimum(by_range, by_layout), 0.0) * b.widths))
    # Both sides beyond an outer edge: the integral there lies between |er - ec| and er + ec.
    tails = sum(2 * min(r, c) for r, c in (_tail_excess(stats_ref, stats_cur, below) for below in (True, False)))
    return inner + tails


@dataclass(frozen=True)
class _Side:
    """One sample inside the inner bins: its share of each, and where inside each it sits."""

    mass: np.ndarray      # share of the sample's values in each inner bin
    position: np.ndarray  # their mean's place in the bin, 0 (left edge) to 1 (right edge); 1/2 when unknown
    exact: np.ndarray     # True where the layout is known: one value (a point at its mean), or none
    spread: float         # how much of the smooth law the model mixes in where the layout is not known


@dataclass(frozen=True)
class _Bins:
    widths: np.ndarray
    start: np.ndarray     # D at each inner bin's left edge
    ref: _Side
    cur: _Side

    @property
    def signed(self) -> np.ndarray:
        """The integral of D over each bin, in bin widths: exact (see wasserstein_binned)."""
        return (self.start + self.ref.mass * (1 - self.ref.position)
                - self.cur.mass * (1 - self.cur.position))

    @property
    def crossing(self) -> np.ndarray:
        """Bins where D may change sign: D(a) - q < 0 < D(a) + p."""
        return (self.start < self.cur.mass) & (self.start > -self.ref.mass) & (self.widths > 0)


def _inner_bins(ref: NumericStats, cur: NumericStats, discrete: bool) -> _Bins:
    edges = np.asarray(ref.edges, dtype=np.float64)
    widths = np.diff(edges)
    cum = np.cumsum(ref.counts_array() / ref.present - cur.counts_array() / cur.present)
    # Inner bin i spans [e[i-1], e[i]): D goes from cum[i-1] (after bin i-1) across it.
    return _Bins(widths=widths, start=cum[:-2], ref=_side(ref, edges, widths, discrete),
                 cur=_side(cur, edges, widths, discrete))


def _side(stats: NumericStats, edges: np.ndarray, widths: np.ndarray, discrete: bool) -> _Side:
    counts = stats.counts_array()[1:-1]
    mass = counts / stats.present
    if not stats.offset_sums and discrete:  # a discrete profile's values, each on its bin's left edge
        return _Side(mass, np.zeros_like(widths), np.ones_like(widths, dtype=bool), 0.0)
    if not stats.offset_sums:  # spread evenly over each bin: the linear CDF
        return _Side(mass, np.full_like(widths, 0.5), counts == 0, 1.0)
    sums = np.asarray(stats.offset_sums[1:-1], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        position = np.where(counts > 0, np.clip(sums / (counts * widths), 0.0, 1.0), 0.5)
    return _Side(mass, position, counts <= 1, _spread_share(stats, edges, widths, position))


#: The pooled spread is used only when it stands this many times above the rounding of the sums behind it.
TRUSTED_SPREAD = 10.0


def _spread_share(stats: NumericStats, edges: np.ndarray, widths: np.ndarray, position: np.ndarray) -> float:
    """Share (0..1) of the smooth law in the model of bins holding several values.

    The sample's sum of squares, less what the bins' means explain, is how far
    its values spread around their bins' means (pooled over the bins): 0 when
    each bin's values sit on one point (shifted or rescaled integers), the
    smooth laws' own spread when they are spread (floats). The mixture takes
    the same pooled spread. Sums too coarse to tell (far from zero: 1e6 +
    floats in 3e-3 wide bins) give 1, the smooth law.
    """
    counts = np.asarray(stats.counts, dtype=np.float64)
    inner = counts[1:-1]
    several = inner >= 2
    modelled = float(np.sum((inner * widths * widths * _smooth_variance(position))[several]))
    if modelled <= 0:
        return 0.0  # every such bin's values sit on an edge: point and smooth law are the same
    e0 = float(edges[0])
    offsets = np.asarray(stats.offset_sums, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(counts > 0, bin_anchors(edges) - e0 + offsets / np.maximum(counts, 1), 0.0)
    # sum (x - e0)^2 over all values, less each bin's values taken at their bin's mean: the spread inside the
    # bins. The outer bins' spread stays in (unknown), leaning the model to the smooth law.
    around_e0 = stats.total_sq - 2 * e0 * stats.total + stats.present * e0 * e0
    observed = around_e0 - float(np.dot(counts, means * means))
    rounding = SUM_ROUNDING * (2 + math.log2(max(stats.present, 1))) * (
        abs(stats.total_sq) + 2 * abs(e0 * stats.total) + stats.present * e0 * e0)
    if modelled < TRUSTED_SPREAD * rounding:
        return 1.0
    return float(np.clip(observed / modelled, 0.0, 1.0))


#: Steps per crossing bin on which |D| of the modelled layout is integrated (piecewise linear between them).
CROSSING_STEPS = 64


def _crossing_integrals(b: _Bins, where: np.ndarray) -> np.ndarray:
    """Mean of |D| over the bins ``where`` D may cross zero, on the modelled layout (see wasserstein_binned).

    Each side's share of the bin rises as a point at its mean (weight 1 - spread)
    plus a smooth density with the same mean (weight spread, :func:`_smooth_cdf`).
    |D| is integrated on CROSSING_STEPS even steps plus the two points, taking
    D linear in between: the smooth parts bend little over a step, so this errs
    by well under 1e-3 of the bin's own error bound.
    """
    d0 = b.start[where]
    sides = [(side.mass[where], side.position[where], np.where(side.exact[where], 0.0, side.spread), sign)
             for side, sign in ((b.ref, 1.0), (b.cur, -1.0))]
    grid = np.broadcast_to(np.linspace(0.0, 1.0, CROSSING_STEPS + 1), (d0.size, CROSSING_STEPS + 1))
    u = np.sort(np.concatenate([grid, np.stack([t for _, t, _, _ in sides], axis=1)], axis=1), axis=1)

    def d(at: np.ndarray, right: bool) -> np.ndarray:
        out = np.repeat(d0[:, None], at.shape[1], axis=1)
        for mass, t, spread, sign in sides:
            point = (at >= t[:, None]) if right else (at > t[:, None])
            cdf = (1 - spread)[:, None] * point + spread[:, None] * _smooth_cdf(at, t[:, None])
            out += sign * mass[:, None] * cdf
        return out

    starts, ends = d(u[:, :-1], right=True), d(u[:, 1:], right=False)
    pieces = abs_linear_mean(starts.ravel(), ends.ravel()).reshape(starts.shape)
    return np.sum(pieces * np.diff(u, axis=1), axis=1)


def _smooth_cdf(u: np.ndarray, t: np.ndarray) -> np.ndarray:
    """CDF on [0, 1] of the simplest smooth density with mean t: linear (1/3 <= t <= 2/3), else a triangle.

    A linear density 1 + 12 (t - 1/2)(u - 1/2) is a smooth density's first-order
    shape inside a narrow bin; it stays non-negative for |t - 1/2| <= 1/6. Beyond,
    a triangle falling to zero at 3t (or rising from 1 - 3(1 - t)) has mean t.
    """
    linear = u + 6 * (t - 0.5) * (u * u - u)
    low = 1 - np.square(np.clip(1 - u / np.maximum(3 * t, 1e-300), 0.0, 1.0))
    high = np.square(np.clip(1 - (1 - u) / np.maximum(3 * (1 - t), 1e-300), 0.0, 1.0))
    return np.where(t < 1 / 3, low, np.where(t > 2 / 3, high, linear))


def _smooth_variance(t: np.ndarray) -> np.ndarray:
    """Variance (in squared bin widths) of the :func:`_smooth_cdf` law with mean t."""
    return np.where(t < 1 / 3, t * t / 2, np.where(t > 2 / 3, (1 - t) ** 2 / 2, t - t * t - 1 / 6))


def _tail_excess(ref: NumericStats, cur: NumericStats, below: bool) -> tuple[float, float]:
    """Each side's integral of its CDF below ``edges[0]`` (or of 1 - CDF above ``edges[-1]``)."""
    def excess(s: NumericStats) -> float:
        if s.offset_sums:  # offsets from the outer edges: no cancellation far from zero
            return (-s.offset_sums[0] if below else s.offset_sums[-1]) / s.present
        edge = s.edges[0] if below else s.edges[-1]
        if below:
            return (s.counts[0] * edge - s.below_sum) / s.present
        return (s.above_sum - s.counts[-1] * edge) / s.present
    return excess(ref), excess(cur)


def abs_linear_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of |f| over [0, 1] for f linear from a to b (elementwise)."""
    same_sign = a * b >= 0
    out = np.empty_like(a)
    out[same_sign] = np.abs(a[same_sign] + b[same_sign]) / 2
    cross = ~same_sign
    aa, bb = a[cross], b[cross]
    out[cross] = (aa * aa + bb * bb) / (2 * (np.abs(aa) + np.abs(bb)))
    return out


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
