"""Fixtures of the drift tests: a small reference profile and an embedded store with two hours of events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from mlmon.core.reference import ReferenceProfile, build_from_frame
from mlmon.stores.duckdb.store import DuckDBStore
from tools.synth import load_events as load, make_features, to_events

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def reference() -> ReferenceProfile:
    rng = np.random.default_rng(11)
    return build_from_frame(make_features(rng, 20_000), "churn", "1", source="test")


@pytest.fixture
def store(tmp_path: Path, reference: ReferenceProfile) -> DuckDBStore:
    """Hour 0 clean, hour 1 with num_1 shifted by 0.5 sd and cat_0 moved 10 points."""
    rng = np.random.default_rng(12)
    s = DuckDBStore(tmp_path / "m.duckdb")
    s.put_reference(reference)
    load(s.con, to_events(make_features(rng, 5_000), "churn", "1", T0, HOUR, rng))
    load(s.con, to_events(make_features(rng, 5_000, shifts={"num_1": 0.5}, cat_shift={"cat_0": 0.1}),
                          "churn", "1", T0 + HOUR, HOUR, rng))
    yield s
    s.close()
