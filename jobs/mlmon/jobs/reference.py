"""Building reference profiles from what users have: a training table, or a production window in the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from mlmon.core.documents import iso
from mlmon.core.queries import WindowQuery
from mlmon.core.reference import DEFAULT_BINS, DEFAULT_MAX_CATEGORIES, ProfileError, ReferenceProfile, discrete_edges
from mlmon.core.stats import NumericStats, validate_edges
from mlmon.stores.protocols import Store
from mlmon_logging import contract


def read_table(path: str) -> Any:
    """Training data from a .parquet or .csv file, as a DataFrame."""
    import pandas as pd

    lower = path.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if lower.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except FileNotFoundError as err:
        raise ProfileError(f"{path}: no such file") from err
    raise ProfileError(f"{path}: expected a .parquet or .csv file")


def build_from_store(store: Store, model: str, version: str, start: datetime, end: datetime, *,
                     bins: int = DEFAULT_BINS, max_categories: int = DEFAULT_MAX_CATEGORIES) -> ReferenceProfile:
    """Profile a production window in the store, from aggregations only (no rows leave the store).

    Edges come from the store's quantiles at ``bins + 1`` levels (exact in DuckDB,
    t-digest estimates in Elasticsearch), then one window-statistics request
    counts every field over those edges. A field whose quantiles collapse to few
    values is binned as a file-built profile bins it (``discrete_edges``: a bin per
    value and per gap) when its counts confirm that only those values occur; else
    (a rare value no quantile landed on) it is counted again over its quantiles.
    """
    fields = [f for f in store.fields(model, version)]
    num = [f for f in fields if contract.field_type(f) == "double"]
    cat = [f for f in fields if contract.field_type(f) == "keyword"]
    if not fields:
        raise ProfileError(f"no feature or prediction fields for model {model!r} in the store")
    levels = np.linspace(0.0, 1.0, bins + 1).tolist()
    quantiles = store.quantiles(model, start, end, num, levels, version)
    edges: dict[str, tuple[float, ...]] = {}
    fallback: dict[str, tuple[float, ...]] = {}
    for f in num:
        q = np.unique(np.asarray(quantiles.get(f, []), dtype=np.float64))
        q = q[np.isfinite(q)]
        if q.size == 0:
            continue  # no values of this field in the window
        # Ties collapsed the quantiles: perhaps few distinct values, binned as discrete_edges
        # (each value and each gap its own bin), confirmed by the counts below.
        edges[f] = quantile_bin_edges(q)
        if q.size <= bins:
            fallback[f], edges[f] = edges[f], discrete_edges(q, bins + 1)
    query = WindowQuery(model=model, start=start, end=end, version=version, numeric=edges,
                        categorical={f: () for f in cat}, max_unseen=max_categories)
    stats = store.window_statistics(query)
    if stats.rows == 0:
        raise ProfileError(f"no {model!r} predictions between {start.isoformat()} and {end.isoformat()}")
    discrete = {f for f in fallback if only_points_hold_values(stats.numeric[f])}
    # A rare value the quantiles skipped sits in a gap: not discrete after all; bin the field by its quantiles.
    redo = {f: e for f, e in fallback.items() if f not in discrete}
    numeric = dict(stats.numeric)
    if redo:
        numeric.update(store.window_statistics(replace(query, numeric=redo, categorical={})).numeric)
    categorical = {f: c for f, c in stats.categorical.items() if c.present}
    return ReferenceProfile(model=model, version=version, rows=stats.rows, numeric=numeric,
                            categorical=categorical, discrete=frozenset(discrete),
                            source=f"window:{iso(start)}/{iso(end)}")


def quantile_bin_edges(q: np.ndarray) -> tuple[float, ...]:
    """Distinct finite quantiles as edges, and the next double above the last (the outer bins hold what is beyond)."""
    return validate_edges(np.append(q, np.nextafter(q[-1], np.inf)).tolist())


def only_points_hold_values(stats: NumericStats) -> bool:
    """True when the edges are points and gaps (``discrete_edges``) and no value fell in a gap or outside."""
    e = stats.edges
    points = [i for i in range(len(e) - 1) if e[i + 1] == np.nextafter(e[i], np.inf)]
    if not points or points[-1] != len(e) - 2:
        return False
    # counts[i + 1] is bin [e[i], e[i + 1]): a point's bin when i is a point, else a gap's.
    point_bins = {i + 1 for i in points}
    return all(c == 0 for b, c in enumerate(stats.counts) if b not in point_bins)
