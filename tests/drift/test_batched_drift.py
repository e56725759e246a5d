"""Drift metrics of many windows at once (issue 19): the same numbers, to the bit, as window by window.

The drift job computes each field's metrics for all windows of a batch in one
call (2-D arrays, windows x bins). Every value, p-value and detail must be the
one the field's window would get alone, and the math must still be scipy's.
The windows mix what differs row by row: sizes (empty to large), values out of
the reference range, windows without offset sums, data far from zero, integers.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import numpy as np
import pytest
from scipy import stats as sps

from mlmon.config.model import parse
from mlmon.core.reference import build_from_frame, quantile_edges
from mlmon.core.stats import CategoryStats, NumericStats, WindowStatistics
from mlmon.jobs.drift import DriftWindowJob
from mlmon.metrics import distances as dd
from mlmon.metrics import drift as dm
from mlmon.metrics import registry
from mlmon.metrics.registry import COARSE, CATEGORIES, Comparison, DriftMetric
from mlmon.metrics.results import MetricSet
from mlmon.stores.protocols import Store
from tools.synth import make_features

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _without_offsets(s: NumericStats) -> NumericStats:
    """The statistics as a store kept them before offset sums existed."""
    return NumericStats(s.edges, s.counts, s.missing, s.minimum, s.maximum, s.total, s.total_sq, s.below_sum,
                        s.above_sum)


def _windows(rng: np.random.Generator, edges: tuple[float, ...], shift: float, scale: float,
             rounding: int | None = None, counts: bool = False) -> list[NumericStats]:
    out = []
    for i, n in enumerate((0, 1, 7, 60, 333, 1_000, 4_000, 333, 50, 1_000)):
        x = rng.normal(shift * (i % 3), scale * (1 + 0.2 * (i % 2)), n)
        if counts:  # counts are never negative, but for the out-of-range window's below
            x = np.abs(x)
        if i == 5:
            x = np.concatenate([x, rng.normal(0, 40 * scale, 30)])  # out of the reference range: outer groups
        if rounding is not None:
            x = np.round(x, rounding)
        s = NumericStats.from_values(x, edges)
        out.append(_without_offsets(s) if i in (3, 8) else s)
    return out


#: name -> (reference values, window shift, window scale, rounding of the window values)
CASES: dict[str, tuple[Any, float, float, int | None]] = {
    "normal": (lambda r: r.normal(0, 1, 20_000), 0.2, 1.0, None),
    "offset 1e6": (lambda r: 1e6 + r.normal(0, 1, 20_000), 0.1, 1.0, None),
    "rounded to 0.1": (lambda r: np.round(r.normal(0, 1, 20_000), 1), 0.1, 1.0, 1),
    "integers": (lambda r: np.round(r.normal(0, 3, 20_000)), 0.5, 3.0, 0),
    # 30 % zeros, the minimum: the first coarse group holds only the bin below the range, so it is kept
    # in the windows with values below zero and dropped in the others (windows group by their groups).
    "zero-inflated counts": (lambda r: np.where(r.random(20_000) < 0.3, 0.0, np.abs(np.round(r.normal(5, 2, 20_000)))),
                             0.5, 2.0, 0),
}


def _same(a: object, b: object) -> bool:
    """Equal to the bit (NaN equal to NaN), through dicts, lists and tuples."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _same_sets(batched: list[MetricSet], alone: list[MetricSet]) -> None:
    assert len(batched) == len(alone)
    for i, (b, a) in enumerate(zip(batched, alone)):
        for vb, va in zip(b, a, strict=True):
            assert _same(vars(vb), vars(va)), (i, vb.metric, vars(vb), vars(va))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("discrete", [False, True])
def test_numeric_drift_of_many_windows_is_each_window_alone(case: str, discrete: bool) -> None:
    rng = np.random.default_rng(sum(map(ord, case)))
    make_ref, shift, scale, rounding = CASES[case]
    values = make_ref(rng)
    edges = quantile_edges(values)
    ref = NumericStats.from_values(values, edges)
    windows = _windows(rng, edges, shift, scale, rounding, counts=case == "zero-inflated counts")
    batched = dm.numeric_drift_windows(ref, windows, discrete=discrete, feature="x")
    alone = [dm.numeric_drift(ref, w, discrete=discrete, feature="x") for w in windows]
    _same_sets(batched, alone)
    assert batched[0].values[0].missing == "insufficient_data"  # the empty window
    if case == "zero-inflated counts":
        assert len({mv.details["coarse_bins"] for s in batched[1:] for mv in s}) == 2


def test_a_reference_without_offset_sums_batches_like_one_window() -> None:
    rng = np.random.default_rng(5)
    values = rng.lognormal(0, 1, 20_000)
    edges = quantile_edges(values)
    ref = _without_offsets(NumericStats.from_values(values, edges))
    windows = _windows(rng, edges, 0.3, 1.0)
    _same_sets(dm.numeric_drift_windows(ref, windows), [dm.numeric_drift(ref, w) for w in windows])


def test_categorical_drift_of_many_windows_is_each_window_alone() -> None:
    reference = CategoryStats(counts={"a": 500, "b": 300, "c": 150, "d": 0}, other=50)
    windows = [CategoryStats(counts={"a": 30, "b": 20, "c": 10}), CategoryStats(),
               CategoryStats(counts={"a": 5, "e": 7}),              # unseen category, two empty columns
               CategoryStats(counts={"b": 40}, other=3),
               CategoryStats(counts={"a": 400, "b": 10, "c": 300, "d": 2}, other=90)]
    batched = dm.categorical_drift_windows(reference, windows, feature="c")
    _same_sets(batched, [dm.categorical_drift(reference, w, feature="c") for w in windows])
    assert batched[1].values[0].missing == "insufficient_data"


def test_rows_stored_column_major_still_sum_like_one_window() -> None:
    # numpy sums a row pairwise only when it is contiguous; a column-major array (what indexing a batch's
    # columns gives) is summed column by column, a different rounding: seen as 1e-14 differences in PSI and
    # Hellinger between the drift job's batches and single windows before the rows were made row-major.
    rng = np.random.default_rng(9)
    ref = rng.integers(1, 200, 23).astype(np.float64)
    cur = np.asfortranarray(rng.integers(0, 60, (40, 23)).astype(np.float64))
    assert not cur.flags.c_contiguous
    one = np.array([[dd.psi(ref, row), dd.hellinger(ref, row), dd.jensen_shannon(ref, row)] for row in cur])
    rows = np.stack([dd.psi_rows(ref, cur), dd.hellinger_rows(ref, cur), dd.jensen_shannon_rows(ref, cur)], axis=1)
    assert np.array_equal(rows, one)
    batch = registry.Comparisons("numeric", COARSE, ref, cur, int(ref.sum()), tuple(int(n) for n in cur.sum(axis=1)))
    assert batch.cur_counts.flags.c_contiguous
    assert list(cast(DriftMetric, registry.get("psi")).measure(batch)) == one[:, 0].tolist()


def test_chi_square_of_many_tables_is_scipys_to_the_bit() -> None:
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(300):
        k = int(rng.integers(1, 9))
        ref = rng.integers(0, 80, k).astype(np.float64) * (rng.random(k) > 0.2)
        cur = rng.integers(0, 40, (6, k)).astype(np.float64) * (rng.random((6, k)) > 0.3)
        stat, p, dof = dd.chi_square_rows(ref, cur)
        for i in range(cur.shape[0]):
            table = np.vstack([ref, cur[i]])
            table = table[:, table.sum(axis=0) > 0]
            if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
                assert (stat[i], p[i], dof[i]) == (0.0, 1.0, 0)
                continue
            res = sps.chi2_contingency(table)  # Yates' correction included where dof == 1
            assert (stat[i], p[i], dof[i]) == (res.statistic, res.pvalue, res.dof)
            checked += 1
    assert checked > 1_000


def test_ks_pvalues_are_scipys_kstwo_per_window() -> None:
    rng = np.random.default_rng(4)
    d = rng.uniform(0, 0.3, 200)
    n = rng.integers(0, 5_000, 200).tolist()
    p = dd.ks_pvalues(d, 20_000, n)
    for di, ni, pi in zip(d, n, p):
        expected = 1.0 if ni == 0 else float(np.clip(sps.kstwo.sf(di, np.round(20_000 * ni / (20_000 + ni))), 0, 1))
        assert pi == expected


def test_wasserstein_of_many_windows_is_each_window_alone() -> None:
    rng = np.random.default_rng(8)
    values = rng.normal(0, 1, 50_000)
    edges = quantile_edges(values)
    ref = NumericStats.from_values(values, edges)
    windows = _windows(rng, edges, 0.1, 1.0)
    raw, bound = dd.wasserstein_batch(ref, dd.NumericSamples.of(windows))
    for i, w in enumerate(windows):
        assert _same(float(raw[i]), dd.wasserstein_binned(ref, w))
        assert _same(float(bound[i]), dd.wasserstein_error_bound(ref, w))
    assert math.isnan(raw[0]) and np.isfinite(raw[1:]).all()


def total_variation(c: Comparison) -> float:
    return 0.5 * float(np.abs(dm.proportions(c.ref_counts) - dm.proportions(c.cur_counts)).sum())


@pytest.fixture
def per_window_metric() -> Iterator[list[int]]:
    """A registered metric with no batch function: measured window by window inside a batch (calls counted)."""
    calls: list[int] = []

    def counted(c: Comparison) -> float:
        calls.append(1)
        return total_variation(c)

    registry.register(DriftMetric("total_variation", counted, {"numeric": COARSE, "categorical": CATEGORIES}))
    try:
        yield calls
    finally:
        registry.unregister("total_variation")


def _job_and_windows(n: int) -> tuple[DriftWindowJob, list[WindowStatistics]]:
    rng = np.random.default_rng(21)
    reference = build_from_frame(make_features(rng, 20_000, numeric=3, categorical=2), "m", "1")
    stats = []
    for i in range(n):
        frame = make_features(rng, 300 + 100 * i, numeric=3, categorical=2, shifts={"num_0": 0.1 * i})
        stats.append(WindowStatistics(
            rows=len(frame),
            numeric={f: NumericStats.from_values(frame[f.rsplit(".", 1)[-1]].to_numpy(), p.edges)
                     for f, p in reference.numeric.items()},
            categorical={f: CategoryStats.from_counts(frame[f.rsplit(".", 1)[-1]].value_counts().to_dict())
                         for f in reference.categorical}))
    job = DriftWindowJob(store=cast(Store, None), model=parse({"models": {"m": {}}}).models[0],  # pure part only
                         reference=reference, run_id="t")
    return job, stats


def test_the_jobs_documents_of_a_batch_are_each_windows_and_a_plain_metric_still_works(
        per_window_metric: list[int]) -> None:
    job, stats = _job_and_windows(4)
    windows = [(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1)) for i in range(len(stats))]
    batched = job.documents_windows(stats, windows, ("region", "urban"))
    calls_batched = len(per_window_metric)
    alone = [job.documents(s, start, end, ("region", "urban")) for s, (start, end) in zip(stats, windows)]
    for docs_b, docs_a in zip(batched, alone):
        assert [d.id for d in docs_b] == [d.id for d in docs_a]
        for b, a in zip(docs_b, docs_a):
            assert _same(b.value, a.value) and b.status == a.status and b.threshold == a.threshold
            assert _same(b.details, a.details)
    # The metric without a batch function ran once per window and field, inside the batch too.
    assert calls_batched == len(per_window_metric) - calls_batched == 4 * 5
    assert {d.metric for d in batched[0]} >= {"total_variation", "wasserstein", "chi_square"}


def test_numeric_stats_convert_their_tuples_once_and_pickle_without_the_arrays() -> None:
    s = NumericStats.from_values(np.random.default_rng(1).normal(0, 1, 1_000), quantile_edges(np.arange(50.0)))
    counts = s.counts_array()
    assert counts is s.counts_array() and s.edges_array is s.edges_array  # one conversion per object
    with pytest.raises(ValueError):
        counts[0] = 1.0  # shared: read-only
    assert counts.tolist() == list(s.counts) and s.offset_sums_array.tolist() == list(s.offset_sums)
    copy = pickle.loads(pickle.dumps(s))
    assert copy == s and "_counts_array" not in vars(copy) and copy.present == s.present
    with pytest.raises(ValueError, match="non-negative"):
        NumericStats((0.0,), (1, -1), 0, None, None, 0.0, 0.0)
