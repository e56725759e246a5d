"""Synthetic predictions and feedback for the performance tests, loaded straight into the DuckDB tables.

The frames use the contract's dotted column names, so the same rows feed the
embedded store (``load``), the fake Elasticsearch (``tests.performance.fake_es``)
and the scikit-learn baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd

from mlmon.stores.duckdb.schema import EVENT_TABLES, ensure_family_columns, ensure_schema, quote

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


def load(con: duckdb.DuckDBPyConnection, traffic: Traffic) -> None:
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
