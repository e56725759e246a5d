"""Sufficient statistics for drift and data quality.

A store answers a time window with these objects (Elasticsearch aggregations
or DuckDB SQL); the pure functions in :mod:`mlmon.metrics.drift` turn them into
metrics. Their size depends on features and bins, never on rows, and they add
up: the statistics of a window are the sum (``+``) of those of its sub-windows.

Performance statistics (confusion counts, score histograms per class,
regression sums) live beside these in :mod:`mlmon.perf_stats`; a store's
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
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

#: Column name used in contingency tables for "a category the reference did not list".
OTHER = "__other__"


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


@dataclass(frozen=True)
class NumericStats:
    """Histogram of one numeric field over given edges, plus moments and range."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]          # len(edges) + 1 bins, see the module docstring
    missing: int                     # null / absent values
    minimum: float | None            # None when no value is present
    maximum: float | None
    total: float                     # sum of present values
    total_sq: float                  # sum of squares of present values
    below_sum: float = 0.0           # sum of the values in bin 0 (< edges[0])
    above_sum: float = 0.0           # sum of the values in bin k (>= edges[-1])

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} counts, got {len(self.counts)}")
        if self.missing < 0 or any(c < 0 for c in self.counts):
            raise ValueError("counts must be non-negative")

    @classmethod
    def from_values(cls, values: np.ndarray, edges: tuple[float, ...]) -> Self:
        """Statistics of raw values (NaN = missing): used for reference data and as the stores' oracle."""
        x = np.asarray(values, dtype=np.float64)
        present = x[~np.isnan(x)]
        counts = bin_counts(present, edges)
        below = present[present < edges[0]]
        above = present[present >= edges[-1]]
        return cls(
            edges=tuple(edges),
            counts=tuple(int(c) for c in counts),
            missing=int(x.size - present.size),
            minimum=float(present.min()) if present.size else None,
            maximum=float(present.max()) if present.size else None,
            total=float(present.sum()),
            total_sq=float(np.dot(present, present)),
            below_sum=float(below.sum()),
            above_sum=float(above.sum()),
        )

    @property
    def present(self) -> int:
        return sum(self.counts)

    @property
    def n(self) -> int:
        return self.present + self.missing

    @property
    def mean(self) -> float | None:
        return self.total / self.present if self.present else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1), as pandas and numpy users expect of a profile."""
        n = self.present
        if n < 2:
            return None
        var = (self.total_sq - self.total * self.total / n) / (n - 1)
        return math.sqrt(max(var, 0.0))

    def counts_array(self) -> np.ndarray:
        return np.asarray(self.counts, dtype=np.float64)

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
        )

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "counts": list(self.counts), "missing": self.missing,
                "min": self.minimum, "max": self.maximum, "sum": self.total, "sum_sq": self.total_sq,
                "below_sum": self.below_sum, "above_sum": self.above_sum}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(edges=validate_edges(d["edges"]), counts=tuple(int(c) for c in d["counts"]),
                   missing=int(d["missing"]), minimum=d.get("min"), maximum=d.get("max"),
                   total=float(d["sum"]), total_sq=float(d["sum_sq"]),
                   below_sum=float(d.get("below_sum", 0.0)), above_sum=float(d.get("above_sum", 0.0)))


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


def _opt(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(fn(a, b))
