"""Building reference profiles from what users have: a training table, or a production window in the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from mlmon.core.documents import iso
from mlmon.core.queries import WindowQuery
from mlmon.core.reference import DEFAULT_BINS, DEFAULT_MAX_CATEGORIES, ProfileError, ReferenceProfile
from mlmon.core.stats import validate_edges
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
    counts every field over those edges.
    """
    fields = [f for f in store.fields(model, version)]
    num = [f for f in fields if contract.field_type(f) == "double"]
    cat = [f for f in fields if contract.field_type(f) == "keyword"]
    if not fields:
        raise ProfileError(f"no feature or prediction fields for model {model!r} in the store")
    levels = np.linspace(0.0, 1.0, bins + 1).tolist()
    quantiles = store.quantiles(model, start, end, num, levels, version)
    edges: dict[str, tuple[float, ...]] = {}
    discrete: set[str] = set()
    for f in num:
        q = np.unique(np.asarray(quantiles.get(f, []), dtype=np.float64))
        q = q[np.isfinite(q)]
        if q.size == 0:
            continue  # no values of this field in the window
        edges[f] = validate_edges(np.append(q, np.nextafter(q[-1], np.inf)).tolist())
    stats = store.window_statistics(WindowQuery(model=model, start=start, end=end, version=version, numeric=edges,
                                                categorical={f: () for f in cat}, max_unseen=max_categories))
    if stats.rows == 0:
        raise ProfileError(f"no {model!r} predictions between {start.isoformat()} and {end.isoformat()}")
    for f, st in stats.numeric.items():
        # Every distinct value became an edge only if the window had few distinct values.
        if sum(1 for c in st.counts[1:-1] if c) == len(st.edges) - 1 and len(st.edges) - 1 < bins:
            discrete.add(f)
    categorical = {f: c for f, c in stats.categorical.items() if c.present}
    return ReferenceProfile(model=model, version=version, rows=stats.rows, numeric=dict(stats.numeric),
                            categorical=categorical, discrete=frozenset(discrete),
                            source=f"window:{iso(start)}/{iso(end)}")
