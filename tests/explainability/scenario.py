"""A small production scenario shared by the explainability and fairness tests, through the real pipeline.

A credit model scores applicants from two regions. The service logs every
prediction, explanations for half of them and delayed feedback for most,
with ``mlmon_logging.ModelLogger`` to a JSON-lines file; ``mlmon.ingest``
stores the file in DuckDB. Hour 0 is clean. In hour 1 a sensor fault adds
3 standard deviations to ``income`` for the ``rural`` region only: the model
sees richer rural applicants than there are (its treatment of that segment
drifts), so rural selection rates, TPR and FPR rise - a fairness gap - and
``income`` drives more of the decisions - attribution drift.

The generator keeps the ground truth of every logged event (``Scenario``) so
tests compare the jobs' documents with fairlearn / scikit-learn on the same data.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmon.ingest import ingest_lines
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon_logging import ModelLogger

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
MODEL, VERSION = "credit", "2"
FEATURES = ("income", "debt", "tenure")
COEF = np.array([1.2, -0.6, 0.2])
N_PER_HOUR = 2000
RURAL_SHIFT_SD = 3.0


@dataclass(frozen=True)
class Scenario:
    db: Path                  # the ingested DuckDB file (copy it before writing)
    predictions: pd.DataFrame  # hour, region, predicted, labelled, actual (final), + features as seen
    explanations: pd.DataFrame  # hour, region (of its prediction) + one attribution column per feature
    reference_attributions: pd.DataFrame  # "training set" attributions, one column per feature


def _attributions(x: np.ndarray) -> np.ndarray:
    """Exact attributions of a linear model in log-odds: coefficient x centred value (centre 0)."""
    return x * COEF


def _hour(mlog: ModelLogger, rng: np.random.Generator, hour: int, drifted: bool) -> tuple[list[dict], list[dict]]:
    start = T0 + hour * HOUR
    n = N_PER_HOUR
    region = rng.choice(["urban", "rural"], size=n, p=[0.6, 0.4])
    true_x = rng.normal(0.0, 1.0, size=(n, 3))
    seen_x = true_x.copy()
    if drifted:
        seen_x[region == "rural", 0] += RURAL_SHIFT_SD
    actual = (rng.random(n) < 1 / (1 + np.exp(-(true_x @ COEF)))).astype(int)
    predicted = ((seen_x @ COEF) > 0).astype(int)
    attributions = _attributions(seen_x)
    offsets = np.sort(rng.uniform(0, 3600, size=n))
    rows, expl = [], []
    for i in range(n):
        ts = start + timedelta(seconds=float(offsets[i]))
        pid = mlog.log_prediction(features=dict(zip(FEATURES, map(float, seen_x[i]))), prediction=int(predicted[i]),
                                  score=float(1 / (1 + np.exp(-(seen_x[i] @ COEF)))),
                                  segment={"region": str(region[i])}, timestamp=ts)
        labelled = rng.random() < 0.8
        if labelled:
            if rng.random() < 0.1:  # a wrong label first, corrected later: the latest must win
                mlog.log_feedback(prediction_id=pid, actual=1 - int(actual[i]), timestamp=ts + timedelta(minutes=5))
            # Feedback often arrives after the window ends; it still joins by prediction id.
            mlog.log_feedback(prediction_id=pid, actual=int(actual[i]), timestamp=ts + timedelta(minutes=50))
        if i % 2 == 0:
            mlog.log_explanation(prediction_id=pid, attributions=dict(zip(FEATURES, map(float, attributions[i]))),
                                 method="linear", timestamp=ts)
            expl.append({"hour": hour, "region": region[i], **dict(zip(FEATURES, attributions[i]))})
        rows.append({"hour": hour, "region": region[i], "predicted": int(predicted[i]), "labelled": labelled,
                     "actual": int(actual[i])})
    return rows, expl


@functools.cache
def scenario() -> Scenario:
    """Built once per test process (about 2 s): emitted, written, ingested."""
    rng = np.random.default_rng(20250301)
    work = Path(tempfile.mkdtemp(prefix="mlmon-explain-"))
    events = work / "events.jsonl"
    mlog = ModelLogger(MODEL, VERSION, sink=f"file://{events}", stats_interval=None, queue_size=100_000)
    rows0, expl0 = _hour(mlog, rng, 0, drifted=False)
    rows1, expl1 = _hour(mlog, rng, 1, drifted=True)
    mlog.close()
    db = work / "store.duckdb"
    with events.open("rb") as lines:
        report = ingest_lines(lines, db)
    if report.dead_lettered:
        raise AssertionError(f"scenario events were dead-lettered: {dict(report.dead_lettered)}")
    reference = pd.DataFrame(_attributions(rng.normal(0.0, 1.0, size=(5000, 3))), columns=list(FEATURES))
    return Scenario(db, pd.DataFrame(rows0 + rows1), pd.DataFrame(expl0 + expl1), reference)


def copy_store(dest: Path) -> Path:
    """A private copy of the scenario's store (tests write metric documents into it)."""
    target = dest / "store.duckdb"
    shutil.copy(scenario().db, target)
    return target


# --- fixtures (imported by the conftest.py of tests/explainability and tests/fairness) ------------------

@pytest.fixture(scope="session")
def scene() -> Scenario:
    return scenario()


@pytest.fixture
def store(tmp_path: Path, scene: Scenario) -> Iterator[DuckDBStore]:
    s = DuckDBStore(copy_store(tmp_path))
    yield s
    s.close()
