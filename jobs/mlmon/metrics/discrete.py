"""Wasserstein's integral over the inner bins of a discrete reference. Pure: no I/O.

A discrete reference (:func:`mlmon.core.reference.discrete_edges`) has one bin
per reference value (a point: the reference CDF steps there) and one per gap
between two values, where the reference has no mass, so its CDF is flat. A
current value inside a gap (4.5 against integers) is known by its bin only;
where it sits inside the gap comes from the current sample's sums:

* the sum fixes the values' mean offset ``delta`` from their gap's left edge
  (one for all gaps, capped at each gap's width). Wherever F_ref - F_cur keeps
  its sign across a gap, the integral of |F_ref - F_cur| over it depends on
  nothing else;
* the sum of squares says whether every value sits at that one offset
  (integers shifted by an offset, or part of the window shifted): then the
  integral is exact in every gap. Otherwise (floats against an integer
  reference, dithered integers, several offsets) the values are taken as
  spread over their gaps, the linear interpolation used for continuous data,
  with the same mean.

Sums are taken relative to the first edge, so an offset such as 1e6 + integers
does not cancel away the fractions; sums too coarse to tell one offset from a
spread (huge offsets, imprecise sums) fall back to the linear model.
"""

from __future__ import annotations

import numpy as np

from mlmon.core.stats import NumericStats

#: How far the offsets' sum of squares may miss its one-offset value (as a share of what a spread over
#: the gaps adds) and still be one offset, and from where on it is a spread. Measured: shifted integers
#: miss by ~1e-13; floats, dithered integers, two offsets or a scaled feature by 0.5 or more.
POINT_MISS = 0.02
SPREAD_MISS = 0.10


def inner_integral(ref: NumericStats, cur: NumericStats) -> float:
    """Integral of |F_ref - F_cur| from the first to the last edge, for a discrete reference."""
    edges = np.asarray(ref.edges, dtype=np.float64)
    widths = np.diff(edges)
    ref_cum = np.cumsum(ref.counts_array() / ref.present)[1:-1]  # flat across inner bin i: its mass is on the left
    cur_cum = np.cumsum(cur.counts_array() / cur.present)
    before, after = ref_cum - cur_cum[:-2], ref_cum - cur_cum[1:-1]
    c = before - after  # current mass of each inner bin
    q = positions(cur, edges, widths)
    # At one offset: F_ref - F_cur is `before` up to q of the width, `after` from there on.
    at_offset = q * np.abs(before) + (1 - q) * np.abs(after)
    # Spread: F_cur rises linearly, plus a jump of |1 - 2q| of c at the left (q < 1/2) or right edge.
    spread = abs_linear_mean(before - np.maximum(0.0, 1 - 2 * q) * c, after + np.maximum(0.0, 2 * q - 1) * c)
    s = spread_share(cur, edges, widths, q)
    return float(np.sum(((1 - s) * at_offset + s * spread) * widths))


def gap_bins(edges: np.ndarray) -> np.ndarray:
    """Inner bins between two reference values (a reference value's own bin is one double wide)."""
    lefts, rights = edges[:-1], edges[1:]
    return rights > np.nextafter(lefts, np.inf)


def positions(cur: NumericStats, edges: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Relative position (0: left edge, 1: right) of the current values in each inner bin.

    One offset ``delta`` from the left edge for every gap, capped at the gap's
    width: the inner values' sum less their bins' left edges, over the number
    of values in gaps (a reference value's own bin holds that value only).
    """
    counts = np.asarray(cur.counts[1:-1], dtype=np.float64)
    gaps = gap_bins(edges)
    in_gaps = float(counts[gaps].sum())
    q = np.zeros_like(widths)
    if in_gaps == 0:
        return q
    e0 = float(edges[0])
    delta = (_inner_sum(cur, e0) - float(np.dot(counts, edges[:-1] - e0))) / in_gaps
    q[gaps] = np.clip(delta / widths[gaps], 0.0, 1.0)
    return q


def spread_share(cur: NumericStats, edges: np.ndarray, widths: np.ndarray, q: np.ndarray) -> float:
    """0 when every value in a gap sits at its bin's position ``q``, 1 (the linear model) otherwise."""
    counts = np.asarray(cur.counts[1:-1], dtype=np.float64)
    w2 = counts * widths * widths
    linear_m2 = np.where(q <= 0.5, 2 * q / 3, (4 * q - 1) / 3)  # uniform, plus a jump at an edge (see above)
    signal = float(np.dot(w2, linear_m2 - q * q))
    if signal <= 0:
        return 1.0  # every value at a bin edge: the two models are the same
    e0 = float(edges[0])
    lefts = edges[:-1] - e0
    # sum (v - e0)^2 over the inner values: total_sq less the outer bins' (as if each held equal values).
    outer = sum(_centred_sq(total, n, e0) for total, n in ((cur.below_sum, cur.counts[0]),
                                                            (cur.above_sum, cur.counts[-1])))
    centred_sq = cur.total_sq - 2 * e0 * cur.total + cur.present * e0 * e0 - outer
    # Less the left edges' part: what is left is the offsets' sum of squares, given their bins' means.
    offsets_sq = centred_sq - float(np.dot(counts, lefts * lefts)) - 2 * float(np.dot(counts * lefts, q * widths))
    miss = abs(offsets_sq - float(np.dot(w2, q * q))) / signal
    return float(np.clip((miss - POINT_MISS) / (SPREAD_MISS - POINT_MISS), 0.0, 1.0))


def _inner_sum(cur: NumericStats, e0: float) -> float:
    """Sum of (v - e0) over the inner values (all present values less the two outer bins)."""
    inner_n = cur.present - cur.counts[0] - cur.counts[-1]
    return cur.total - cur.below_sum - cur.above_sum - inner_n * e0


def _centred_sq(total: float, n: int, e0: float) -> float:
    """sum (v - e0)^2 of n values summing to ``total``, as if they were equal (the least it can be)."""
    return (total - n * e0) ** 2 / n if n else 0.0


def abs_linear_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of |f| over [0, 1] for f linear from a to b (elementwise)."""
    same_sign = a * b >= 0
    out = np.empty_like(a)
    out[same_sign] = np.abs(a[same_sign] + b[same_sign]) / 2
    cross = ~same_sign
    aa, bb = a[cross], b[cross]
    out[cross] = (aa * aa + bb * bb) / (2 * (np.abs(aa) + np.abs(bb)))
    return out
