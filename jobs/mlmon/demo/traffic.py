"""Simulated production traffic for the demo model: drift, a biased sensor fault, delayed labels.

Day by day, predictions are drawn from held-out rows (with a little jitter so
no two are equal) and logged through ``mlmon_logging`` exactly as a model
service would. Ground truth arrives later, after a random delay, and is logged
on the day it arrives — so the newest windows are always partly labelled.

What goes wrong, from ``drift_day`` on:
- a sensor fault adds +2.5 standard deviations to ``mean_texture`` and
  ``worst_texture`` for samples from the ``rural`` region only (data drift,
  a performance drop, and a fairness gap between regions);
- ``area_error`` is reported 1.6x larger everywhere (a unit change upstream);
- the ``west`` site sends far more samples (categorical drift).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from mlmon.demo.model import REGIONS, SITES, DemoModel
from mlmon_logging import ModelLogger

DRIFTED_NUMERIC = ("mean_texture", "worst_texture", "area_error")
DRIFTED_CATEGORICAL = ("site",)
BIASED_SEGMENT = ("region", "rural")
DRIFTED_SITE_SHARES = (0.25, 0.2, 0.15, 0.4)


@dataclass
class TrafficState:
    """Labels not yet delivered, ordered by arrival time."""

    pending: list[tuple[datetime, str, int]] = field(default_factory=list)
    predictions: int = 0
    feedback: int = 0
    explanations: int = 0


def _day_rows(model: DemoModel, n: int, drifted: bool, rng: np.random.Generator) -> pd.DataFrame:
    rows = model.holdout.sample(n=n, replace=True, random_state=rng.integers(2**31)).reset_index(drop=True)
    std = model.train[model.numeric].std().to_numpy()
    rows[model.numeric] = rows[model.numeric].to_numpy() + rng.normal(0, 0.15, size=(n, len(model.numeric))) * std
    rows["site"] = rng.choice(SITES, size=n, p=DRIFTED_SITE_SHARES if drifted else (0.4, 0.3, 0.2, 0.1))
    # Drawn per request, not inherited from the ~230 base rows: a fixed subset of them would
    # differ from the reference by chance, and the monitor would (rightly) flag it.
    rows["region"] = rng.choice(REGIONS, size=n, p=(0.6, 0.4))
    if drifted:
        rural = rows[BIASED_SEGMENT[0]] == BIASED_SEGMENT[1]
        for col in ("mean_texture", "worst_texture"):
            rows.loc[rural, col] += 2.5 * model.train[col].std()
        rows["area_error"] *= 1.6
    return rows


def simulate_day(mlog: ModelLogger, model: DemoModel, state: TrafficState, day_start: datetime, n: int,
                 drifted: bool, rng: np.random.Generator, label_share: float = 0.85,
                 mean_label_delay_h: float = 20.0, explain_share: float = 0.2) -> None:
    """Log one day of predictions, explanations, and the labels that arrive during that day."""
    rows = _day_rows(model, n, drifted, rng)
    scores = model.score(rows)
    attributions = model.attributions(rows)
    offsets = np.sort(rng.uniform(0, 86_400, size=n))
    latency = rng.lognormal(mean=1.2, sigma=0.35, size=n)
    for i in range(n):
        ts = day_start + timedelta(seconds=float(offsets[i]))
        row = rows.iloc[i]
        features: dict[str, object] = {name: float(row[name]) for name in model.numeric}
        features["site"] = row["site"]
        pid = mlog.log_prediction(features=features, prediction=int(scores[i] >= 0.5), score=float(scores[i]),
                                  latency_ms=float(latency[i]), segment={"region": row["region"]}, timestamp=ts)
        state.predictions += 1
        if rng.random() < explain_share:
            mlog.log_explanation(prediction_id=pid, attributions=dict(zip(model.numeric, map(float, attributions[i]))),
                                 method="linear", timestamp=ts)
            state.explanations += 1
        if rng.random() < label_share:
            arrives = ts + timedelta(hours=float(rng.exponential(mean_label_delay_h)))
            heapq.heappush(state.pending, (arrives, pid, int(row["label"])))
    day_end = day_start + timedelta(days=1)
    while state.pending and state.pending[0][0] < day_end:
        arrives, pid, label = heapq.heappop(state.pending)
        mlog.log_feedback(prediction_id=pid, actual=label, timestamp=arrives)
        state.feedback += 1
