"""Reference profiles: what "no drift" looks like, summarised once, stored as a document.

A profile holds, per numeric field, ~1000 quantile bin edges (plus the two
open-ended outer bins) with the reference's counts and offset sums per bin
(where inside each bin its values sit), mean, std, min, max and missing count; per categorical field, category frequencies (the most frequent
ones named, the rest in one "other" bucket). Jobs compare windows against the
profile and never re-read the training data.

Fields are keyed by their dotted contract name (``mlmon.features.numeric.age``),
so a profile built from a training file and one built from a production window
describe the same fields the stores aggregate.
"""

from __future__ import annotations

from functools import cached_property

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Self

import numpy as np

from mlmon.core.documents import iso
from mlmon.core.stats import CategoryStats, NumericStats, bin_anchors, offset_sums_of, validate_edges
from mlmon_logging import contract

#: Layout version of the stored profile document.
PROFILE_FORMAT = 1
DEFAULT_BINS = 1000
DEFAULT_MAX_CATEGORIES = 1000
NUMERIC_PREFIX = "mlmon.features.numeric."
CATEGORICAL_PREFIX = "mlmon.features.categorical."
#: Prediction fields profiled for prediction drift, by kind.
PREDICTION_NUMERIC = ("mlmon.prediction.score", "mlmon.prediction.value")
PREDICTION_CATEGORICAL = ("mlmon.prediction.label",)


class ProfileError(ValueError):
    """A profile cannot be built or used (bad data, unknown field, empty column)."""


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """Inner bin edges: distinct, from the minimum to just above the maximum.

    Few distinct values (integers, ratings, flags): see :func:`discrete_edges`,
    each value and each gap between two values has its own bin. Otherwise
    ``inverted_cdf`` quantiles, which are observed values, so ties never yield
    duplicate edges; quantile bins much wider than the bulk (the tails) are
    split evenly, because a shifted window piles its mass into them and
    "uniform inside the bin" would then misplace it. The last edge is the next
    double above the maximum, so the outer bins hold exactly the
    out-of-range values.
    """
    x = np.asarray(values, dtype=np.float64)
    return _edges_of_sorted(np.sort(_finite_present(x)), bins)


def _finite_present(x: np.ndarray) -> np.ndarray:
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ProfileError("no values to profile")
    if not np.isfinite(x).all():
        raise ProfileError("values contain +/-inf; mlmon events carry null for non-finite numbers")
    return x


def _distinct_sorted(xs: np.ndarray) -> np.ndarray:
    return xs[np.concatenate(([True], xs[1:] != xs[:-1]))]


def _edges_of_sorted(xs: np.ndarray, bins: int) -> tuple[float, ...]:
    # One sort serves the distinct values, the quantiles and (in build_from_frame) the counts:
    # np.quantile with 1001 levels re-partitions the data per level (~40 ms per 200k-row column).
    distinct = _distinct_sorted(xs)
    if distinct.size <= bins + 1:
        return discrete_edges(distinct, bins + 1)
    levels = np.linspace(0.0, 1.0, bins + 1)
    # numpy's method="inverted_cdf" (checked equal in the tests): the smallest x with F(x) >= q.
    idx = np.clip(np.ceil(xs.size * levels).astype(np.intp) - 1, 0, xs.size - 1)
    edges = _split_wide_bins(_distinct_sorted(xs[idx]), max_width=float(np.std(xs)) / TAIL_BINS_PER_STD)
    edges = np.append(edges, np.nextafter(edges[-1], np.inf))
    return validate_edges(edges.tolist())


#: Tail bins are split until no wider than std / TAIL_BINS_PER_STD (at most MAX_SPLIT pieces each).
TAIL_BINS_PER_STD = 25
MAX_SPLIT = 100


def _split_wide_bins(edges: np.ndarray, max_width: float) -> np.ndarray:
    if max_width <= 0:
        return edges
    pieces = np.minimum(MAX_SPLIT, np.ceil(np.diff(edges) / max_width)).astype(np.int64)
    wide = np.flatnonzero(pieces > 1)  # only the tail bins: a handful, so the loop is short
    extra = [np.linspace(edges[i], edges[i + 1], pieces[i] + 1)[1:-1] for i in wide]
    return np.unique(np.concatenate([edges, *extra]))


def _stats_of_sorted(xs: np.ndarray, missing: int, edges: tuple[float, ...]) -> NumericStats:
    """NumericStats of sorted present values: bin counts by binary search of the edges in the data."""
    below_each = np.searchsorted(xs, np.asarray(edges), side="left")  # values < e[i]
    counts = np.diff(np.concatenate(([0], below_each, [xs.size])))
    bins = np.repeat(np.arange(counts.size), counts)  # sorted values: each bin's values are one run
    return NumericStats(edges=edges, counts=tuple(counts.tolist()), missing=missing,
                        minimum=float(xs[0]), maximum=float(xs[-1]), total=float(xs.sum()),
                        total_sq=float(np.sum(np.square(xs))), below_sum=float(xs[:below_each[0]].sum()),
                        above_sum=float(xs[below_each[-1]:].sum()),
                        offset_sums=tuple(offset_sums_of(xs, bins, bin_anchors(edges)).tolist()))


def discrete_edges(distinct: np.ndarray, max_points: int = DEFAULT_BINS + 1) -> tuple[float, ...]:
    """Edges of a reference with few distinct values: each value v, and the next double above it.

    Bin ``[v, nextafter(v))`` holds exactly v; bin ``[nextafter(v), v')`` the values
    strictly between v and the next value v', which the reference never took. A
    current value between two reference values (4.5 against integers) so never
    shares a bin with a reference value: KS is exact for any current values, and
    where the gaps' contents sit comes from the current sample's offset sums
    (:func:`mlmon.metrics.distances.wasserstein_binned`). Values on a grid (integers,
    half-steps) with holes (a Poisson tail's missing 15 between 14 and 16) get the
    holes too, as empty points, so that every gap is one grid step wide; at most
    ``max_points`` points in all. The gaps are then split evenly into as many
    bins as keep the edges within ``2 * max_points`` (a Poisson feature's 17
    values: 124 bins per gap): what offset sums cannot say (how values spread
    where the two CDFs cross) is bounded by a bin's width, so gap bins are made
    as narrow as a continuous profile's. The reference has no value in any gap bin.
    """
    points = _with_grid_holes(np.asarray(distinct, dtype=np.float64), max_points)
    above = np.nextafter(points, np.inf)
    splits = _gap_splits(points, 2 * max_points)
    # np.unique: a value whose next double is the next value has no gap to bin, nor do splits a few doubles wide.
    return validate_edges(np.unique(np.concatenate([points, above, splits])).tolist())


def _gap_splits(points: np.ndarray, max_edges: int) -> np.ndarray:
    """Inner edges splitting each gap between neighbouring points into equal bins (as many as the budget allows)."""
    if points.size < 2:
        return points[:0]
    per_gap = max(1, (max_edges - 2 * points.size) // (points.size - 1) + 1)
    if per_gap == 1:
        return points[:0]
    fractions = np.arange(1, per_gap) / per_gap
    splits = points[:-1, None] + np.diff(points)[:, None] * fractions[None, :]
    return splits[splits > np.nextafter(points[:-1], np.inf)[:, None]]


#: Relative tolerance for "every gap between distinct values is a whole number of grid steps".
GRID_TOLERANCE = 1e-9


def _with_grid_holes(points: np.ndarray, max_points: int) -> np.ndarray:
    """The distinct values plus the grid points missing between them (unchanged when not on a grid)."""
    if points.size < 3:
        return points
    gaps = np.diff(points)
    step = float(gaps.min())
    steps = np.rint(gaps / step)
    if step <= 0 or np.any(np.abs(gaps - steps * step) > GRID_TOLERANCE * gaps) or steps.sum() + 1 > max_points:
        return points
    holes = [points[i] + step * np.arange(1, int(steps[i])) for i in np.flatnonzero(steps > 1)]
    return np.unique(np.concatenate([points, *holes]))


def is_discrete(values: np.ndarray, edges: tuple[float, ...], bins: int = DEFAULT_BINS) -> bool:
    """True when ``edges`` are :func:`discrete_edges` of the values: steps, not slopes."""
    x = np.asarray(values, dtype=np.float64)
    distinct = np.unique(x[~np.isnan(x)])
    return distinct.size > 0 and discrete_edges(distinct, bins + 1) == tuple(edges)


@dataclass(frozen=True)
class ReferenceProfile:
    model: str
    version: str
    rows: int
    numeric: Mapping[str, NumericStats]
    categorical: Mapping[str, CategoryStats]
    #: Numeric fields whose every distinct value has its own bin (integers, flags, ratings).
    discrete: frozenset[str] = frozenset()
    source: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @cached_property  # hashing ~1000 edges per feature: computed once, not per metric document
    def id(self) -> str:
        """Content-addressed: the same data profiled twice gives the same id (no duplicate documents)."""
        body = json.dumps(self._body(), sort_keys=True, separators=(",", ":")).encode()
        return f"{self.model}-{self.version}-{hashlib.sha256(body).hexdigest()[:16]}"

    def fields(self) -> list[str]:
        return sorted([*self.numeric, *self.categorical])

    def _body(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "numeric": {k: v.to_dict() for k, v in sorted(self.numeric.items())},
            "categorical": {k: v.to_dict() for k, v in sorted(self.categorical.items())},
            "discrete": sorted(self.discrete),
        }

    def to_document(self) -> dict[str, Any]:
        """The stored document: searchable header fields, and the profile body (not indexed in ES)."""
        return {
            "@timestamp": iso(self.created_at),
            "mlmon": {"model": {"name": self.model, "version": self.version}},
            "reference": {"id": self.id, "source": self.source, "rows": self.rows,
                          "created_at": iso(self.created_at), "fields": self.fields()},
            "profile": self._body(),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Self:
        try:
            body = doc["profile"]
            if int(body["format"]) > PROFILE_FORMAT:
                raise ProfileError(f"profile format {body['format']} is newer than this mlmon ({PROFILE_FORMAT})")
            return cls(
                model=str(body["model"]), version=str(body["version"]), rows=int(body["rows"]),
                numeric={k: NumericStats.from_dict(v) for k, v in body["numeric"].items()},
                categorical={k: CategoryStats.from_dict(v) for k, v in body["categorical"].items()},
                discrete=frozenset(body.get("discrete", ())),
                source=str(doc.get("reference", {}).get("source", "")),
                created_at=datetime.fromisoformat(doc["reference"]["created_at"].replace("Z", "+00:00")),
            )
        except (KeyError, TypeError) as err:
            raise ProfileError(f"not a reference profile document (missing {err})") from err


def field_name(column: str, numeric: bool) -> str:
    """Contract field of a training-data column: plain names become features, dotted names stay."""
    if column.startswith("mlmon."):
        if contract.field_type(column) is None:
            raise ProfileError(f"column {column!r} is not a field of the event contract")
        return column
    if not contract.is_valid_name(column):
        raise ProfileError(f"column {column!r} is not a valid feature name (letters, digits, '_' or '-')")
    return (NUMERIC_PREFIX if numeric else CATEGORICAL_PREFIX) + column


def build_from_frame(frame: Any, model: str, version: str, *, bins: int = DEFAULT_BINS,
                     max_categories: int = DEFAULT_MAX_CATEGORIES, numeric: Iterable[str] = (),
                     categorical: Iterable[str] = (), exclude: Iterable[str] = (), source: str = "") -> ReferenceProfile:
    """Profile a pandas DataFrame of training data (one column per feature).

    Column kinds are inferred from dtypes (numbers -> numeric; strings, bools,
    categories -> categorical) unless named in ``numeric`` / ``categorical``.
    """
    import pandas as pd

    if len(frame) == 0:
        raise ProfileError("the reference data has no rows")
    force_num, force_cat, skip = set(numeric), set(categorical), set(exclude)
    unknown = (force_num | force_cat | skip) - set(map(str, frame.columns))
    if unknown:
        raise ProfileError(f"columns not in the data: {sorted(unknown)}")
    num_stats: dict[str, NumericStats] = {}
    cat_stats: dict[str, CategoryStats] = {}
    discrete: set[str] = set()
    for col in map(str, frame.columns):
        if col in skip:
            continue
        series = frame[col]
        is_num = col in force_num or (col not in force_cat and pd.api.types.is_numeric_dtype(series)
                                      and not pd.api.types.is_bool_dtype(series))
        name = field_name(col, is_num)
        if is_num:
            try:
                values = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
            except (ValueError, TypeError) as err:
                raise ProfileError(f"column {col!r} declared numeric holds non-numbers: {err}") from err
            if np.isnan(values).all():
                raise ProfileError(f"column {col!r} has no values")
            try:
                xs = np.sort(_finite_present(values))
            except ProfileError as err:
                raise ProfileError(f"column {col!r}: {err}") from err
            edges = _edges_of_sorted(xs, bins)
            num_stats[name] = _stats_of_sorted(xs, values.size - xs.size, edges)
            if _distinct_sorted(xs).size <= bins + 1:
                discrete.add(name)  # _edges_of_sorted gave every value and every gap its own bin
        else:
            cat_stats[name] = _category_stats(series, max_categories)
    if not num_stats and not cat_stats:
        raise ProfileError("no columns left to profile")
    return ReferenceProfile(model=model, version=version, rows=len(frame), numeric=num_stats,
                            categorical=cat_stats, discrete=frozenset(discrete), source=source)


def _category_stats(series: Any, max_categories: int) -> CategoryStats:
    """Category counts of a column, as the emitter would log its values as keywords.

    Counted by pandas first, so the per-value conversion below runs once per
    distinct value, not once per row.
    """
    import pandas as pd

    tally: dict[str, int] = {}
    missing = 0
    for value, count in series.value_counts(dropna=False, sort=False).items():
        key = _as_keyword(value, pd.isna)
        if key is None:
            missing += int(count)
        else:
            tally[key] = tally.get(key, 0) + int(count)
    return CategoryStats.from_counts(tally, missing, max_categories)


def _as_keyword(value: object, isna: Any) -> str | None:
    # Bools become "true"/"false", as the emitter logs them (JSON booleans as keywords).
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if value is None or (np.isscalar(value) and isna(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
