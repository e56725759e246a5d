"""The fast binning (EdgeIndex, NumericAccumulator) agrees exactly with the searchsorted oracle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlmon.core.reference import quantile_edges
from mlmon.core.stats import EdgeIndex, NumericAccumulator, NumericStats, bin_counts, validate_edges


def _edge_cases(edges: tuple[float, ...]) -> np.ndarray:
    """Every edge, its float neighbours on both sides, and values far outside the range."""
    e = np.asarray(edges)
    return np.concatenate([e, np.nextafter(e, -np.inf), np.nextafter(e, np.inf),
                           [-1e308, 1e308, -np.inf, np.inf, e[0] - 1.0, e[-1] + 1.0]])


EDGE_SETS = {
    "normal quantiles": lambda r: quantile_edges(r.normal(3, 2, 50_000)),
    "lognormal quantiles (crowded left, long right tail)": lambda r: quantile_edges(r.lognormal(0, 2, 50_000)),
    "integers (discrete)": lambda r: quantile_edges(r.poisson(4, 20_000).astype(float)),
    "one edge": lambda r: (1.5,),
    "edges a few ulps apart": lambda r: validate_edges((1.0 + np.arange(5) * 2.3e-16).tolist()),
    # A cluster tighter than the finest grid forces the binary-search fallback.
    "cluster below grid resolution": lambda r: validate_edges(
        np.concatenate([[-1e6], 1.0 + np.arange(50) * 1e-15, [1e6]]).tolist()),
    "huge magnitudes": lambda r: (-1e300, -1.0, 0.0, 1e-300, 1.0, 1e300),
    "subnormal span (grid scale overflows)": lambda r: (0.0, 5e-324, 1e-323),
}


@pytest.mark.parametrize("name", sorted(EDGE_SETS))
def test_counts_equal_searchsorted_including_values_on_edges(name: str) -> None:
    rng = np.random.default_rng(len(name))
    edges = EDGE_SETS[name](rng)
    e = np.asarray(edges)
    spread = max(float(e[-1] - e[0]), 1.0)
    values = np.concatenate([_edge_cases(edges), rng.choice(e, 5_000),
                             rng.uniform(e[0] - spread / 10, e[-1] + spread / 10, 20_000)])
    values = values[np.isfinite(values) | np.isinf(values)]  # no NaN: bins() is for present values
    index = EdgeIndex(edges)
    assert np.array_equal(index.bins(values), np.searchsorted(e, values, side="right"))
    assert np.array_equal(index.counts(values), bin_counts(values, edges))


def test_crowded_edges_fall_back_to_binary_search_and_stay_exact() -> None:
    edges = EDGE_SETS["cluster below grid resolution"](np.random.default_rng(0))
    index = EdgeIndex(edges)
    assert index._exact_search  # the grid cannot separate 1e-15 gaps in a 2e6 range
    values = np.asarray(edges)
    assert np.array_equal(index.bins(values), np.arange(1, len(edges) + 1))


def test_accumulator_over_batches_equals_numeric_stats_from_values() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(0, 1, 30_000)
    edges = quantile_edges(ref)
    cur = rng.normal(0.5, 1.5, 25_000)
    cur[::7] = np.nan
    want = NumericStats.from_values(cur, edges)
    acc = NumericAccumulator(edges)
    for chunk in np.array_split(cur, 7):
        present = chunk[~np.isnan(chunk)]
        # Half the chunks report their nulls as a count (Arrow nulls), half as NaN values.
        if len(present) % 2:
            acc.add(present, missing=chunk.size - present.size)
        else:
            acc.add(chunk)
    acc.add(np.array([]), missing=0)
    got = acc.result()
    assert got.counts == want.counts and got.missing == want.missing
    assert got.minimum == want.minimum and got.maximum == want.maximum
    assert got.total == pytest.approx(want.total, rel=1e-12)
    assert got.total_sq == pytest.approx(want.total_sq, rel=1e-12)
    assert got.below_sum == pytest.approx(want.below_sum, rel=1e-12)
    assert got.above_sum == pytest.approx(want.above_sum, rel=1e-12)
    assert got.counts[0] > 0 and got.counts[-1] > 0  # the tails were exercised
    # The arrays it hands over are those the tuples give, and read-only like them.
    plain = dataclasses.replace(got)
    for name in ("counts_array", "offset_sums_array"):
        handed, derived = getattr(got, name), getattr(plain, name)
        if callable(handed):
            handed, derived = handed(), derived()
        assert handed.dtype == derived.dtype == np.float64 and np.array_equal(handed, derived)
        assert not handed.flags.writeable
    assert got.present == plain.present == int(np.sum(~np.isnan(cur)))


def test_accumulator_without_values_reports_only_missing() -> None:
    acc = NumericAccumulator((0.0, 1.0))
    acc.add(np.array([np.nan, np.nan]), missing=3)
    got = acc.result()
    assert got.counts == (0, 0, 0) and got.missing == 5 and got.minimum is None and got.present == 0


def test_statistics_made_from_arrays_equal_those_made_from_tuples() -> None:
    import pickle

    edges = (0.0, 1.0, 2.0)
    acc = NumericAccumulator(edges)
    acc.add(np.array([-1.0, 0.5, 1.5, 1.7, 3.0]))
    got = acc.result()
    acc.add(np.array([0.2]))  # the accumulator goes on: the statistics handed out must not change
    want = NumericStats.from_values(np.array([-1.0, 0.5, 1.5, 1.7, 3.0]), edges)
    assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
    assert got.counts == (1, 1, 2, 1) and type(got.counts[0]) is int
    assert got.offset_sums == pytest.approx(want.offset_sums) and got.has_offsets and got.outer_counts == (1, 1)
    again = pickle.loads(pickle.dumps(got))
    assert again == got and again.present == 5 and again.counts_array().tolist() == [1.0, 1.0, 2.0, 1.0]
    unknown = NumericStats(edges, np.array([0, 2, 0, 0]), 0, 0.1, 0.9, 1.0, 0.82,  # type: ignore[arg-type]
                           offset_sums=np.array([]))  # type: ignore[arg-type]
    assert unknown.offset_sums == () and not unknown.has_offsets and unknown.present == 2
    with pytest.raises(ValueError, match="counts must be non-negative"):
        NumericStats(edges, np.array([0, -1, 0, 0]), 0, None, None, 0.0, 0.0)  # type: ignore[arg-type]
