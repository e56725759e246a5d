"""Label-join statistics of many cells at once (issue 19): ``mlmon.core.label_folds``.

The embedded store folds its joined rows with ``fold_cells``; the Elasticsearch store folds each page
row by row (``stores.elasticsearch.labels.fold``), an implementation of the same rules written apart.
Both must agree cell by cell on awkward rows: unlabelled and half-labelled rows, missing scores, scores on
and outside the edges, feedback stamped before its prediction or past the last delay edge, sample rates,
repeated feedback, an actual class without a score column, zero and far-offset regression actuals.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest

from mlmon.core import label_folds
from mlmon.core.label_folds import Coded, JoinedRows, empty_window, fold_cells
from mlmon.core.labels import DELAY_EDGES_S, LabelQuery
from mlmon.core.perf_stats import (Histogram, PredictedScoreBins, RegressionSums, ScoreBins, bin_index, bins_by_row,
                                   uniform_bin_index, uniform_edges)
from mlmon.stores.elasticsearch.labels import Page, fold

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 1, 2, tzinfo=timezone.utc)


def _coded(values: list[Any]) -> Coded:
    """Codes in first-seen order (not sorted: nothing may depend on the store's order of names)."""
    names: dict[str, int] = {}
    codes = [-1 if v is None else names.setdefault(str(v), len(names)) for v in values]
    return Coded(np.array(codes, dtype=np.int64), tuple(names))


def _delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds: typical, before the prediction (underflow), on edges, past the last edge (overflow)."""
    return np.where(rng.random(n) < 0.8, rng.exponential(3600.0, n),
                    rng.choice([-5.0, 0.0, DELAY_EDGES_S[1], DELAY_EDGES_S[-1], DELAY_EDGES_S[-1] * 3], n))


def _classification(rng: np.random.Generator, n: int, classes: tuple[str, ...]) -> tuple[JoinedRows, Page]:
    labels = list(classes) if classes else ["0", "1"]
    pred = [None if rng.random() < 0.05 else str(rng.choice(labels)) for _ in range(n)]
    # "x": an actual class the model has no score column for
    actual = [None if rng.random() < 0.3 else str(rng.choice(labels + ["x"])) for _ in range(n)]
    width = len(classes) if classes else 1
    scores = rng.uniform(-0.1, 1.1, (n, width))
    scores[rng.random((n, width)) < 0.05] = np.nan
    scores[rng.random((n, width)) < 0.05] = 0.5   # on an edge
    w = 1.0 / rng.choice([1.0, 0.5, 0.1], n)
    delay = np.where([a is None for a in actual], np.nan, _delays(rng, n))
    n_feedback = np.where([a is None for a in actual], rng.integers(0, 2, n), rng.integers(1, 4, n))
    rows = JoinedRows(w, delay, n_feedback, pred=_coded(pred), actual=_coded(actual), scores=scores)
    page = Page(w, np.array(pred, dtype=object), scores, np.array(actual, dtype=object), delay, n_feedback)
    return rows, page


def _regression(rng: np.random.Generator, n: int) -> tuple[JoinedRows, Page]:
    actual = 1e6 + rng.normal(0.0, 1.0, n)
    actual[rng.random(n) < 0.02] *= -1.0
    actual[rng.random(n) < 0.1] = 0.0
    actual[rng.random(n) < 0.3] = np.nan
    value = actual + rng.normal(0.0, 2.0, n)
    value[np.isnan(value)] = 1e6
    value[rng.random(n) < 0.05] = np.nan
    w = 1.0 / rng.choice([1.0, 0.25], n)
    delay = np.where(np.isnan(actual), np.nan, _delays(rng, n))
    n_feedback = np.where(np.isnan(actual), 0, rng.integers(1, 3, n))
    rows = JoinedRows(w, delay, n_feedback, value=value, actual_value=actual)
    return rows, Page(w, value, np.zeros((n, 0)), actual, delay, n_feedback)


def _page(page: Page, rows: np.ndarray) -> Page:
    return Page(*(getattr(page, f.name)[rows] for f in dataclasses.fields(Page)))


def _close(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats within 1e-12 relative (the two folds sum in other orders)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            _close(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, a.keys(), b)
        for k in a:
            _close(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, tuple | list):
        assert isinstance(b, tuple | list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        # The centred sum of ~1e6 actuals is 0 up to cancellation: 1e-12 of the terms' ~1e10 size.
        absolute = 1e-2 if path.endswith(".sum_actual") else 1e-9
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=absolute), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("classes", [(), ("a", "b", "c")], ids=["binary", "multiclass"])
def test_cells_folded_together_equal_the_row_by_row_fold_of_each(classes: tuple[str, ...]) -> None:
    rng = np.random.default_rng(7)
    rows, page = _classification(rng, 3_000, classes)
    cell = rng.integers(0, 6, len(rows)) * 7   # numbered with gaps, as slots x segment values are
    query = LabelQuery("m", T0, T1, "classification", positive_label="1", classes=classes, cbpe=True,
                       score_edges=uniform_edges(100))
    found = fold_cells(query, rows, cell)
    assert sorted(found) == [0, 7, 14, 21, 28, 35]
    for c, window in found.items():
        want = fold(query, _page(page, cell == c))
        _close(window, want, f"cell {c}")
        assert window.classification is not None and window.classification.log_loss is not None
        assert window.delay.underflow > 0 and window.delay.overflow > 0 and window.duplicate_feedback > 0


def test_regression_cells_equal_the_row_by_row_fold_of_each() -> None:
    rng = np.random.default_rng(11)
    rows, page = _regression(rng, 2_000)
    cell = rng.integers(0, 4, len(rows))
    query = LabelQuery("m", T0, T1, "regression", error_edges=uniform_edges(20, -3.0, 3.0), shift=5.0)
    found = fold_cells(query, rows, cell)
    assert sorted(found) == [0, 1, 2, 3]
    for c, window in found.items():
        _close(window, fold(query, _page(page, cell == c)), f"cell {c}")
        reg = window.regression
        assert reg is not None and reg.error_histogram is not None and reg.n_zero_actual > 0
        assert reg.error_histogram.underflow > 0 and reg.error_histogram.overflow > 0
        # centred on the cell's own actuals, not on the query's shift
        assert rows.value is not None and rows.actual_value is not None
        labelled = (cell == c) & ~np.isnan(rows.value) & ~np.isnan(rows.actual_value)
        assert reg.shift == pytest.approx(np.average(rows.actual_value[labelled], weights=rows.w[labelled]), rel=1e-12)


def test_a_cell_folded_with_others_gets_the_bits_it_gets_alone() -> None:
    rng = np.random.default_rng(5)
    rows, _ = _classification(rng, 2_000, ())
    cell = rng.integers(0, 3, len(rows))
    query = LabelQuery("m", T0, T1, "classification", cbpe=True)
    together = fold_cells(query, rows, cell)
    for c in range(3):
        keep = np.flatnonzero(cell == c)
        assert fold_cells(query, rows.take(keep), cell[keep]) == {c: together[c]}   # exact, not approximate


def test_cells_without_labelled_rows_or_scores() -> None:
    n = 4
    rows = JoinedRows(np.ones(n), np.full(n, np.nan), np.zeros(n, dtype=np.int64),
                      pred=Coded(np.array([0, 0, -1, 0]), ("1",)), actual=Coded(np.full(n, -1), ()),
                      scores=np.array([[np.nan], [np.nan], [0.3], [np.nan]]))
    query = LabelQuery("m", T0, T1, "classification", cbpe=True)
    found = fold_cells(query, rows, np.array([0, 0, 1, 2]))
    # no labels: nothing labelled, no score bins, no log loss, an empty delay histogram
    assert [w.labelled_rows for w in found.values()] == [0, 0, 0]
    assert all(w.classification is not None and w.classification.scores == {} and w.classification.log_loss is None
               for w in found.values())
    assert found[0].delay == Histogram.empty(DELAY_EDGES_S)
    # CBPE reads every row with a score, labelled or not (cell 1's prediction is missing: the negative side)
    assert found[0].cbpe == {} and found[2].cbpe == {}
    assert found[1].cbpe["1"].predicted_negative.total == 1.0 and found[1].cbpe["1"].predicted_positive.total == 0.0
    assert found[0].predicted == {"1": 2.0} and found[1].predicted == {}
    assert fold_cells(query, rows.take(np.array([], dtype=np.int64)), np.array([], dtype=np.int64)) == {}
    regression = LabelQuery("m", T0, T1, "regression", shift=3.0)
    r = JoinedRows(np.ones(2), np.full(2, np.nan), np.zeros(2, dtype=np.int64), value=np.array([1.0, np.nan]),
                   actual_value=np.array([np.nan, 2.0]))
    (window,) = fold_cells(regression, r, np.array([4, 4])).values()
    assert window.regression == RegressionSums.empty(3.0) and window.rows == 2
    # a window without rows answers like a cell whose rows carry nothing (its coverage documents say so)
    assert empty_window(regression).regression == window.regression


def test_sparse_cell_numbers_are_folded_like_dense_ones() -> None:
    rng = np.random.default_rng(2)
    rows, _ = _classification(rng, 500, ())
    cell = rng.integers(0, 3, len(rows))
    query = LabelQuery("m", T0, T1, "classification")
    dense = fold_cells(query, rows, cell)
    sparse = fold_cells(query, rows, cell * 10**12)   # far apart: sorted, not tabled
    assert {c // 10**12: w for c, w in sparse.items()} == dense


def test_uniform_bin_index_is_bin_index() -> None:
    rng = np.random.default_rng(0)
    for edges in (uniform_edges(1000), uniform_edges(10, -3.0, 7.5), uniform_edges(1), uniform_edges(997, 0.1, 0.3)):
        e = np.array(edges)
        values = np.concatenate([rng.uniform(e[0] - 1, e[-1] + 1, 20_000), e, np.nextafter(e, np.inf),
                                 np.nextafter(e, -np.inf), [np.inf, -np.inf, 1e300, -1e300]])
        assert (uniform_bin_index(values, edges) == bin_index(values, edges)).all()


def test_delay_slots_are_bin_index_with_underflow_and_overflow() -> None:
    e = np.array(DELAY_EDGES_S)
    rng = np.random.default_rng(1)
    delays = np.concatenate([rng.exponential(3600.0, 50_000), rng.uniform(-10, e[-1] * 1.5, 50_000), e,
                             np.nextafter(e, np.inf), np.nextafter(e, -np.inf), [-1e9, 1e12, np.inf]])
    k = len(e) - 1
    want = np.where(delays < 0, 0, np.where(delays > e[-1], k + 1, bin_index(delays, DELAY_EDGES_S) + 1))
    assert (label_folds._delay_slots(delays) == want).all()


def test_bins_by_row_equal_bins_made_one_by_one_and_are_checked() -> None:
    edges = uniform_edges(4)
    table = np.arange(12, dtype=np.float64).reshape(3, 4)
    made = bins_by_row(ScoreBins, edges, [table, table * 2, table / 3])
    assert made == [ScoreBins(edges, r, r * 2, r / 3) for r in table]  # type: ignore[arg-type]
    table[0, 0] = 99.0   # the caller's table changing later changes nothing
    assert made[0].positives == (0.0, 1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="read-only"):
        made[0].arrays[0][0] = 5.0
    given = bins_by_row(PredictedScoreBins, edges, [table, table], copy=False)   # a table made for them: kept
    assert np.shares_memory(given[1].arrays[0], table) and not given[1].arrays[0].flags.writeable
    assert given[1] == PredictedScoreBins(edges, tuple(table[1]), tuple(table[1]))
    hists = bins_by_row(Histogram, edges, [table], underflow=[1.0, 0.0, 2.0], overflow=np.zeros(3))
    assert hists[2] == Histogram(edges, tuple(table[2]), 2.0, 0.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        bins_by_row(PredictedScoreBins, edges, [-table, table])
    with pytest.raises(ValueError, match="non-finite"):
        bins_by_row(PredictedScoreBins, edges, [table, table * np.inf])
    with pytest.raises(ValueError, match="5 bins, edges define 4"):
        bins_by_row(PredictedScoreBins, edges, [np.zeros((3, 5)), np.zeros((3, 5))])
    with pytest.raises(ValueError, match="rows differ"):
        bins_by_row(PredictedScoreBins, edges, [table, table[:2]])
    with pytest.raises(ValueError, match="underflow must be >= 0"):
        bins_by_row(Histogram, edges, [table], underflow=[-1.0, 0.0, 0.0], overflow=np.zeros(3))
    with pytest.raises(TypeError, match="fields"):
        bins_by_row(Histogram, edges, [table])   # underflow and overflow not given
