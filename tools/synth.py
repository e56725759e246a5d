"""Synthetic events shared by the tests and the benchmarks, loaded straight into the embedded store.

Bulk loads go through Arrow (the ingest path is tested by its own suite; here we
need a million rows in seconds), with the contract's dotted column names and
the columns ``duckdb_schema`` defines, so the same rows feed the embedded store,
the fake Elasticsearch of the tests and the scikit-learn baselines.

* Drift: :func:`make_features` (feature frames, optionally shifted),
  :func:`to_events` (prediction events), :func:`load_events`.
* Performance: :func:`binary_traffic` (predictions + delayed, partly duplicated
  feedback), :func:`load_traffic`, :func:`joined` (the pandas reference join).

A development tool (like the rest of ``tools/``): not shipped in the wheel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd

from mlmon.stores.duckdb.schema import EVENT_TABLES, ensure_family_columns, ensure_schema, quote

# --- drift: feature frames and prediction events ---------------------------------------------

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


def load_events(con: duckdb.DuckDBPyConnection, events: pd.DataFrame) -> None:
    """Bulk-load prediction events (from :func:`to_events`) into the embedded store's predictions table."""
    ensure_schema(con)
    family = [c for c in events.columns if c.startswith(("mlmon.features.", "mlmon.segment."))]
    ensure_family_columns(con, "prediction", family)
    con.register("_mlmon_events", events)
    cols = ", ".join(quote(c) for c in events.columns)
    con.execute(f"INSERT INTO predictions ({cols}) SELECT {cols} FROM _mlmon_events")
    con.unregister("_mlmon_events")


# --- performance: predictions with delayed feedback ------------------------------------------

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@dataclass
class Traffic:
    predictions: pd.DataFrame
    feedback: pd.DataFrame


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random 32-hex-digit ids (unique with overwhelming probability), fast enough for a million rows."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype="S16") if n else np.array([], dtype="S16")
    return np.array([b.hex() for b in raw.tolist()], dtype=str)


def _common(kind: str, n: int, model: str, version: str, task: str, ts: pd.Series, rng: np.random.Generator,
            sample_rate: np.ndarray | None) -> dict[str, object]:
    return {"@timestamp": ts, "ecs.version": "8.11.0", "event.kind": "event", "event.dataset": f"mlmon.{kind}",
            "event.id": _ids(rng, n), "event.module": "mlmon", "service.name": "svc",
            "mlmon.schema_version": "1", "mlmon.model.name": model, "mlmon.model.version": version,
            "mlmon.model.task": task, "mlmon.sample_rate": sample_rate}


def binary_traffic(rng: np.random.Generator, n: int, start: datetime = T0, span: timedelta = HOUR, *,
                   model: str = "churn", version: str = "1", label_share: float = 0.7,
                   duplicate_share: float = 0.1, sample_rate: float | None = None,
                   segments: tuple[str, ...] = ("DE", "FR", "US")) -> Traffic:
    """Calibrated binary scores; a share of predictions labelled, some twice (the later one differs)."""
    score = np.round(rng.beta(2, 3, n), 4)
    actual = np.where(rng.random(n) < score, "1", "0")
    pred = np.where(score >= 0.5, "1", "0")
    offsets = np.sort(rng.random(n)) * span.total_seconds()
    ts = pd.Series(pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s")).dt.floor("ms")
    pids = _ids(rng, n)
    rate = None if sample_rate is None else np.full(n, sample_rate)
    preds = pd.DataFrame({**_common("prediction", n, model, version, "classification", ts, rng, rate),
                          "mlmon.prediction.id": pids, "mlmon.prediction.label": pred,
                          "mlmon.prediction.score": score,
                          "mlmon.segment.country": rng.choice(list(segments), n)})
    labelled = rng.random(n) < label_share
    delay = pd.to_timedelta(rng.exponential(6 * 3600, n), unit="s")
    fb_ts = (ts + delay).dt.floor("ms")
    fb = pd.DataFrame({"pid": pids, "actual": actual, "ts": fb_ts})[labelled]
    # Duplicates: an earlier, wrong label that the later (true) one must override.
    dup = fb.sample(frac=duplicate_share, random_state=int(rng.integers(1 << 31)))
    dup = dup.assign(actual=np.where(dup["actual"] == "1", "0", "1"), ts=dup["ts"] - pd.Timedelta(seconds=30))
    fb = pd.concat([fb, dup], ignore_index=True)
    m = len(fb)
    frate = None if sample_rate is None else np.full(m, sample_rate)
    feedback = pd.DataFrame({**_common("feedback", m, model, version, "classification", fb["ts"].reset_index(
        drop=True), rng, frate), "mlmon.prediction.id": fb["pid"].to_numpy(),
        "mlmon.feedback.actual": fb["actual"].to_numpy()})
    return Traffic(preds, feedback)


def load_traffic(con: duckdb.DuckDBPyConnection, traffic: Traffic) -> None:
    """Bulk-load predictions and feedback (from :func:`binary_traffic`) into the embedded store's tables."""
    ensure_schema(con)
    for kind, frame in (("prediction", traffic.predictions), ("feedback", traffic.feedback)):
        family = [c for c in frame.columns if c.startswith(("mlmon.segment.", "mlmon.prediction.scores."))]
        ensure_family_columns(con, kind, family)  # type: ignore[arg-type]
        con.register("_perf_events", frame)
        cols = ", ".join(quote(c) for c in frame.columns)
        con.execute(f"INSERT INTO {EVENT_TABLES[kind]} ({cols}) SELECT {cols} FROM _perf_events")  # type: ignore[index]
        con.unregister("_perf_events")


def joined(traffic: Traffic) -> pd.DataFrame:
    """The reference join in pandas: each prediction with its latest feedback (or NaN)."""
    fb = traffic.feedback.sort_values(["@timestamp", "event.id"]).groupby("mlmon.prediction.id").agg(
        actual=("mlmon.feedback.actual", "last"), fts=("@timestamp", "last"), n_feedback=("event.id", "size"))
    return traffic.predictions.merge(fb, left_on="mlmon.prediction.id", right_index=True, how="left")
