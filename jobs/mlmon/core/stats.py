"""Sufficient statistics for drift and data quality.

A store answers a time window with these objects (Elasticsearch aggregations
or DuckDB SQL); the pure functions in :mod:`mlmon.metrics.drift` turn them into
metrics. Their size depends on features and bins, never on rows, and they add
up: the statistics of a window are the sum (``+``) of those of its sub-windows.

Performance statistics (confusion counts, score histograms per class,
regression sums) live beside these in :mod:`mlmon.core.perf_stats`; a store's
window answer (:class:`WindowStatistics`) carries one mapping per kind, so a
new kind is one more field, not a new protocol.

Binning convention (every store follows it, Elasticsearch ``range``
aggregations do natively): ``edges`` are ``k`` strictly increasing inner edges
and there are ``k + 1`` bins::

    bin 0      (-inf,     e[0])       values below the reference range
    bin i      [e[i-1],   e[i])       0 < i < k
    bin k      [e[k-1],   +inf)       values above the reference range

A reference profile puts ``e[0]`` at its minimum and ``e[k-1]`` just above its
maximum, so bins 0 and k hold exactly the out-of-reference-range values.

Counts are logged rows (ints): drift compares distributions, which uniform
sampling (``mlmon.sample_rate``) leaves unchanged, and the tests' p-values need
the real number of observations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Self

import numpy as np

from mlmon.core.lazy_tuples import LazyTuples, read_only_copy

#: Column name used in contingency tables for "a category the reference did not list".
OTHER = "__other__"
#: Relative rounding of a double sum per halving level (pairwise / compensated sums, as the stores take).
SUM_ROUNDING = float(np.finfo(np.float64).eps)
#: The variance from the sums is used when it is this many times their rounding (else the histogram's).
TRUSTED_VARIANCE = 1e4


def validate_edges(edges: Iterable[float], name: str = "edges") -> tuple[float, ...]:
    out = tuple(float(e) for e in edges)
    if not out:
        raise ValueError(f"{name}: need at least one edge")
    for e in out:
        if not math.isfinite(e):
            raise ValueError(f"{name} contains a non-finite value: {e!r}")
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name} must be strictly increasing (duplicate edges make empty, ambiguous bins)")
    return out


def bin_counts(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Counts of ``values`` (no NaNs) in the ``len(edges) + 1`` bins of the module convention.

    The reference implementation: stores must agree with it exactly.
    """
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)


class EdgeIndex:
    """Exact bins of many values over fixed edges, the same answer as :func:`bin_counts`, ~5x faster.

    ``np.searchsorted`` on unsorted values runs a branchy binary search per
    value (~130 ns each here); a window of a million values per feature makes
    that the drift job's whole cost. Instead a uniform grid of cells covers
    ``[e[0], e[-1]]``; per cell we keep how many edges lie in earlier cells and
    the (few) edges inside it, so a value's bin is one table lookup plus a
    comparison or two. Exact, not approximate: the cell of a number is a
    monotone function of it, computed the same way for edges and values, so
    every edge in an earlier cell is <= the value and every edge in a later
    cell is > it; only the edges sharing its cell need comparing.
    """

    #: Grid size bounds; the grid grows until no cell holds more than MAX_EDGES_PER_CELL edges.
    MIN_CELLS = 1024
    MAX_CELLS = 1 << 20
    MAX_EDGES_PER_CELL = 3

    def __init__(self, edges: Iterable[float]) -> None:
        self.edges = np.asarray(tuple(edges), dtype=np.float64)
        #: :func:`bin_anchors` of the edges, for the accumulators sharing this index (one per window and segment).
        self.anchors = bin_anchors(self.edges)
        k = self.edges.size
        self._lo = float(self.edges[0])
        span = float(self.edges[-1] - self.edges[0])
        cells = max(self.MIN_CELLS, 1 << int(4 * k - 1).bit_length())
        while True:
            self._cells = cells
            self._scale = cells / span if span > 0 else 1.0
            self._offset = self._lo * self._scale - 1.0
            if not (math.isfinite(self._scale) and math.isfinite(self._offset)):
                crowd = k
                break
            edge_cells = self.cell_of(self.edges)
            crowd = int(np.bincount(edge_cells).max())
            if crowd <= self.MAX_EDGES_PER_CELL or cells >= self.MAX_CELLS:
                break
            cells *= 4
        #: Edges squeezed closer than the grid resolves (pathological data), or a span so small its
        #: scale overflows: plain binary search instead.
        self._exact_search = crowd > self.MAX_EDGES_PER_CELL or not (
            math.isfinite(self._scale) and math.isfinite(self._offset))
        if self._exact_search:
            return
        slots = np.arange(cells + 2)
        # Non-decreasing because cell_of is monotone: searchsorted finds each cell's first edge.
        self._before = np.searchsorted(edge_cells, slots, side="left")
        # Edges inside each cell, padded with NaN (x >= NaN is False, even for x = +inf).
        self._inside = np.full((max(crowd, 1), cells + 2), np.nan)
        for m in range(self._inside.shape[0]):
            j = self._before + m
            ok = j < k
            ok[ok] &= edge_cells[j[ok]] == slots[ok]
            self._inside[m, ok] = self.edges[j[ok]]

    def cell_of(self, values: np.ndarray) -> np.ndarray:
        """Grid cell (0 .. cells + 1) of each value: monotone non-decreasing in the value."""
        # (x - lo) * scale + 1, clipped to [0, cells + 1], truncated; every step is monotone.
        with np.errstate(over="ignore", invalid="ignore"):  # huge values overflow to inf, then clip
            t = np.multiply(values, self._scale)
            np.subtract(t, self._offset, out=t)
        np.clip(t, 0.0, float(self._cells + 1), out=t)
        return t.astype(np.intp)

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value (no NaNs): ``np.searchsorted(edges, values, side="right")``."""
        if self._exact_search:
            return np.searchsorted(self.edges, values, side="right")
        cell = self.cell_of(values)
        idx = self._before.take(cell)
        above = np.empty(values.shape, dtype=bool)
        for row in self._inside:
            np.greater_equal(values, row.take(cell), out=above)
            np.add(idx, above, out=idx, casting="unsafe")
        return idx

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Counts in the ``len(edges) + 1`` bins: equal to :func:`bin_counts`."""
        return np.bincount(self.bins(values), minlength=self.edges.size + 1).astype(np.int64)


class NumericAccumulator:
    """Builds :class:`NumericStats` from values arriving in batches (a store streaming a column)."""

    def __init__(self, edges: tuple[float, ...], index: EdgeIndex | None = None) -> None:
        self.edges = edges
        self.index = index or EdgeIndex(edges)
        self.counts = np.zeros(len(edges) + 1, dtype=np.int64)
        self.missing = 0
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.total = 0.0
        self.total_sq = 0.0
        self.below_sum = 0.0
        self.above_sum = 0.0
        self.anchors = self.index.anchors
        self.offset_sums = np.zeros(len(edges) + 1, dtype=np.float64)

    def add(self, values: np.ndarray, missing: int = 0) -> None:
        """Add present values (NaN counts as missing, as in :meth:`NumericStats.from_values`) and a null count."""
        x = np.asarray(values, dtype=np.float64)
        nan = np.isnan(x)
        if nan.any():
            missing += int(nan.sum())
            x = x[~nan]
        self.missing += missing
        if x.size == 0:
            return
        idx = self.index.bins(x)
        batch = np.bincount(idx, minlength=len(self.edges) + 1)
        self.counts += batch
        self.offset_sums += offset_sums_of(x, idx, self.anchors)
        lo, hi = float(x.min()), float(x.max())
        self.minimum = lo if self.minimum is None else min(self.minimum, lo)
        self.maximum = hi if self.maximum is None else max(self.maximum, hi)
        self.total += float(x.sum())
        # Pairwise (np.sum), not np.dot / einsum: exact to a few ulps at offsets like 1e6 + integers, where
        # Wasserstein reads the values' spread inside their bins from it (mlmon.metrics.distances); no BLAS threads.
        self.total_sq += float(np.sum(np.square(x)))
        if batch[0]:
            self.below_sum += float(x[x < self.edges[0]].sum())
        if batch[-1]:
            self.above_sum += float(x[x >= self.edges[-1]].sum())

    def result(self) -> NumericStats:
        # The arrays themselves: the statistics keep copies and make the tuple fields only if read.
        return NumericStats(edges=self.edges, counts=self.counts, missing=self.missing,  # type: ignore[arg-type]
                            minimum=self.minimum, maximum=self.maximum, total=self.total, total_sq=self.total_sq,
                            below_sum=self.below_sum, above_sum=self.above_sum,
                            offset_sums=self.offset_sums)  # type: ignore[arg-type]


def bin_anchors(edges: Iterable[float]) -> np.ndarray:
    """The point each bin's offsets are measured from: its left edge (bin 0, open below: ``edges[0]``)."""
    e = np.asarray(tuple(edges), dtype=np.float64)
    return np.concatenate((e[:1], e))


def offset_sums_of(values: np.ndarray, bins: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Per bin, the sum of (value - the bin's anchor), given each value's bin index.

    Offsets, not raw sums: a value minus the edge just below it is exact in
    floating point (Sterbenz) and small, so the sum keeps the value's place
    inside a bin 3e-3 wide at 1e6 or at epoch seconds, where a raw sum of
    ~1e10 would have rounded it away. ``np.bincount`` adds them in order; the
    terms are all of one sign and at most a bin wide, so its rounding stays
    relative to the result.
    """
    return np.bincount(bins, weights=values - anchors.take(bins), minlength=anchors.size)


@dataclass(frozen=True)
class NumericStats(LazyTuples):
    """Histogram of one numeric field over given edges, plus moments and range.

    ``counts`` and ``offset_sums`` may be given as arrays (an int64 and a float64 one, as
    :class:`NumericAccumulator` has them): they are then kept as read-only copies, which the drift math
    reads, and the tuple fields are made only when read (:mod:`mlmon.core.lazy_tuples`).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]          # len(edges) + 1 bins, see the module docstring
    missing: int                     # null / absent values
    minimum: float | None            # None when no value is present
    maximum: float | None
    total: float                     # sum of present values
    total_sq: float                  # sum of squares of present values
    below_sum: float = 0.0           # sum of the values in bin 0 (< edges[0])
    above_sum: float = 0.0           # sum of the values in bin k (>= edges[-1])
    #: Per bin, the sum of each value's distance from the bin's left edge (bin 0: from edges[0], so <= 0);
    #: where inside its bin the mass sits, which makes Wasserstein exact (mlmon.metrics.distances).
    #: Empty: not known (profiles stored before it existed), and values are taken as spread over their bins.
    offset_sums: tuple[float, ...] = field(default_factory=tuple)  # no class attribute: see lazy_tuples

    def __post_init__(self) -> None:
        counts, offsets = self.counts, self.offset_sums
        if len(counts) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} counts, got {len(counts)}")
        if len(offsets) and len(offsets) != len(counts):
            raise ValueError(f"{len(counts)} bins need {len(counts)} offset sums, got {len(offsets)}")
        given: object = counts  # the annotation says tuple; the accumulator hands its array
        lowest = given.min() if isinstance(given, np.ndarray) else min(counts)  # one C loop either way (~1000 bins)
        if self.missing < 0 or lowest < 0:
            raise ValueError("counts must be non-negative")
        if isinstance(given, np.ndarray):
            kept = self.__dict__
            ints = read_only_copy(kept.pop("counts"), np.int64)
            # Counts are below 2**53: exact as float64.
            kept.update(_counts_int=ints, _counts_array=read_only_copy(ints, np.float64), present=int(ints.sum()))
            if len(offsets):
                kept["offset_sums_array"] = read_only_copy(kept.pop("offset_sums"), np.float64)
            else:
                kept["offset_sums"] = ()

    def _tuple_source(self, name: str) -> np.ndarray | None:
        kept = self.__dict__
        if name == "counts":
            return kept.get("_counts_int")
        return kept.get("offset_sums_array") if name == "offset_sums" else None

    def __getstate__(self) -> dict[str, Any]:
        """The fields only: the cached arrays below are derived, and a pickle need not carry them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_values(cls, values: np.ndarray, edges: tuple[float, ...]) -> Self:
        """Statistics of raw values (NaN = missing): used for reference data and as the stores' oracle."""
        x = np.asarray(values, dtype=np.float64)
        present = x[~np.isnan(x)]
        bins = np.searchsorted(np.asarray(edges, dtype=np.float64), present, side="right")
        counts = np.bincount(bins, minlength=len(edges) + 1)  # bin_counts, keeping each value's bin
        below = present[present < edges[0]]
        above = present[present >= edges[-1]]
        return cls(
            edges=tuple(edges),
            counts=tuple(int(c) for c in counts),
            missing=int(x.size - present.size),
            minimum=float(present.min()) if present.size else None,
            maximum=float(present.max()) if present.size else None,
            total=float(present.sum()),
            total_sq=float(np.sum(np.square(present))),  # pairwise: see NumericAccumulator.add
            below_sum=float(below.sum()),
            above_sum=float(above.sum()),
            offset_sums=tuple(offset_sums_of(present, bins, bin_anchors(edges)).tolist()),
        )

    # Cached per object (a frozen dataclass still has a __dict__ for them): the drift math reads these for
    # every metric of every window, and converting ~1000-element tuples each time was most of its cost.
    @cached_property
    def present(self) -> int:
        return sum(self.counts)

    @cached_property
    def edges_array(self) -> np.ndarray:
        """``edges`` as a read-only float64 array."""
        return _read_only(self.edges)

    @cached_property
    def offset_sums_array(self) -> np.ndarray:
        """``offset_sums`` as a read-only float64 array (empty when they are not known)."""
        return _read_only(self.offset_sums)

    @property
    def n(self) -> int:
        return self.present + self.missing

    @property
    def outer_counts(self) -> tuple[int, int]:
        """Values below ``edges[0]`` and at or above ``edges[-1]`` (the open outer bins)."""
        counts = self.counts_array()
        return int(counts[0]), int(counts[-1])

    @property
    def has_offsets(self) -> bool:
        """Whether ``offset_sums`` are known (profiles stored before them have none)."""
        return self.offset_sums_array.size > 0

    @property
    def mean(self) -> float | None:
        return self.total / self.present if self.present else None

    @cached_property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1), as pandas and numpy users expect of a profile.

        From the sums when they are precise enough; for values far from zero
        (1e8 + N(0, 1), epoch seconds) sum_sq - sum^2/n cancels to rounding
        noise, and the histogram (bins' middles plus their widths' spread,
        the outer bins at their means) gives it instead.
        """
        n = self.present
        if n < 2:
            return None
        var = (self.total_sq - self.total * self.total / n) / (n - 1)
        rounding = SUM_ROUNDING * (2 + math.log2(n)) * abs(self.total_sq) / (n - 1)
        if var > TRUSTED_VARIANCE * rounding:
            return math.sqrt(var)
        return math.sqrt(self._binned_variance())

    def _binned_variance(self) -> float:
        """Variance (ddof=1) from the histogram, centred on the mean (no large sums cancel)."""
        counts = self.counts_array()
        edges = np.asarray(self.edges, dtype=np.float64)
        lows = self.below_sum / counts[0] if counts[0] else edges[0]
        highs = self.above_sum / counts[-1] if counts[-1] else edges[-1]
        # A bin one double wide holds its left edge's value only (a discrete profile's values): no spread.
        point = edges[1:] <= np.nextafter(edges[:-1], np.inf)
        inner = np.where(point, edges[:-1], (edges[:-1] + edges[1:]) / 2)
        at = np.concatenate(([lows], inner, [highs]))
        widths = np.concatenate(([0.0], np.where(point, 0.0, np.diff(edges)), [0.0]))
        mean = float(np.dot(counts, at)) / self.present
        spread = np.dot(counts, (at - mean) ** 2) + np.dot(counts, widths * widths) / 12
        return float(spread) / (self.present - 1)

    def counts_array(self) -> np.ndarray:
        """``counts`` as a read-only float64 array (the same object on every call)."""
        return self._counts_array

    @cached_property
    def _counts_array(self) -> np.ndarray:
        return _read_only(self.counts)

    def __add__(self, other: NumericStats) -> NumericStats:
        if self.edges != other.edges:
            raise ValueError("cannot add histograms over different edges")
        return NumericStats(
            edges=self.edges,
            counts=tuple(a + b for a, b in zip(self.counts, other.counts)),
            missing=self.missing + other.missing,
            minimum=_opt(min, self.minimum, other.minimum),
            maximum=_opt(max, self.maximum, other.maximum),
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            below_sum=self.below_sum + other.below_sum,
            above_sum=self.above_sum + other.above_sum,
            offset_sums=_add_offset_sums(self, other),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "counts": list(self.counts), "missing": self.missing,
                "min": self.minimum, "max": self.maximum, "sum": self.total, "sum_sq": self.total_sq,
                "below_sum": self.below_sum, "above_sum": self.above_sum,
                # Left out when unknown: a profile stored before offset sums existed keeps its content id.
                **({"offset_sums": list(self.offset_sums)} if self.offset_sums else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(edges=validate_edges(d["edges"]), counts=tuple(int(c) for c in d["counts"]),
                   missing=int(d["missing"]), minimum=d.get("min"), maximum=d.get("max"),
                   total=float(d["sum"]), total_sq=float(d["sum_sq"]),
                   below_sum=float(d.get("below_sum", 0.0)), above_sum=float(d.get("above_sum", 0.0)),
                   offset_sums=tuple(float(v) for v in d.get("offset_sums", ())))


@dataclass(frozen=True)
class CategoryStats:
    """Counts per category of one keyword field.

    ``counts`` names the categories a store was asked about (the reference's)
    plus the most frequent other ones it found (bounded); ``other`` counts
    present values in none of them, so ``present`` is always exact.
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    other: int = 0
    missing: int = 0

    def __post_init__(self) -> None:
        if self.other < 0 or self.missing < 0 or any(c < 0 for c in self.counts.values()):
            raise ValueError("counts must be non-negative")

    @classmethod
    def from_values(cls, values: Iterable[object], max_categories: int | None = None) -> Self:
        """Counts of raw values (None / NaN = missing); beyond ``max_categories`` the rarest go to ``other``."""
        tally: dict[str, int] = {}
        missing = 0
        for v in values:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                missing += 1
                continue
            key = str(v)
            tally[key] = tally.get(key, 0) + 1
        return cls.from_counts(tally, missing, max_categories)

    @classmethod
    def from_counts(cls, tally: Mapping[str, int], missing: int = 0, max_categories: int | None = None) -> Self:
        """Counts per value; beyond ``max_categories`` the rarest (ties: last by name) go to ``other``."""
        ranked = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = ranked if max_categories is None else ranked[:max_categories]
        other = sum(c for _, c in ranked[len(kept):])
        return cls(counts=dict(kept), other=other, missing=missing)

    @property
    def present(self) -> int:
        return sum(self.counts.values()) + self.other

    @property
    def n(self) -> int:
        return self.present + self.missing

    def __add__(self, other: CategoryStats) -> CategoryStats:
        merged = dict(self.counts)
        for k, v in other.counts.items():
            merged[k] = merged.get(k, 0) + v
        return CategoryStats(counts=merged, other=self.other + other.other, missing=self.missing + other.missing)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "other": self.other, "missing": self.missing}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(counts={str(k): int(v) for k, v in d["counts"].items()}, other=int(d.get("other", 0)),
                   missing=int(d.get("missing", 0)))


@dataclass(frozen=True)
class WindowStatistics:
    """A store's answer for one window: row count and statistics per field (dotted contract names).

    Later kinds of statistics (e.g. confusion counts) are added as further
    mappings with empty defaults, so existing stores and callers keep working.
    """

    rows: int
    numeric: Mapping[str, NumericStats] = field(default_factory=dict)
    categorical: Mapping[str, CategoryStats] = field(default_factory=dict)

    def __add__(self, other: WindowStatistics) -> WindowStatistics:
        return WindowStatistics(
            rows=self.rows + other.rows,
            numeric=_add_maps(self.numeric, other.numeric),
            categorical=_add_maps(self.categorical, other.categorical),
        )


def _add_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] + v if k in out else v
    return out


def _add_offset_sums(a: NumericStats, b: NumericStats) -> tuple[float, ...]:
    """Offset sums of a + b: known when both are, or when the side without them has no values."""
    if a.offset_sums and b.offset_sums:
        return tuple(x + y for x, y in zip(a.offset_sums, b.offset_sums))
    if a.offset_sums and b.present == 0:
        return a.offset_sums
    if b.offset_sums and a.present == 0:
        return b.offset_sums
    return ()


def _read_only(values: tuple[float, ...] | tuple[int, ...]) -> np.ndarray:
    out = np.fromiter(values, dtype=np.float64, count=len(values))  # ~15 % faster than np.array on a tuple
    out.flags.writeable = False
    return out


def _opt(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(fn(a, b))
