"""Synthetic prediction events for the drift tests and benchmarks, loaded straight into the embedded store.

Bulk-loads a DataFrame through Arrow (the ingest path is tested by its own
suite; here we need a million rows in seconds), with the columns the
contract and ``duckdb_schema`` define.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from mlmon.stores.duckdb.schema import ensure_family_columns, ensure_schema, quote

NUMERIC = "mlmon.features.numeric."
CATEGORICAL = "mlmon.features.categorical."


def make_features(rng: np.random.Generator, n: int, numeric: int = 3, categorical: int = 2,
                  shifts: dict[str, float] | None = None, cat_shift: dict[str, float] | None = None,
                  missing: float = 0.0) -> pd.DataFrame:
    """Columns num_0.. (normal, num_i ~ N(i, 1 + i/10)) and cat_0.. (5 levels, fixed proportions).

    ``shifts``: feature -> mean shift in its standard deviations. ``cat_shift``:
    feature -> percentage points moved from level 'b' to level 'a'.
    """
    shifts, cat_shift = shifts or {}, cat_shift or {}
    cols: dict[str, np.ndarray] = {}
    for i in range(numeric):
        sd = 1 + i / 10
        name = f"num_{i}"
        x = rng.normal(i + shifts.get(name, 0.0) * sd, sd, n)
        if missing:
            x[rng.random(n) < missing] = np.nan
        cols[name] = x
    base = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
    levels = np.array(["a", "b", "c", "d", "e"])
    for j in range(categorical):
        name = f"cat_{j}"
        p = base.copy()
        moved = cat_shift.get(name, 0.0)
        p[0] += moved
        p[1] -= moved
        cols[name] = levels[rng.choice(5, size=n, p=p)]
    return pd.DataFrame(cols)


def to_events(features: pd.DataFrame, model: str, version: str, start: datetime, span: timedelta,
              rng: np.random.Generator, segment: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Prediction-event columns (dotted contract names) for feature rows spread evenly over [start, start+span)."""
    n = len(features)
    out: dict[str, object] = {
        "@timestamp": pd.Series(pd.Timestamp(start) + pd.to_timedelta(np.linspace(0, span.total_seconds(), n,
                                                                                  endpoint=False), unit="s")),
        "event.id": [uuid.uuid4().hex for _ in range(n)] if n < 200_000 else
                    (pd.Series(np.arange(n)).astype(str) + "-" + uuid.uuid4().hex).tolist(),
        "mlmon.model.name": model,
        "mlmon.model.version": version,
        "mlmon.model.task": "classification",
        "event.dataset": "mlmon.prediction",
        "mlmon.prediction.score": rng.random(n),
        "mlmon.prediction.label": np.where(rng.random(n) < 0.3, "yes", "no"),
    }
    for col in features.columns:
        prefix = NUMERIC if pd.api.types.is_numeric_dtype(features[col]) else CATEGORICAL
        out[prefix + col] = features[col].to_numpy()
    for seg, values in (segment or {}).items():
        out[f"mlmon.segment.{seg}"] = values
    return pd.DataFrame(out)


def load(con: duckdb.DuckDBPyConnection, events: pd.DataFrame) -> None:
    ensure_schema(con)
    family = [c for c in events.columns if c.startswith(("mlmon.features.", "mlmon.segment."))]
    ensure_family_columns(con, "prediction", family)
    con.register("_mlmon_events", events)
    cols = ", ".join(quote(c) for c in events.columns)
    con.execute(f"INSERT INTO predictions ({cols}) SELECT {cols} FROM _mlmon_events")
    con.unregister("_mlmon_events")
