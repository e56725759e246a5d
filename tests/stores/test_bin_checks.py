"""The fast checks of binned statistics (issue 19): a sum instead of a numpy round trip, checked edges reused.

Stores build thousands of these objects per round; the shortcuts must keep every rejection and every
normalisation the full checks made.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlmon.core import perf_stats
from mlmon.core.perf_stats import ConfusionCounts, PredictedScoreBins, ScoreBins, uniform_edges


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_non_finite_bin_is_rejected_and_named(bad: float) -> None:
    edges = uniform_edges(4)
    with pytest.raises(ValueError, match=r"negatives contains a non-finite value: (inf|-inf|nan)"):
        ScoreBins(edges, (1.0, 0.0, 0.0, 0.0), (0.0, bad, 0.0, 0.0), (0.0,) * 4)


def test_finite_bins_whose_sum_overflows_are_accepted() -> None:
    # The sum of these is inf: the shortcut must then look at the values, not reject them.
    huge = (1e308, 1e308, 1e308, 1e308)
    bins = ScoreBins(uniform_edges(4), huge, (0.0,) * 4, (0.0,) * 4)
    assert bins.positives == huge


def test_values_come_out_as_plain_floats_whatever_came_in() -> None:
    # Stores hand in lists, numpy scalars and arrays despite the annotations: the checks normalise them.
    bins = PredictedScoreBins(uniform_edges(3), [1, np.float32(2.5), np.int64(3)],  # type: ignore[arg-type]
                              np.array([0, 1, 2]))  # type: ignore[arg-type]
    assert bins.counts == (1.0, 2.5, 3.0) and bins.score_sum == (0.0, 1.0, 2.0)
    assert {type(v) for v in (*bins.counts, *bins.score_sum, *bins.edges)} == {float}
    counts = ConfusionCounts(("0", "1"), ((1, 2), (np.int32(3), 4)))  # type: ignore[arg-type]
    assert counts.counts == ((1.0, 2.0), (3.0, 4.0)) and type(counts.counts[1][0]) is float


def test_checked_edges_are_reused_and_bad_edges_still_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[tuple[float, ...]] = []
    check = perf_stats._check_edges
    monkeypatch.setattr(perf_stats, "_check_edges", lambda e: (checks.append(e), check(e))[1])
    edges = uniform_edges(5)
    first = ScoreBins.empty(edges)
    again = ScoreBins.empty(edges)
    assert first.edges is edges and again.edges is edges  # the caller's tuple, not a copy per object
    assert checks == [edges]  # the second object skipped the check of the same tuple
    with pytest.raises(ValueError, match="strictly increasing"):
        ScoreBins((0.0, 0.5, 0.5, 1.0), (0.0,) * 3, (0.0,) * 3, (0.0,) * 3)
    with pytest.raises(ValueError, match="non-finite"):
        ScoreBins((0.0, math.inf), (0.0,), (0.0,), (0.0,))
    # Integer edges are converted (never cached as they came), so the stored edges are floats.
    ints = ScoreBins((0, 1, 2), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))
    assert ints.edges == (0.0, 1.0, 2.0) and {type(e) for e in ints.edges} == {float}


def test_the_edge_memory_stays_bounded() -> None:
    for n in range(1, perf_stats._CHECKED_EDGES_MAX + 50):
        ScoreBins.empty(uniform_edges(n))
    assert len(perf_stats._CHECKED_EDGES) <= perf_stats._CHECKED_EDGES_MAX


@pytest.mark.parametrize(("columns", "message"), [
    (((1.0,) * 4, (0.0, -2.0, 0.0, 0.0), (0.0,) * 4), "negatives must be >= 0, got -2.0"),
    (((1.0,) * 4, (0.0,) * 4, (0.0,) * 3), "score_sum has 3 bins, edges define 4"),
    (((1.0,) * 5, (0.0,) * 5, (0.0,) * 5), "positives has 5 bins, edges define 4"),
    (((1.0,) * 4, ((0.0,) * 4,) * 2, (0.0,) * 4), r"negatives must be one value per bin, got shape \(2, 4\)"),
])
def test_a_bad_column_is_named_with_what_is_wrong(columns: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScoreBins(uniform_edges(4), *columns)  # type: ignore[arg-type]


def test_each_column_keeps_its_own_read_only_array() -> None:
    bins = ScoreBins(uniform_edges(2), np.array([1, 2]), [3.0, 4.0], (5.0, 6.0))  # type: ignore[arg-type]
    pos, neg, ssum = bins.arrays
    assert pos.tolist() == [1.0, 2.0] and neg.tolist() == [3.0, 4.0] and ssum.tolist() == [5.0, 6.0]
    with pytest.raises(ValueError, match="read-only"):
        neg[0] = 9.0


def test_bins_kept_as_arrays_still_behave_as_their_tuple_fields() -> None:
    import copy
    import pickle
    from dataclasses import asdict, replace

    from mlmon.core.perf_stats import Histogram

    edges = uniform_edges(3)
    made = ScoreBins(edges, np.array([1, 2, 3]), [0.0, 1.0, 0.0], (0.5, 0.25, 0.0))  # type: ignore[arg-type]
    same = ScoreBins(edges, (1.0, 2.0, 3.0), (0.0, 1.0, 0.0), (0.5, 0.25, 0.0))
    assert made == same and hash(made) == hash(same) and repr(made) == repr(same)
    assert made != ScoreBins(edges, (1.0, 2.0, 4.0), (0.0, 1.0, 0.0), (0.5, 0.25, 0.0))
    assert made.positives == (1.0, 2.0, 3.0) and type(made.positives[0]) is float
    for other in (pickle.loads(pickle.dumps(made)), copy.deepcopy(made), replace(made, score_sum=(0.0,) * 3)):
        assert other.positives == made.positives and other.arrays[0].tolist() == [1.0, 2.0, 3.0]
    assert asdict(made)["negatives"] == (0.0, 1.0, 0.0)
    assert (made + same).positives == (2.0, 4.0, 6.0) and made.n_positive == 6.0
    h = Histogram(edges, np.array([1.0, 0.0, 2.0]), 1.0, 0.5)  # type: ignore[arg-type]
    assert (h + h).counts == (2.0, 0.0, 4.0) and (h + h).total == 9.0
    bins = PredictedScoreBins(edges, np.array([2.0, 0.0, 1.0]), np.array([0.2, 0.0, 0.9]))  # type: ignore[arg-type]
    assert (bins + bins).score_sum == (0.4, 0.0, 1.8) and bins.total == 3.0
    with pytest.raises(AttributeError, match="no attribute 'posiitves'"):
        made.posiitves  # type: ignore[attr-defined]  # noqa: B018
