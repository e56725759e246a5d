"""Fixtures of the scheduler tests: an embedded store with two reference versions and mixed-version traffic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from mlmon.core.reference import ReferenceProfile, build_from_frame
from mlmon.stores.duckdb.store import DuckDBStore
from tools.synth import load_events, make_features, to_events

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def references() -> dict[str, ReferenceProfile]:
    """Version 1's profile, then a newer one of version 2 (built later: the newest)."""
    rng = np.random.default_rng(21)
    v1 = build_from_frame(make_features(rng, 5_000), "churn", "1", source="v1")
    v2 = build_from_frame(make_features(rng, 5_000), "churn", "2", source="v2")
    return {"1": replace(v1, created_at=T0 - 10 * HOUR), "2": replace(v2, created_at=T0 - HOUR)}


@pytest.fixture
def store(tmp_path: Path, references: dict[str, ReferenceProfile]) -> Iterator[DuckDBStore]:
    """Hour 0: 3,000 rows of version 1 only. Hour 1: 2,000 of version 1 and 1,000 of version 3 (no profile)."""
    rng = np.random.default_rng(22)
    s = DuckDBStore(tmp_path / "m.duckdb")
    for profile in references.values():
        s.put_reference(profile)
    load_events(s.con, to_events(make_features(rng, 3_000), "churn", "1", T0, HOUR, rng))
    load_events(s.con, to_events(make_features(rng, 2_000), "churn", "1", T0 + HOUR, HOUR, rng))
    load_events(s.con, to_events(make_features(rng, 1_000), "churn", "3", T0 + HOUR, HOUR, rng))
    yield s
    s.close()
