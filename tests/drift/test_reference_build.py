"""The reference build's fast paths (one sort per column, counts per distinct value) equal the plain definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmon.core.reference import ProfileError, build_from_frame, is_discrete, quantile_edges
from mlmon.core.stats import CategoryStats, NumericStats


@pytest.mark.parametrize("n", [1, 2, 7, 1_001, 1_002, 4_999, 20_000])
def test_edges_are_numpys_inverted_cdf_quantiles(n: int) -> None:
    x = np.random.default_rng(n).normal(0, 1, n)
    edges = quantile_edges(x, bins=1000)
    if n > 1001:
        q = np.unique(np.quantile(x, np.linspace(0, 1, 1001), method="inverted_cdf"))
        assert set(q.tolist()) <= set(edges)  # the quantiles, plus the even splits of wide tail bins
    else:
        # Few values: every value is an edge, and so is the next double above it (its own bin); the gaps
        # between values are split into equal bins, within twice the points.
        values = np.unique(x)
        assert set(values.tolist()) | set(np.nextafter(values, np.inf).tolist()) <= set(edges)
        assert len(edges) <= 2 * 1001
        gap_edges = [e for e in edges if e not in set(values.tolist()) | set(np.nextafter(values, np.inf).tolist())]
        assert not np.isin(gap_edges, x).any()
    assert edges[-1] == np.nextafter(x.max(), np.inf)


def test_profile_statistics_equal_numeric_stats_from_values() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "income": np.where(rng.random(30_000) < 0.05, np.nan, rng.lognormal(10, 1, 30_000)),
        "rating": rng.integers(1, 6, 30_000).astype(float),
        "plan": rng.choice(np.array(["basic", "pro", None], dtype=object), 30_000),
        "flag": rng.random(30_000) < 0.3,
        "code": rng.choice([1.0, 2.0, np.nan], 30_000),
    })
    profile = build_from_frame(frame, "m", "1", numeric=["income", "rating"], categorical=["code"])
    for col in ("income", "rating"):
        got = profile.numeric[f"mlmon.features.numeric.{col}"]
        want = NumericStats.from_values(frame[col].to_numpy(), got.edges)
        assert got.counts == want.counts and got.missing == want.missing
        assert (got.minimum, got.maximum) == (want.minimum, want.maximum)
        assert got.total == pytest.approx(want.total, rel=1e-12)
        assert got.std == pytest.approx(frame[col].std(), rel=1e-9)
    assert profile.discrete == {"mlmon.features.numeric.rating"}
    assert is_discrete(frame["rating"].to_numpy(), profile.numeric["mlmon.features.numeric.rating"].edges)
    cat = profile.categorical
    assert cat["mlmon.features.categorical.plan"] == CategoryStats.from_values(frame["plan"].tolist())
    flags = frame["flag"].map({True: "true", False: "false"}).tolist()
    assert cat["mlmon.features.categorical.flag"] == CategoryStats.from_values(flags)
    # Whole floats are logged as integers ("1", not "1.0"); NaN is missing.
    codes = cat["mlmon.features.categorical.code"]
    assert set(codes.counts) == {"1", "2"} and codes.missing == int(frame["code"].isna().sum())


def test_rare_categories_beyond_the_limit_go_to_other() -> None:
    frame = pd.DataFrame({"city": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]})
    stats = build_from_frame(frame, "m", "1", max_categories=2).categorical["mlmon.features.categorical.city"]
    assert dict(stats.counts) == {"a": 5, "b": 3} and stats.other == 3


def test_infinite_values_are_rejected_naming_the_column() -> None:
    with pytest.raises(ProfileError, match="'x'.*inf"):
        build_from_frame(pd.DataFrame({"x": [1.0, np.inf, 2.0]}), "m", "1")
