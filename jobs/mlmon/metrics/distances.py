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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as sps
from scipy.spatial import distance

from mlmon.core.stats import OTHER, SUM_ROUNDING, CategoryStats, NumericStats, bin_anchors

#: Smoothing for empty bins in PSI (a log ratio): the common 1e-4 floor on proportions.
PSI_EPSILON = 1e-4
#: Groups of equal reference mass used for PSI / Jensen-Shannon / Hellinger on numeric features.
COARSE_BINS = 20


def proportions(counts: np.ndarray) -> np.ndarray:
    """Each bin's share of its row's total (the last axis; a 2-D array is one sample per row), 0 for an empty row.

    Row-major, as every ``*_rows`` function here takes its rows: numpy sums a row pairwise only when it
    is contiguous (a column-major array is summed column by column), and one window's sums are pairwise.
    """
    counts = np.ascontiguousarray(counts)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, counts / total, 0.0)


def ks_statistic(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-sample KS D: largest gap between the empirical CDFs at the bin edges.

    Exact when every distinct value has its own bin (discrete data); otherwise
    a lower bound of the raw-sample D off by at most the largest bin mass.
    """
    return float(ks_statistics(ref_counts, cur_counts))


def ks_statistics(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """:func:`ks_statistic` of each row of ``cur_counts`` (1-D: one sample) against ``ref_counts``."""
    cdf_r = np.cumsum(proportions(ref_counts))
    cdf_c = np.cumsum(proportions(cur_counts), axis=-1)
    return np.max(np.abs(cdf_r - cdf_c), axis=-1)


def ks_pvalue(d: float, n_reference: int, n_current: int) -> float:
    """P-value of D as scipy's ``ks_2samp(method='asymp')`` computes it."""
    return float(ks_pvalues(np.array([d]), n_reference, (n_current,))[0])


def ks_pvalues(d: np.ndarray, n_reference: int, n_current: Sequence[int]) -> np.ndarray:
    """:func:`ks_pvalue` of each D against a sample of ``n_current[i]`` values: one call into scipy for all."""
    out = np.ones(len(n_current))
    live = [i for i, n in enumerate(n_current) if n_reference and n]
    if live:
        # Python's int / int: the correctly rounded ratio of the exact product, as for one window.
        en = np.array([n_reference * n_current[i] / (n_reference + n_current[i]) for i in live])
        out[live] = np.clip(sps.kstwo.sf(d[live], np.round(en)), 0.0, 1.0)
    return out


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

    One window of :func:`wasserstein_batch`, which the drift job calls for many.
    """
    return float(wasserstein_batch(stats_ref, NumericSamples.of((stats_cur,)), discrete)[0][0])


def wasserstein_error_bound(stats_ref: NumericStats, stats_cur: NumericStats, discrete: bool = False) -> float:
    """Largest possible error of :func:`wasserstein_binned` for these statistics (0 when it is exact)."""
    return float(wasserstein_batch(stats_ref, NumericSamples.of((stats_cur,)), discrete)[1][0])


@dataclass(frozen=True)
class NumericSamples:
    """Samples of one field on the same edges, one per row: windows compared with one reference at once."""

    stats: tuple[NumericStats, ...]
    counts: np.ndarray       # (rows, bins)
    present: np.ndarray      # (rows,) values present, as floats (the divisor of every share)
    offsets: np.ndarray      # (rows, bins) offset sums; zeros in a row that has none
    has_offsets: np.ndarray  # (rows,) bool

    @classmethod
    def of(cls, stats: Sequence[NumericStats]) -> NumericSamples:
        group = tuple(stats)
        bins = len(group[0].edges) + 1 if group else 0
        offsets = np.zeros((len(group), bins))
        has = np.array([s.has_offsets for s in group], dtype=bool)
        for i in np.flatnonzero(has):
            offsets[i] = group[i].offset_sums_array
        counts = np.array([s.counts_array() for s in group]).reshape(len(group), bins)
        return cls(group, counts, np.array([float(s.present) for s in group]), offsets, has)

    def __len__(self) -> int:
        return len(self.stats)

    def take(self, rows: np.ndarray) -> NumericSamples:
        if len(rows) == len(self) and (np.diff(rows) > 0).all():
            return self  # every row, in order
        return NumericSamples(tuple(self.stats[i] for i in rows), self.counts[rows], self.present[rows],
                              self.offsets[rows], self.has_offsets[rows])


def wasserstein_batch(reference: NumericStats, current: NumericSamples,
                      discrete: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wasserstein_binned` and :func:`wasserstein_error_bound` of each row of ``current``, at once.

    Row by row the same arithmetic as for one window, on 2-D arrays (rows x bins): every operation is
    elementwise or reduces along a row, so each row's result is the one it would get alone, to the bit.
    NaN where a side has no values.
    """
    values, bounds = np.full(len(current), np.nan), np.full(len(current), np.nan)
    live = np.flatnonzero(current.present > 0)
    if reference.present == 0 or live.size == 0:
        return values, bounds
    cur = current.take(live)
    ref = NumericSamples.of((reference,))
    b = _inner_bins(reference.edges_array, ref, cur, discrete)
    crossing = b.crossing
    lower, upper = (_tail_excess(ref, cur, below) for below in (True, False))
    inner = np.abs(b.signed)
    if crossing.any():
        inner[crossing] = _crossing_integrals(b, crossing)
    values[live] = np.sum(inner * b.widths, axis=1) + np.abs(lower[0] - lower[1]) + np.abs(upper[0] - upper[1])
    by_range = 2 * np.minimum(b.start + b.ref.mass, b.cur.mass - b.start)
    by_layout = b.ref.mass * ~b.ref.exact + b.cur.mass * ~b.cur.exact
    inner_bound = np.sum(np.where(crossing, np.minimum(by_range, by_layout), 0.0) * b.widths, axis=1)
    # Both sides beyond an outer edge: the integral there lies between |er - ec| and er + ec.
    bounds[live] = inner_bound + (2 * np.minimum(lower[0], lower[1]) + 2 * np.minimum(upper[0], upper[1]))
    return values, bounds


@dataclass(frozen=True)
class _Side:
    """Samples inside the inner bins (one row each): shares of each bin, and where inside each they sit."""

    mass: np.ndarray      # share of the sample's values in each inner bin
    position: np.ndarray  # their mean's place in the bin, 0 (left edge) to 1 (right edge); 1/2 when unknown
    exact: np.ndarray     # True where the layout is known: one value (a point at its mean), or none
    spread: np.ndarray    # per row: how much of the smooth law the model mixes in where the layout is not known


@dataclass(frozen=True)
class _Bins:
    widths: np.ndarray    # (inner bins,)
    start: np.ndarray     # D at each inner bin's left edge, one row per current sample
    ref: _Side            # one row, broadcast against the current rows
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


def _inner_bins(edges: np.ndarray, ref: NumericSamples, cur: NumericSamples, discrete: bool) -> _Bins:
    widths = np.diff(edges)
    cum = np.cumsum(ref.counts / ref.present[:, None] - cur.counts / cur.present[:, None], axis=1)
    # Inner bin i spans [e[i-1], e[i]): D goes from cum[i-1] (after bin i-1) across it.
    from_e0 = bin_anchors(edges) - edges[0]
    return _Bins(widths=widths, start=cum[:, :-2], ref=_side(ref, edges, widths, from_e0, discrete),
                 cur=_side(cur, edges, widths, from_e0, discrete))


def _side(s: NumericSamples, edges: np.ndarray, widths: np.ndarray, from_e0: np.ndarray, discrete: bool) -> _Side:
    counts = s.counts[:, 1:-1]
    mass = counts / s.present[:, None]
    if s.has_offsets.all():  # the usual case: every row's place inside its bins is known
        return _Side(mass, *_placed(s, counts, edges, widths, from_e0))
    if discrete:  # a discrete profile's values, each on its bin's left edge
        position, exact, spread = np.zeros_like(counts), np.ones_like(counts, dtype=bool), np.zeros(len(s))
    else:  # spread evenly over each bin: the linear CDF
        position, exact, spread = np.full_like(counts, 0.5), counts == 0, np.ones(len(s))
    rows = np.flatnonzero(s.has_offsets)
    if rows.size:
        position[rows], exact[rows], spread[rows] = _placed(s.take(rows), counts[rows], edges, widths, from_e0)
    return _Side(mass, position, exact, spread)


def _placed(s: NumericSamples, counts: np.ndarray, edges: np.ndarray, widths: np.ndarray,
            from_e0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position, exactness and spread share of samples with offset sums (``counts``: their inner bins)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        position = np.where(counts > 0, np.clip(s.offsets[:, 1:-1] / (counts * widths), 0.0, 1.0), 0.5)
    return position, counts <= 1, _spread_shares(s, edges, widths, from_e0, position)


#: The pooled spread is used only when it stands this many times above the rounding of the sums behind it.
TRUSTED_SPREAD = 10.0


def _spread_shares(s: NumericSamples, edges: np.ndarray, widths: np.ndarray, from_e0: np.ndarray,
                   position: np.ndarray) -> np.ndarray:
    """Share (0..1) of the smooth law in the model of bins holding several values, per row.

    The sample's sum of squares, less what the bins' means explain, is how far
    its values spread around their bins' means (pooled over the bins): 0 when
    each bin's values sit on one point (shifted or rescaled integers), the
    smooth laws' own spread when they are spread (floats). The mixture takes
    the same pooled spread. Sums too coarse to tell (far from zero: 1e6 +
    floats in 3e-3 wide bins) give 1, the smooth law.
    """
    inner = s.counts[:, 1:-1]
    # Only the bins of several values enter the model's spread: taken row after row (row-major), each row's
    # run is summed on its own, so with the same (pairwise) rounding as one window's.
    rows, cols = np.nonzero(inner >= 2)
    w = widths[cols]
    terms = inner[rows, cols] * w * w * _smooth_variance(position[rows, cols])
    ends = np.cumsum(np.bincount(rows, minlength=len(s)))
    modelled = [float(np.add.reduce(terms[a - n:a])) for a, n in zip(ends.tolist(), np.diff(ends, prepend=0).tolist())]
    e0 = float(edges[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(s.counts > 0, from_e0 + s.offsets / np.maximum(s.counts, 1), 0.0)
    explained = np.vecdot(s.counts, means * means)  # each row's np.dot, to the bit
    out = np.empty(len(s))
    for i, stats in enumerate(s.stats):
        if modelled[i] <= 0:
            out[i] = 0.0  # every such bin's values sit on an edge: point and smooth law are the same
            continue
        # sum (x - e0)^2 over all values, less each bin's values taken at their bin's mean: the spread inside
        # the bins. The outer bins' spread stays in (unknown), leaning the model to the smooth law.
        around_e0 = stats.total_sq - 2 * e0 * stats.total + stats.present * e0 * e0
        observed = around_e0 - float(explained[i])
        rounding = SUM_ROUNDING * (2 + math.log2(max(stats.present, 1))) * (
            abs(stats.total_sq) + 2 * abs(e0 * stats.total) + stats.present * e0 * e0)
        out[i] = 1.0 if modelled[i] < TRUSTED_SPREAD * rounding else float(np.clip(observed / modelled[i], 0.0, 1.0))
    return out


#: Steps per crossing bin on which |D| of the modelled layout is integrated (piecewise linear between them).
CROSSING_STEPS = 64
_GRID = np.linspace(0.0, 1.0, CROSSING_STEPS + 1)


def _crossing_integrals(b: _Bins, where: np.ndarray) -> np.ndarray:
    """Mean of |D| over the bins ``where`` D may cross zero, on the modelled layout (see wasserstein_binned).

    Each side's share of the bin rises as a point at its mean (weight 1 - spread)
    plus a smooth density with the same mean (weight spread, :func:`_smooth_cdf`).
    |D| is integrated on CROSSING_STEPS even steps plus the two points, taking
    D linear in between: the smooth parts bend little over a step, so this errs
    by well under 1e-3 of the bin's own error bound.

    The bins are independent: they are taken in blocks of one kind of layout on
    each side (no values, a point, the smooth law, a mixture), where a side's
    term is computed in its simplest exact form (x 1 and + 0 left out).
    """
    d0 = b.start[where]
    ref, cur = (_CrossingSide.of(side, sign, where) for side, sign in ((b.ref, 1.0), (b.cur, -1.0)))
    kinds = ref.kinds() * len(_KINDS) + cur.kinds()
    order = np.argsort(kinds, kind="stable")
    kinds = kinds[order]
    runs = np.flatnonzero(np.diff(kinds)) + 1
    out = np.empty(d0.size)
    # Blocks whose (bins x steps) arrays stay in the CPU cache.
    for first, last in zip(np.concatenate(([0], runs)).tolist(), np.concatenate((runs, [d0.size])).tolist()):
        kind_ref, kind_cur = divmod(int(kinds[first]), len(_KINDS))
        for lo in range(first, last, CROSSING_BLOCK):
            block = order[lo:min(lo + CROSSING_BLOCK, last)]
            out[block] = _crossing_block(d0[block], ref.part(block, kind_ref), cur.part(block, kind_cur))
    return out


#: Selected bins per block of :func:`_crossing_integrals` (about 0.25 MB per array of the block).
CROSSING_BLOCK = 512
#: A side's layout in a bin: no values (its term is 0), a point (spread 0), the smooth law (spread 1), a mixture.
_NONE, _POINT, _SMOOTH, _MIXED = _KINDS = (0, 1, 2, 3)


def _crossing_block(d0: np.ndarray, *sides: _CrossingSide) -> np.ndarray:
    u, inserted = _with_points(d0.size, sides[0].t, sides[1].t)
    u_sq_minus_u = u * u - u  # shared by both sides' smooth laws
    smooth = [side.smooth(u, u_sq_minus_u) for side in sides]
    # D just right of each point u (the points' jumps counted: u >= t) ...
    right = np.repeat(d0[:, None], u.shape[1], axis=1)
    for side, sm in zip(sides, smooth):
        if side.kind != _NONE:
            right += side.term(u >= side.t[:, None], sm)
    pieces = abs_linear_mean(right[:, :-1], right[:, 1:])
    # ... equals D just left of it except where u is one of the means (u > t there): a step ending at
    # such a point is measured again with that left value. Only a mean and the grid steps next to it
    # can equal a mean.
    rows = np.repeat(np.arange(d0.size), 2 * len(inserted))
    cols = np.concatenate([np.minimum(at + k, u.shape[1] - 1) for at in inserted for k in (0, 1)]).reshape(
        -1, d0.size).T.ravel()
    on = u[rows, cols]
    hit = ((on == sides[0].t[rows]) | (on == sides[1].t[rows])) & (cols > 0)
    rows, cols, on = rows[hit], cols[hit], on[hit]
    left = d0[rows]
    for side, sm in zip(sides, smooth):
        if side.kind != _NONE:
            left = left + side.term_at(rows, on > side.t[rows], sm[rows, cols])
    pieces[rows, cols - 1] = abs_linear_mean(right[rows, cols - 1], left)
    return np.sum(pieces * np.diff(u, axis=1), axis=1)


@dataclass(frozen=True)
class _CrossingSide:
    """One side in the selected bins: its D term is ``sign * mass * ((1 - spread) * point + spread * smooth)``.

    ``kind`` (when one for all its bins) picks the exact shorter form: 0 with no values (+0 changes no |D|),
    ``weight * point`` for spread 0 (x 1, + 0 x smooth), ``weight * smooth`` for spread 1.
    """

    weight: np.ndarray  # sign * mass
    t: np.ndarray       # the mean's place in the bin
    spread: np.ndarray  # weight of the smooth law: 0 where the layout is known
    kind: int = _MIXED

    @classmethod
    def of(cls, side: _Side, sign: float, where: np.ndarray) -> _CrossingSide:
        spread = np.where(_at(side.exact, where), 0.0, _at(side.spread[:, None], where))
        return cls(sign * _at(side.mass, where), _at(side.position, where), spread)

    def kinds(self) -> np.ndarray:
        return np.where(self.weight == 0, _NONE, np.where(self.spread == 0, _POINT,
                                                          np.where(self.spread == 1, _SMOOTH, _MIXED)))

    def part(self, rows: np.ndarray, kind: int) -> _CrossingSide:
        return _CrossingSide(self.weight[rows], self.t[rows], self.spread[rows], kind)

    def smooth(self, u: np.ndarray, u_sq_minus_u: np.ndarray) -> np.ndarray:
        if self.kind in (_NONE, _POINT):
            return u  # not used
        return _smooth_cdf(u, self.t[:, None], u_sq_minus_u)

    def term(self, point: np.ndarray, smooth: np.ndarray) -> np.ndarray:
        if self.kind == _POINT:
            return self.weight[:, None] * point
        if self.kind == _SMOOTH:
            return self.weight[:, None] * smooth
        return self.weight[:, None] * ((1 - self.spread)[:, None] * point + self.spread[:, None] * smooth)

    def term_at(self, rows: np.ndarray, point: np.ndarray, smooth: np.ndarray) -> np.ndarray:
        """:meth:`term` at single points (row ``rows[i]``), the same arithmetic."""
        if self.kind == _POINT:
            return self.weight[rows] * point
        if self.kind == _SMOOTH:
            return self.weight[rows] * smooth
        return self.weight[rows] * ((1 - self.spread[rows]) * point + self.spread[rows] * smooth)


def _at(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``values`` (one row, or one per current row) at the selected bins of the (rows x bins) mask."""
    return np.broadcast_to(values, where.shape)[where]


def _with_points(n: int, t_ref: np.ndarray, t_cur: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per selected bin, the sorted union of the even grid and the two means (a merge: the grid is sorted),
    and the columns where the means went, each before any grid point equal to it."""
    lo, hi = np.minimum(t_ref, t_cur), np.maximum(t_ref, t_cur)
    rows = np.arange(n)
    at_lo = np.searchsorted(_GRID, lo, side="left")
    at_hi = np.searchsorted(_GRID, hi, side="left") + 1  # after lo, which comes before it
    u = np.empty((n, _GRID.size + 2))
    grid_cells = np.ones(u.shape, dtype=bool)
    grid_cells[rows, at_lo] = False
    grid_cells[rows, at_hi] = False
    u[grid_cells] = np.tile(_GRID, n)
    u[rows, at_lo] = lo
    u[rows, at_hi] = hi
    return u, (at_lo, at_hi)


def _smooth_cdf(u: np.ndarray, t: np.ndarray, u_sq_minus_u: np.ndarray | None = None) -> np.ndarray:
    """CDF on [0, 1] of the simplest smooth density with mean t: linear (1/3 <= t <= 2/3), else a triangle.

    A linear density 1 + 12 (t - 1/2)(u - 1/2) is a smooth density's first-order
    shape inside a narrow bin; it stays non-negative for |t - 1/2| <= 1/6. Beyond,
    a triangle falling to zero at 3t (or rising from 1 - 3(1 - t)) has mean t.
    ``t`` is one mean per row of ``u`` (shape (rows, 1)); each row takes its own branch only.
    """
    if u_sq_minus_u is None:
        u_sq_minus_u = u * u - u
    out = u + 6 * (t - 0.5) * u_sq_minus_u  # the linear law, on every row; the triangles' rows replaced
    for rows, cdf in ((t[:, 0] < 1 / 3, _low_cdf), (t[:, 0] > 2 / 3, _high_cdf)):
        if rows.any():
            out[rows] = cdf(u[rows], t[rows])
    return out


def _low_cdf(u: np.ndarray, t: np.ndarray) -> np.ndarray:
    return 1 - np.square(np.clip(1 - u / np.maximum(3 * t, 1e-300), 0.0, 1.0))


def _high_cdf(u: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.square(np.clip(1 - (1 - u) / np.maximum(3 * (1 - t), 1e-300), 0.0, 1.0))


def _smooth_variance(t: np.ndarray) -> np.ndarray:
    """Variance (in squared bin widths) of the :func:`_smooth_cdf` law with mean t."""
    return np.where(t < 1 / 3, t * t / 2, np.where(t > 2 / 3, (1 - t) ** 2 / 2, t - t * t - 1 / 6))


def _tail_excess(ref: NumericSamples, cur: NumericSamples, below: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each side's integral of its CDF below ``edges[0]`` (or of 1 - CDF above ``edges[-1]``), one per row."""
    def excess(s: NumericStats) -> float:
        if s.has_offsets:  # offsets from the outer edges: no cancellation far from zero
            offsets = s.offset_sums_array
            return float(-offsets[0] if below else offsets[-1]) / s.present
        edge = s.edges[0] if below else s.edges[-1]
        n_below, n_above = s.outer_counts
        if below:
            return (n_below * edge - s.below_sum) / s.present
        return (s.above_sum - n_above * edge) / s.present
    return (np.array([excess(s) for s in ref.stats]), np.array([excess(s) for s in cur.stats]))


def abs_linear_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of |f| over [0, 1] for f linear from a to b (elementwise)."""
    out = np.abs(a + b) / 2  # f keeps its sign (most steps); the few that cross zero are replaced
    cross = np.nonzero(~(a * b >= 0))
    aa, bb = a[cross], b[cross]
    out[cross] = (aa * aa + bb * bb) / (2 * (np.abs(aa) + np.abs(bb)))
    return out


def coarse_groups(ref_counts: np.ndarray, groups: int = COARSE_BINS) -> np.ndarray:
    """Group id of each fine bin: which 1/``groups`` slice of reference mass it ends in (outer bins join their
    neighbours). Depends on the reference alone: computed once for any number of windows."""
    cdf = np.cumsum(proportions(ref_counts))
    gid = np.minimum((cdf * groups - 1e-9).astype(np.int64), groups - 1)
    return np.maximum.accumulate(np.clip(gid, 0, groups - 1))


def coarsen(ref_counts: np.ndarray, cur_counts: np.ndarray, groups: int = COARSE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent fine bins into ~``groups`` bins of equal reference mass (outer bins join their neighbours)."""
    r, c = coarsen_rows(ref_counts, cur_counts[None, :], groups)
    keep = (r + c[0]) > 0
    return r[keep], c[0][keep]


def coarsen_rows(ref_counts: np.ndarray, cur_counts: np.ndarray,
                 groups: int = COARSE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The ``groups`` merged counts of the reference, and of each row of ``cur_counts``, empty groups kept
    (:func:`coarsen` drops the groups empty on both sides, which differ from window to window)."""
    gid = coarse_groups(ref_counts, groups)
    r = np.bincount(gid, weights=ref_counts, minlength=groups)
    # bincount adds each row's weights in order: the same sums as one window's
    c = np.array([np.bincount(gid, weights=row, minlength=groups) for row in cur_counts]).reshape(-1, r.size)
    return r, c


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index, sum((q - p) * ln(q / p)), proportions floored at ``epsilon``."""
    return float(psi_rows(ref_counts, cur_counts[None, :], epsilon)[0])


def psi_rows(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> np.ndarray:
    """:func:`psi` of each row of ``cur_counts``."""
    p = np.maximum(proportions(ref_counts), epsilon)
    q = np.maximum(proportions(cur_counts), epsilon)  # row-major (see proportions)
    return np.sum((q - p) * np.log(q / p), axis=-1)


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]): scipy's implementation."""
    return float(jensen_shannon_rows(ref_counts, cur_counts[None, :])[0])


def jensen_shannon_rows(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """:func:`jensen_shannon` of each row of ``cur_counts`` (NaN where a side is empty), in one scipy call."""
    out = np.full(cur_counts.shape[0], np.nan)
    live = cur_counts.sum(axis=-1) > 0
    if ref_counts.sum() > 0 and live.any():  # row-major rows (see proportions)
        out[live] = distance.jensenshannon(ref_counts, np.ascontiguousarray(cur_counts[live]), base=2, axis=-1)
    return out


def hellinger(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    return float(hellinger_rows(ref_counts, cur_counts[None, :])[0])


def hellinger_rows(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """:func:`hellinger` of each row of ``cur_counts``."""
    bc = np.sum(np.sqrt(proportions(ref_counts) * proportions(cur_counts)), axis=-1)
    return np.array([math.sqrt(max(0.0, 1.0 - float(b))) for b in bc])


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Two-sample chi-square test of homogeneity on the 2 x k contingency table (scipy's).

    A contingency test, not goodness-of-fit against reference proportions taken
    as exact: the reference is a sample too, and treating it as exact inflates
    the statistic when the two samples differ in size.
    """
    stat, p, dof = chi_square_rows(ref_counts, cur_counts[None, :])
    return float(stat[0]), float(p[0]), int(dof[0])


def chi_square_rows(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`chi_square` of each row of ``cur_counts``: (statistics, p-values, degrees of freedom).

    The arithmetic of ``scipy.stats.chi2_contingency`` (expected counts from the
    margins, Yates' correction at one degree of freedom, Pearson's statistic
    summed over the flattened table, ``chdtrc`` for the p-value) on all rows at
    once; a test holds it equal to scipy's, to the bit. Columns empty on both
    sides are left out, as scipy needs: rows with the same empty columns go together.
    """
    rows_n = cur_counts.shape[0]
    stat, pvalue, dof = np.zeros(rows_n), np.ones(rows_n), np.zeros(rows_n, dtype=np.int64)
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    for rows, cols in same_mask_rows((ref + cur) > 0):
        k = int(cols.sum())
        rows = rows[cur[rows][:, cols].sum(axis=1) > 0]
        if k < 2 or ref[cols].sum() == 0 or rows.size == 0:
            continue
        # np.stack makes a fresh row-major array: each table's terms are summed pairwise, as scipy's are
        observed = np.stack([np.broadcast_to(ref[cols], (rows.size, k)), cur[rows][:, cols]], axis=1)
        expected = observed.sum(axis=2, keepdims=True) * observed.sum(axis=1, keepdims=True) / observed.sum(
            axis=(1, 2), keepdims=True)
        if k - 1 == 1:  # Yates' continuity correction, no larger than the difference
            diff = expected - observed
            observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
        terms = (observed - expected) ** 2 / expected
        stat[rows] = terms.reshape(rows.size, 2 * k).sum(axis=1)
        pvalue[rows] = special.chdtrc(float(k - 1), stat[rows])
        dof[rows] = k - 1
    return stat, pvalue, dof


def same_mask_rows(mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rows of a 2-D boolean mask grouped by equal rows: (row indices, the shared row), in first-seen order."""
    if mask.shape[0] == 0:
        return []
    patterns, first, inverse = np.unique(mask, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [(np.flatnonzero(inverse == g), patterns[g]) for g in np.argsort(first)]


def category_table(reference: CategoryStats, current: CategoryStats) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Aligned counts over the reference's categories plus one ``__other__`` column.

    ``__other__`` holds the reference's own "other" bucket and every current
    value outside the reference's named categories (unseen categories).
    """
    names, ref, cur = category_rows(reference, (current,))
    return names, ref, cur[0]


def category_rows(reference: CategoryStats,
                  currents: Sequence[CategoryStats]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """:func:`category_table` of many windows: the names, the reference's row, one row per window."""
    names = sorted(reference.counts)
    ref = np.array([reference.counts[k] for k in names] + [reference.other], dtype=np.float64)
    rows = []
    for current in currents:
        cur_known = [current.counts.get(k, 0) for k in names]
        rows.append(cur_known + [current.present - sum(cur_known)])
    return names + [OTHER], ref, np.array(rows, dtype=np.float64).reshape(len(rows), ref.size)
