"""References built from a production window in the store bin integer features as file-built ones do."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlmon.core.reference import build_from_frame
from mlmon.core.stats import NumericStats
from mlmon.jobs.reference import build_from_store
from mlmon.metrics import drift as dm
from mlmon.stores.duckdb.store import DuckDBStore
from tools.synth import load_events, to_events

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
FIELD = "mlmon.features.numeric.visits"


def _store(path: Path, visits: np.ndarray) -> DuckDBStore:
    store = DuckDBStore(path)
    load_events(store.con, to_events(pd.DataFrame({"visits": visits}), "m", "1", T0, HOUR, np.random.default_rng(1)))
    return store


def test_an_integer_feature_gets_a_bin_per_value_and_per_gap(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    visits = rng.poisson(4, 20_000).astype(float)
    store = _store(tmp_path / "s.duckdb", visits)
    try:
        profile = build_from_store(store, "m", "1", T0, T0 + HOUR)
    finally:
        store.close()
    from_file = build_from_frame(pd.DataFrame({"visits": visits}), "m", "1")
    assert FIELD in profile.discrete
    assert profile.numeric[FIELD].edges == from_file.numeric[FIELD].edges
    assert profile.numeric[FIELD].counts == from_file.numeric[FIELD].counts
    # Half a visit more: seen as scipy sees it (was KS ~0.007 with one edge per value).
    current = rng.poisson(4, 5_000) + 0.5
    result = dm.numeric_drift(profile.numeric[FIELD], NumericStats.from_values(current, profile.numeric[FIELD].edges),
                              discrete=True)
    assert result.value("ks") == pytest.approx(stats.ks_2samp(visits, current).statistic, abs=1e-3)


def test_a_rare_value_the_quantiles_skip_makes_the_feature_continuous(tmp_path: Path) -> None:
    # 0..9 often, and 4.5 once, where no quantile level lands: it would sit in a gap bin.
    visits = np.concatenate([[0.0] * 3, np.repeat(np.arange(5.0), 1_000), [4.5], np.repeat(np.arange(5.0, 10.0), 3_000)])
    assert 4.5 not in np.quantile(visits, np.linspace(0, 1, 1001), method="inverted_cdf")
    store = _store(tmp_path / "s.duckdb", visits)
    try:
        profile = build_from_store(store, "m", "1", T0, T0 + HOUR)
    finally:
        store.close()
    st = profile.numeric[FIELD]
    assert FIELD not in profile.discrete
    assert st.edges == tuple(np.arange(10.0)) + (np.nextafter(9.0, np.inf),)
    assert st.present == visits.size and st.counts[5] == 1_001  # [4, 5) holds the 4s and the 4.5
