"""Label-join statistics of many cells at once, from the joined rows as numpy columns.

A cell is what a store answers one ``LabelledWindow`` for: a window of a batch
and a segment value. The store numbers the cells of its rows; every statistic
here is then one weighted ``bincount`` over (cell, bin), so a batch of windows
costs one pass over its rows however many windows it holds, and each cell gets
what it would get asked alone. The rules (what counts as labelled, how scores
are clipped and binned, which rows a log loss reads) are the label join's:

- labelled: a prediction (label or value) and its latest feedback's actual;
- delay: of the labelled rows, feedback time minus prediction time, seconds;
- score bins: the labelled rows with a score, clipped into the edges;
- log loss: the labelled rows with every score, the actual class's probability
  clipped into [eps, 1 - eps] (a class without a score column: probability 0);
- CBPE: every row with a score (labelled or not), split by predicted class;
- regression: sums of actuals centred on each cell's own weighted mean.

Sums are taken in row order: a store that hands rows in a stable order gets the
same bits for a window asked alone and in a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlmon.core.labels import DELAY_EDGES_S, LabelledWindow, LabelQuery
from mlmon.core.perf_stats import (LOG_LOSS_EPS, CbpeStats, ClassificationStats, ConfusionCounts, Histogram,
                                   LogLossSums, PredictedScoreBins, RegressionSums, ScoreBins, bins_by_row,
                                   corrected_bin_index, uniform_bin_index)


@dataclass(frozen=True)
class Coded:
    """A column of labels as codes into ``names`` (-1: no label)."""

    codes: np.ndarray
    names: tuple[str, ...]

    def code(self, name: str) -> int:
        """The code of ``name``; -2 (matching no row) when no row carries it."""
        return self.names.index(name) if name in self.names else -2

    def take(self, rows: np.ndarray) -> Coded:
        return Coded(self.codes[rows], self.names)


@dataclass(frozen=True)
class JoinedRows:
    """Rows of a label join: one per prediction, with its latest labelled feedback if any.

    Classification fills ``pred`` and ``actual`` (labels, coded) and ``scores`` (one column per score
    column of the query: the positive class's, or one per class; NaN where absent); regression fills
    ``value`` and ``actual_value`` (NaN where absent).
    """

    w: np.ndarray              # 1 / sample rate
    delay_s: np.ndarray        # NaN: no labelled feedback
    n_feedback: np.ndarray     # feedback events of the prediction (0: none)
    pred: Coded | None = None
    actual: Coded | None = None
    scores: np.ndarray | None = None
    value: np.ndarray | None = None
    actual_value: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.w)

    def take(self, rows: np.ndarray) -> JoinedRows:
        """The rows at indices (or mask) ``rows``."""
        def part(a: Any) -> Any:
            return None if a is None else a.take(rows) if isinstance(a, Coded) else a[rows]

        return JoinedRows(self.w[rows], self.delay_s[rows], self.n_feedback[rows], part(self.pred),
                          part(self.actual), part(self.scores), part(self.value), part(self.actual_value))


def empty_window(query: LabelQuery) -> LabelledWindow:
    """The answer for a window without predictions (its coverage documents still say so)."""
    if query.task == "classification":
        return LabelledWindow(0, 0.0, 0, 0.0, 0, Histogram.empty(DELAY_EDGES_S),
                              classification=ClassificationStats(ConfusionCounts.empty(), 0.0, {}, None))
    return LabelledWindow(0, 0.0, 0, 0.0, 0, Histogram.empty(DELAY_EDGES_S),
                          regression=RegressionSums.empty(query.shift))


def fold_cells(query: LabelQuery, rows: JoinedRows, cell: np.ndarray) -> dict[int, LabelledWindow]:
    """Cell number -> the statistics of its rows, for every cell that has a row (``cell``: one
    non-negative number per row)."""
    cells, dense = _dense(np.asarray(cell, dtype=np.int64))
    m = len(cells)
    if m == 0:
        return {}
    folder = _Folder(query, rows, dense, m)
    windows = folder.classification() if query.task == "classification" else folder.regression()
    return dict(zip(cells.tolist(), windows))


def _dense(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells present (sorted) and each row's index among them."""
    if len(cell) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    top = int(cell.max()) + 1
    if top > 4 * len(cell) + 1024:  # sparse numbering: a sort instead of a table as long as the numbers
        cells, dense = np.unique(cell, return_inverse=True)
        return cells, dense.reshape(-1)
    present = np.bincount(cell, minlength=top) > 0
    cells = np.flatnonzero(present)
    index = np.cumsum(present) - 1
    return cells, index[cell]


class _Folder:
    """The statistics of one set of rows, cell by cell (``dense``: each row's cell, 0 .. m - 1)."""

    def __init__(self, query: LabelQuery, rows: JoinedRows, dense: np.ndarray, m: int) -> None:
        self.query, self.rows, self.dense, self.m = query, rows, dense, m

    def table(self, cell: np.ndarray, weights: np.ndarray | None, bins: np.ndarray | None = None,
              k: int = 1) -> np.ndarray:
        """Per cell (and bin, when ``bins`` in [0, k) are given): the sum of ``weights`` over the rows whose
        cells are ``cell`` (a count without weights); shape (m,) or (m, k)."""
        out = np.bincount(cell if bins is None else cell * k + bins, weights, minlength=self.m * k)
        return out if bins is None else out.reshape(self.m, k)

    def common(self, labelled: np.ndarray) -> list[dict[str, Any]]:
        """Per cell: rows and weights, labelled and all, duplicate feedback and the delay histogram."""
        r = self.rows
        w, cell = r.w, self.dense
        lab = _picked(labelled)
        timed = _picked(labelled & ~np.isnan(r.delay_s))
        delays = _histograms(DELAY_EDGES_S, self.table(cell[timed], w[timed], _delay_slots(r.delay_s[timed]),
                                                       len(DELAY_EDGES_S) + 1))
        rows = self.table(cell, None).tolist()
        n = self.table(cell, w).tolist()
        lrows = self.table(cell[lab], None).tolist()
        nlab = self.table(cell[lab], w[lab]).tolist()
        dupes = self.table(cell, np.maximum(r.n_feedback - 1, 0).astype(np.float64)).tolist()
        return [dict(rows=int(rows[i]), n_predictions=float(n[i]), labelled_rows=int(lrows[i]),
                     n_labelled=float(nlab[i]), duplicate_feedback=int(dupes[i]),
                     delay=delays[i]) for i in range(self.m)]

    # --- classification ---------------------------------------------------------------------------

    def classification(self) -> list[LabelledWindow]:
        q, r = self.query, self.rows
        assert r.pred is not None and r.actual is not None and r.scores is not None
        labelled = (r.pred.codes >= 0) & (r.actual.codes >= 0)
        common = self.common(labelled)
        pairs = self._pairs(labelled)
        by_class: list[dict[str, ScoreBins]] = [{} for _ in range(self.m)]
        cbpe: list[dict[str, CbpeStats]] = [{} for _ in range(self.m)]
        for j, cls in enumerate(q.score_classes):
            self._scores(j, cls, labelled, by_class, cbpe)
        log_loss = self._log_loss(labelled)
        predicted = self._predicted()
        return [LabelledWindow(**common[i], classification=ClassificationStats(
                    ConfusionCounts.from_pairs(pairs[i]), common[i]["n_predictions"], by_class[i], log_loss[i]),
                    cbpe=cbpe[i], predicted=predicted[i]) for i in range(self.m)]

    def _scores(self, j: int, cls: str, labelled: np.ndarray, by_class: list[dict[str, ScoreBins]],
                cbpe: list[dict[str, CbpeStats]]) -> None:
        """Score column ``j`` (class ``cls``), binned: labelled rows by actual class, and (CBPE) every row
        by predicted class."""
        q, r = self.query, self.rows
        assert r.pred is not None and r.actual is not None and r.scores is not None
        edges = q.score_edges
        k = len(edges) - 1
        column = r.scores[:, j]
        present = ~np.isnan(column)
        scored = _picked(present)
        s = np.clip(column[scored], edges[0], edges[-1])
        b = uniform_bin_index(s, edges)
        w, cell = r.w[scored], self.dense[scored]
        ok = _picked(labelled[scored])
        wl, sl, cl, bl = w[ok], s[ok], cell[ok], b[ok]
        pos = r.actual.codes[scored][ok] == r.actual.code(cls)
        positives, negatives = self.table(cl, wl * pos, bl, k), self.table(cl, wl * ~pos, bl, k)
        totals = self.table(cl, wl * sl, bl, k)
        has = np.flatnonzero(self.table(cl, None))
        made = bins_by_row(ScoreBins, edges, [_rows(t, has) for t in (positives, negatives, totals)], copy=False)
        for i, bins in zip(has.tolist(), made):
            by_class[i][cls] = bins
        if not q.cbpe:
            return
        # Both predicted sides in one pass: predicted positive in bins [0, k), negative in [k, 2k).
        side = np.where(r.pred.codes[scored] == r.pred.code(cls), b, b + k)
        counts, sums = self.table(cell, w, side, 2 * k), self.table(cell, w * s, side, 2 * k)
        has = np.flatnonzero(self.table(cell, None))
        counts, sums = _rows(counts, has), _rows(sums, has)
        positive = bins_by_row(PredictedScoreBins, edges, [counts[:, :k], sums[:, :k]], copy=False)
        negative = bins_by_row(PredictedScoreBins, edges, [counts[:, k:], sums[:, k:]], copy=False)
        for i, p, n in zip(has.tolist(), positive, negative):
            cbpe[i][cls] = CbpeStats(p, n)

    def _pairs(self, labelled: np.ndarray) -> list[dict[tuple[str, str], float]]:
        """Per cell: (actual, predicted) -> weight, for the pairs that occur."""
        r = self.rows
        assert r.pred is not None and r.actual is not None
        lab = _picked(labelled)
        width = len(r.pred.names)
        pair = r.actual.codes[lab] * width + r.pred.codes[lab]
        k = max(len(r.actual.names) * width, 1)
        cell = self.dense[lab]
        counts, weights = self.table(cell, None, pair, k), self.table(cell, r.w[lab], pair, k)
        out: list[dict[tuple[str, str], float]] = [{} for _ in range(self.m)]
        for i, p in zip(*(a.tolist() for a in np.nonzero(counts))):
            out[i][(r.actual.names[p // width], r.pred.names[p % width])] = float(weights[i, p])
        return out

    def _log_loss(self, labelled: np.ndarray) -> list[LogLossSums | None]:
        q, r = self.query, self.rows
        assert r.actual is not None and r.scores is not None
        ok = _picked(labelled & ~np.isnan(r.scores).any(axis=1))
        codes = r.actual.codes[ok]
        s = r.scores[ok]
        if q.multiclass:
            # The actual class's score column; an actual class without one gets probability 0.
            column = np.array([q.classes.index(a) if a in q.classes else -1 for a in r.actual.names], dtype=np.int64)
            col = column[codes]
            p = np.where(col >= 0, s[np.arange(len(s)), np.maximum(col, 0)], 0.0)
        else:
            p = np.where(codes == r.actual.code(q.positive_label), s[:, 0], 1.0 - s[:, 0])
        nll = -np.log(np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS))
        w, cell = r.w[ok], self.dense[ok]
        has = self.table(cell, None) > 0
        total, weight = self.table(cell, w * nll).tolist(), self.table(cell, w).tolist()
        return [LogLossSums(total[i], weight[i]) if has[i] else None for i in range(self.m)]

    def _predicted(self) -> list[dict[str, float]]:
        """Per cell: predicted label -> weight, over every row with a prediction, by label."""
        r = self.rows
        assert r.pred is not None
        names = r.pred.names
        if not names:
            return [{} for _ in range(self.m)]
        some = _picked(r.pred.codes >= 0)
        cell, codes = self.dense[some], r.pred.codes[some]
        counts, weights = self.table(cell, None, codes, len(names)), self.table(cell, r.w[some], codes, len(names))
        order = sorted(range(len(names)), key=names.__getitem__)
        return [{names[j]: float(weights[i, j]) for j in order if counts[i, j]} for i in range(self.m)]

    # --- regression -------------------------------------------------------------------------------

    def regression(self) -> list[LabelledWindow]:
        q, r = self.query, self.rows
        assert r.value is not None and r.actual_value is not None
        labelled = ~np.isnan(r.value) & ~np.isnan(r.actual_value)
        common = self.common(labelled)
        w, y = r.w[labelled], r.actual_value[labelled]
        e = r.value[labelled] - y
        cell = self.dense[labelled]

        def total(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
            return self.table(cell, values) if where is None else self.table(cell[where], values[where])

        n = total(w)
        has = self.table(cell, None) > 0
        # Centred on each cell's own mean (see RegressionSums): a far shift would cost R² its digits.
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(n != 0, total(w * y) / np.where(n != 0, n, 1.0), q.shift)
        c = y - centre[cell]
        nonzero = y != 0
        columns = [n, total(w * e), total(w * np.abs(e)), total(w * e * e), total(w * c), total(w * c * c),
                   total(w * np.abs(e) / np.where(nonzero, np.abs(y), 1.0), nonzero), total(w, nonzero), centre]
        sums = np.stack(columns, axis=1).tolist()
        hists = self._error_histograms(e, w, cell)
        out = []
        for i in range(self.m):
            n_i, s_e, s_abs, s_sq, s_y, s_yy, s_ape, n_ape, shift = sums[i]
            regression = (RegressionSums(n_i, s_e, s_abs, s_sq, s_y, s_yy, s_ape, n_ape, shift,
                                         None if hists is None else hists[i]) if has[i]
                          else RegressionSums.empty(q.shift))
            out.append(LabelledWindow(**common[i], regression=regression))
        return out

    def _error_histograms(self, e: np.ndarray, w: np.ndarray, cell: np.ndarray) -> list[Histogram] | None:
        edges = self.query.error_edges
        if edges is None:
            return None
        k = len(edges) - 1
        bins = np.where(e < edges[0], 0, np.where(e > edges[-1], k + 1, uniform_bin_index(e, edges) + 1))
        return _histograms(edges, self.table(cell, w, bins, k + 2))


def _histograms(edges: tuple[float, ...], counts: np.ndarray) -> list[Histogram]:
    """A histogram per row of ``counts``: underflow, the bins, overflow."""
    return bins_by_row(Histogram, edges, [counts[:, 1:-1]], copy=False, underflow=counts[:, 0], overflow=counts[:, -1])


def _picked(mask: np.ndarray) -> np.ndarray | slice:
    """The rows ``mask`` selects: every row as a slice (a view, no copy), else their indices (gathering by
    index is cheaper than by mask when several columns are read)."""
    return slice(None) if mask.all() else np.flatnonzero(mask)


#: DELAY_EDGES_S is geometric past its first bin (``delay_edges``): a delay's bin is a logarithm away.
_DELAY_LOG_STEP = math.log(DELAY_EDGES_S[-1] / DELAY_EDGES_S[1]) / (len(DELAY_EDGES_S) - 2)


def _delay_slots(delay: np.ndarray) -> np.ndarray:
    """Histogram slot of each delay (seconds, not NaN): 0 underflow (feedback stamped before its prediction),
    1 .. k the bins of DELAY_EDGES_S, k + 1 overflow; the bins exactly ``bin_index``'s."""
    edges, k = DELAY_EDGES_S, len(DELAY_EDGES_S) - 1
    first = edges[1]
    guess = np.where(delay < first, 0.0, 1.0 + np.floor(np.log(np.maximum(delay, first) / first) / _DELAY_LOG_STEP))
    slots = corrected_bin_index(delay, edges, np.clip(guess, 0, k - 1)) + 1
    slots[delay < edges[0]] = 0
    slots[delay > edges[-1]] = k + 1
    return slots


def _rows(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The ``rows`` (sorted indices) of ``table``: the table itself when they are all of them (no copy)."""
    return table if len(rows) == len(table) else table[rows]
