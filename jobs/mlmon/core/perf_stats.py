"""Sufficient statistics for performance, CBPE, fairness and attribution metrics.

A store (Elasticsearch aggregations or DuckDB SQL) answers a window with these
objects; the pure functions in ``mlmon.metrics.performance``, ``.cbpe``,
``.fairness`` and ``.attribution`` turn them into metrics. Their size depends
on classes, bins, groups and features - never on rows - and every one of them
adds up: the statistics of a window are the sum (``+``) of the statistics of
its sub-windows, so a window whose labels arrive late is recomputed from
cheap per-sub-window partials, and a backfill is a sum.

Counts are floats, not ints: a store weights each event by ``1 / mlmon.sample_rate``.

Binning convention (every store must follow it): bin ``i`` of ``edges`` holds
scores ``edges[i] <= s < edges[i+1]``, except the last bin, which also holds
``s == edges[-1]`` (numpy.histogram's convention). Scores are probabilities;
stores clip them into ``[edges[0], edges[-1]]`` before binning.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

import numpy as np

from mlmon.core.lazy_tuples import LazyTuples, read_only_copy

#: sklearn.metrics.log_loss clips probabilities into [eps, 1 - eps] with the
#: machine epsilon of float64; stores clip the same way before taking -log(p).
LOG_LOSS_EPS: float = float(np.finfo(np.float64).eps)


def uniform_edges(n_bins: int = 1000, low: float = 0.0, high: float = 1.0) -> tuple[float, ...]:
    """``n_bins`` equal-width score bins over ``[low, high]``.

    1000 bins keep histogram AUC within ~1e-3 of sklearn's exact value on
    realistic scores (the exact bound is returned with every AUC); stores move
    2 x 1000 numbers per class, whatever the number of rows.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if not low < high:
        raise ValueError(f"need low < high, got [{low}, {high}]")
    return tuple(float(e) for e in np.linspace(low, high, n_bins + 1))


def bin_index(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin of each value under the module's convention (reference implementation for stores/tests)."""
    edges_arr = np.asarray(edges)
    idx = np.searchsorted(edges_arr, values, side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def uniform_bin_index(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """:func:`bin_index` for equal-width ``edges`` (as :func:`uniform_edges` makes them) of values that are not
    NaN, in constant time per value: the scaled value's floor, corrected by the edges (:func:`corrected_bin_index`)."""
    e = np.asarray(edges, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    k = len(edges) - 1
    return corrected_bin_index(v, edges, np.clip(np.floor((v - e[0]) * (k / (e[-1] - e[0]))), 0, k - 1))


def corrected_bin_index(values: np.ndarray, edges: tuple[float, ...], guess: np.ndarray) -> np.ndarray:
    """:func:`bin_index` of ``values`` (not NaN) from a ``guess`` in [0, len(edges) - 2] that rounding may have
    put one bin off (an arithmetic estimate near an edge): the edges themselves move it, so the bins are exactly
    ``bin_index``'s without a binary search per value."""
    e = np.asarray(edges, dtype=np.float64)
    k = len(edges) - 1
    g = np.asarray(guess).astype(np.int64)
    up = (g < k - 1) & (values >= e[np.minimum(g + 1, k)])
    down = (g > 0) & (values < e[g])
    return g + up - down


# Small groups of numbers (counts, sums, edges) are converted by ``map(float)`` and checked by one sum (finite
# terms cannot add up to inf or NaN without overflowing, so a non-finite sum alone triggers the element scan).
# Bins go through numpy instead (``_bin_values``): the metric math reads them as arrays anyway.
def _floats(values: Iterable[float], name: str) -> tuple[float, ...]:
    if isinstance(values, np.ndarray):
        out = tuple(np.asarray(values, dtype=np.float64).tolist())
    else:
        out = tuple(map(float, values))
    if not math.isfinite(sum(out)):
        bad = [v for v in out if not math.isfinite(v)]
        if bad:
            raise ValueError(f"{name} contains a non-finite value: {bad[0]!r}")
    return out


def _non_negative(values: tuple[float, ...], name: str) -> None:
    if values and min(values) < 0:
        raise ValueError(f"{name} must be >= 0, got {min(values)}")


def _check_edges(edges: tuple[float, ...]) -> None:
    if len(edges) < 2:
        raise ValueError(f"need at least 2 bin edges, got {len(edges)}")
    if np.any(np.diff(np.asarray(edges)) <= 0):
        raise ValueError("bin edges must be strictly increasing")


def _same_edges(a: tuple[float, ...], b: tuple[float, ...], what: str) -> None:
    if a != b:
        raise ValueError(f"cannot add {what} over different bin edges "
                         f"({len(a) - 1} bins [{a[0]}, {a[-1]}] vs {len(b) - 1} bins [{b[0]}, {b[-1]}])")


#: Edge tuples already checked, by id, each held here so its id cannot be reused by another object: a round
#: builds thousands of bin objects over the same few edge tuples, each would cost a conversion and a diff.
_CHECKED_EDGES: dict[int, tuple[float, ...]] = {}
_CHECKED_EDGES_MAX = 256


def _checked_edges(raw: object) -> tuple[float, ...]:
    """``raw`` as checked float edges; an edge tuple seen before (the same object) is returned unchecked."""
    if isinstance(raw, tuple) and _CHECKED_EDGES.get(id(raw)) is raw:
        return raw
    edges = _floats(raw, "edges")  # type: ignore[arg-type]
    _check_edges(edges)
    if isinstance(raw, tuple) and set(map(type, raw)) == {float}:
        edges = raw  # already plain floats: keep the caller's tuple, the one the next objects are built with
    if len(_CHECKED_EDGES) >= _CHECKED_EDGES_MAX:
        _CHECKED_EDGES.clear()
    _CHECKED_EDGES[id(edges)] = edges
    return edges


def _validate_bins(obj: object, *columns: str) -> None:
    """Normalise and check a frozen binned dataclass in place: edges increasing, one value >= 0 per bin.

    The checked columns are kept as read-only float64 arrays (:func:`_arrays`), which the metric math reads;
    their tuple fields are made from them on first read (:mod:`mlmon.core.lazy_tuples`).
    """
    edges = _checked_edges(getattr(obj, "edges"))
    object.__setattr__(obj, "edges", edges)
    arrays = []
    fields = obj.__dict__
    for name in columns:
        values = _bin_values(fields.pop(name), name)
        if len(values) != len(edges) - 1:
            raise ValueError(f"{name} has {len(values)} bins, edges define {len(edges) - 1}")
        arrays.append(values)
    object.__setattr__(obj, "_arrays", tuple(arrays))


class _LazyBinTuples(LazyTuples):
    """The bin columns :func:`_validate_bins` kept as arrays, made into their tuple fields when first read."""

    _BIN_COLUMNS: ClassVar[tuple[str, ...]] = ()

    def _tuple_source(self, name: str) -> np.ndarray | None:
        arrays = self.__dict__.get("_arrays")
        return arrays[self._BIN_COLUMNS.index(name)] if arrays is not None and name in self._BIN_COLUMNS else None


def _bin_values(raw: object, name: str, ndim: int = 1, copy: bool = True) -> np.ndarray:
    """One column of bins (``ndim`` 2: one row of bins per object) as a read-only float64 copy (the caller's
    array may change later; ``copy=False``: a read-only view, for an array made for these bins), each finite
    and >= 0."""
    if copy:
        values = read_only_copy(raw, np.float64)
    else:
        values = np.asarray(raw, dtype=np.float64).view()
        values.flags.writeable = False
    if values.ndim != ndim:
        raise ValueError(f"{name} must be one value per bin, got shape {values.shape}")
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{name} contains a non-finite value: {float(values[~finite][0])!r}")
    if values.size and values.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {float(values.min())}")
    return values


_Binned = TypeVar("_Binned", bound="_LazyBinTuples")


def bins_by_row(cls: type[_Binned], edges: tuple[float, ...], tables: Sequence[np.ndarray], copy: bool = True,
                **scalars: np.ndarray | Sequence[float]) -> list[_Binned]:
    """One ``cls`` per row of ``tables`` (a (rows, bins) table per bin column, in ``cls._BIN_COLUMNS`` order;
    ``scalars``: its other fields, non-negative numbers, one per row), checked as ``__post_init__`` checks one
    object but once per table: a batch of windows makes thousands of them. Each keeps read-only rows of the
    checked copies (``copy=False``: of the tables themselves, for tables made for these objects and never
    written again)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if names != {"edges", *cls._BIN_COLUMNS, *scalars}:
        raise TypeError(f"{cls.__name__} has fields {sorted(names)}, got edges, {cls._BIN_COLUMNS} and {sorted(scalars)}")
    edges = _checked_edges(edges)
    arrays = []
    for name, table in zip(cls._BIN_COLUMNS, tables, strict=True):
        values = _bin_values(table, name, ndim=2, copy=copy)
        if values.shape[1] != len(edges) - 1:
            raise ValueError(f"{name} has {values.shape[1]} bins, edges define {len(edges) - 1}")
        arrays.append(values)
    rows = {len(a) for a in arrays} | {len(v) for v in scalars.values()}
    if len(rows) > 1:
        raise ValueError(f"{cls.__name__} rows differ in number: {sorted(rows)}")
    others = {name: _floats(column, name) for name, column in scalars.items()}
    for name, checked in others.items():
        _non_negative(checked, name)
    out = []
    for i in range(rows.pop() if rows else 0):
        obj = cls.__new__(cls)
        obj.__dict__.update(edges=edges, _arrays=tuple(a[i] for a in arrays), **{k: v[i] for k, v in others.items()})
        out.append(obj)
    return out


def _arrays(obj: object) -> tuple[np.ndarray, ...]:
    """The columns :func:`_validate_bins` checked, in its order, as read-only arrays."""
    arrays: tuple[np.ndarray, ...] = obj.__dict__["_arrays"]
    return arrays


@functools.lru_cache(maxsize=64)
def coarse_cuts(own_edges: tuple[float, ...], edges: tuple[float, ...]) -> tuple[np.ndarray, tuple[float, ...]]:
    """Index of each coarse edge among the fine ones, and those fine edges (one tuple for every window of a
    round: they all coarsen the same two layouts, and a reused tuple skips the edge checks)."""
    _check_edges(edges)
    own = np.asarray(own_edges)
    target = np.asarray(edges)
    # Nearest fine edge per coarse edge: linspace(0, 1, 11) and linspace(0, 1, 1001) differ in the last ulp.
    cuts = np.abs(own[:, None] - target[None, :]).argmin(axis=0)
    tolerance = 1e-9 * float(np.min(np.diff(own)))
    if np.any(np.abs(own[cuts] - target) > tolerance):
        raise ValueError("coarse edges must be a subset of the fine edges")
    if cuts[0] != 0 or cuts[-1] != len(own) - 1:
        raise ValueError("coarse edges must span the same range as the fine edges")
    cuts.flags.writeable = False
    return cuts, tuple(float(own_edges[c]) for c in cuts)


# --- classification ----------------------------------------------------------


@dataclass(frozen=True)
class ConfusionCounts:
    """Labelled predictions counted per (actual class, predicted class).

    ``counts[i][j]`` = predictions whose actual class is ``classes[i]`` and
    predicted class is ``classes[j]`` (sklearn's confusion_matrix layout).
    ``classes`` are sorted, so equal counts compare equal.
    """

    classes: tuple[str, ...]
    counts: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if list(self.classes) != sorted(set(self.classes)):
            raise ValueError(f"classes must be sorted and unique, got {self.classes!r}")
        if len(self.counts) != len(self.classes) or any(len(r) != len(self.classes) for r in self.counts):
            raise ValueError(f"counts must be a {len(self.classes)}x{len(self.classes)} matrix")
        rows = tuple(_floats(r, "confusion counts") for r in self.counts)
        for r in rows:
            _non_negative(r, "confusion counts")
        object.__setattr__(self, "counts", rows)

    @classmethod
    def empty(cls) -> Self:
        return cls((), ())

    @classmethod
    def from_pairs(cls, pairs: Mapping[tuple[str, str], float], classes: Iterable[str] = ()) -> Self:
        """From ``{(actual, predicted): count}`` - what a GROUP BY / terms aggregation returns.

        ``classes`` adds declared classes that may not occur in this window.
        """
        labels = sorted({str(c) for pair in pairs for c in pair} | {str(c) for c in classes})
        pos = {c: i for i, c in enumerate(labels)}
        m = np.zeros((len(labels), len(labels)))
        for (actual, predicted), n in pairs.items():
            m[pos[str(actual)], pos[str(predicted)]] += n
        return cls(tuple(labels), tuple(tuple(r) for r in m.tolist()))

    def matrix(self, classes: tuple[str, ...] | None = None) -> np.ndarray:
        """The counts as an array, optionally re-indexed to a superset of ``self.classes``."""
        if classes is None or classes == self.classes:
            return np.array(self.counts, dtype=float).reshape(len(self.classes), len(self.classes))
        missing = set(self.classes) - set(classes)
        if missing:
            raise ValueError(f"classes {sorted(missing)} would be dropped")
        idx = [classes.index(c) for c in self.classes]
        out = np.zeros((len(classes), len(classes)))
        out[np.ix_(idx, idx)] = self.matrix()
        return out

    @property
    def total(self) -> float:
        return float(self.matrix().sum())

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        classes = tuple(sorted(set(self.classes) | set(other.classes)))
        m = self.matrix(classes) + other.matrix(classes)
        return ConfusionCounts(classes, tuple(tuple(r) for r in m.tolist()))


@dataclass(frozen=True)
class ScoreBins(_LazyBinTuples):
    """Labelled scores of one class, binned: the input of ROC AUC, PR AUC and calibration error.

    Binary: the positive-class score, split by whether the actual class is the
    positive one. Multiclass: one per class (one-vs-rest), the score of that
    class split by whether the actual class is that class. Per bin: how many
    actual positives, how many actual negatives, and the sum of their scores.
    """

    edges: tuple[float, ...]
    positives: tuple[float, ...]
    negatives: tuple[float, ...]
    score_sum: tuple[float, ...]
    _BIN_COLUMNS = ("positives", "negatives", "score_sum")

    def __post_init__(self) -> None:
        _validate_bins(self, *self._BIN_COLUMNS)

    @classmethod
    def empty(cls, edges: tuple[float, ...]) -> Self:
        zeros = (0.0,) * (len(edges) - 1)
        return cls(edges, zeros, zeros, zeros)

    @classmethod
    def from_scores(cls, scores: np.ndarray, is_positive: np.ndarray, edges: tuple[float, ...],
                    weights: np.ndarray | None = None) -> Self:
        """Bin raw rows (reference profiles, tests). Stores compute the same by aggregation."""
        s = np.clip(np.asarray(scores, dtype=float), edges[0], edges[-1])
        pos = np.asarray(is_positive, dtype=bool)
        w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
        idx = bin_index(s, edges)
        k = len(edges) - 1
        return cls(edges,
                   tuple(np.bincount(idx[pos], w[pos], minlength=k).tolist()),
                   tuple(np.bincount(idx[~pos], w[~pos], minlength=k).tolist()),
                   tuple(np.bincount(idx, w * s, minlength=k).tolist()))

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``positives``, ``negatives``, ``score_sum`` as read-only float64 arrays."""
        pos, neg, ssum = _arrays(self)
        return pos, neg, ssum

    @property
    def n_positive(self) -> float:
        return float(self.arrays[0].sum())

    @property
    def n_negative(self) -> float:
        return float(self.arrays[1].sum())

    def coarsen(self, edges: tuple[float, ...]) -> ScoreBins:
        """Re-bin onto coarser ``edges``, each of which must be one of ours (e.g. 1000 bins -> 10)."""
        cuts, coarse = coarse_cuts(self.edges, tuple(edges))
        pos, neg, ssum = (np.add.reduceat(v, cuts[:-1]) for v in self.arrays)
        # Arrays are taken as bins and converted by the checks (_validate_bins).
        return ScoreBins(coarse, pos, neg, ssum)  # type: ignore[arg-type]

    def __add__(self, other: ScoreBins) -> ScoreBins:
        _same_edges(self.edges, other.edges, "score bins")
        pos, neg, ssum = (a + b for a, b in zip(self.arrays, other.arrays))
        return ScoreBins(self.edges, pos, neg, ssum)  # arrays: checked and kept as they are


@dataclass(frozen=True)
class LogLossSums:
    """Sum over labelled predictions of ``-log(clip(p_actual, eps, 1 - eps))`` and their count.

    ``p_actual`` is the logged probability of the class that turned out to be
    the actual one (binary: ``score`` if actual is positive else ``1 - score``).
    """

    neg_log_likelihood: float
    n: float

    def __post_init__(self) -> None:
        _non_negative(_floats((self.neg_log_likelihood, self.n), "log loss sums"), "log loss sums")

    def __add__(self, other: LogLossSums) -> LogLossSums:
        return LogLossSums(self.neg_log_likelihood + other.neg_log_likelihood, self.n + other.n)


@dataclass(frozen=True)
class ClassificationStats:
    """Everything a window contributes to classification performance.

    ``n_predictions`` counts all predictions of the window, labelled or not, so
    label coverage is ``confusion.total / n_predictions``. ``scores`` maps a
    class to its one-vs-rest ``ScoreBins`` (binary: only the positive class);
    ``log_loss`` is None when the service logs no probabilities.
    """

    confusion: ConfusionCounts
    n_predictions: float
    scores: Mapping[str, ScoreBins] = field(default_factory=dict)
    log_loss: LogLossSums | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.n_predictions) or self.n_predictions < 0:
            raise ValueError(f"n_predictions must be a finite count >= 0, got {self.n_predictions}")
        if self.confusion.total > self.n_predictions * (1 + 1e-9) + 1e-9:
            raise ValueError(f"{self.confusion.total} labelled predictions but only {self.n_predictions} predictions")
        object.__setattr__(self, "scores", dict(sorted(self.scores.items())))

    @classmethod
    def from_arrays(cls, actual: Sequence[object], predicted: Sequence[object],
                    scores: Mapping[str, Sequence[float] | np.ndarray] | None = None, *,
                    labelled: Sequence[bool] | np.ndarray | None = None,
                    edges: tuple[float, ...] | None = None) -> Self:
        """From raw rows (reference profiles, tests); a store computes the same by aggregation.

        ``scores`` maps a class to its probability per row: one class = binary
        (the positive class's score), several = multiclass (one-vs-rest bins,
        probabilities summing to 1 per row). ``labelled`` marks rows whose
        actual has arrived (default: all); other rows count only in ``n_predictions``.
        """
        act = np.asarray([str(a) for a in actual], dtype=object)
        pred = np.asarray([str(p) for p in predicted], dtype=object)
        if act.shape != pred.shape:
            raise ValueError(f"{len(act)} actuals but {len(pred)} predictions")
        lab = np.ones(len(act), dtype=bool) if labelled is None else np.asarray(labelled, dtype=bool)
        a, p = act[lab], pred[lab]
        confusion = ConfusionCounts.from_pairs(Counter(zip(a.tolist(), p.tolist())))
        if not scores:
            return cls(confusion, float(len(act)))
        bin_edges = uniform_edges() if edges is None else edges
        columns = {c: np.asarray(v, dtype=float)[lab] for c, v in scores.items()}
        bins = {c: ScoreBins.from_scores(v, a == c, bin_edges) for c, v in columns.items()}
        if len(columns) == 1:
            ((positive, s),) = columns.items()
            p_actual = np.where(a == positive, s, 1.0 - s)
        else:
            unknown = set(a.tolist()) - set(columns)
            if unknown:
                raise ValueError(f"actual classes without a score column: {sorted(unknown)}")
            names = list(columns)
            matrix = np.column_stack([columns[c] for c in names]) if len(a) else np.zeros((0, len(names)))
            p_actual = matrix[np.arange(len(a)), [names.index(c) for c in a]]
        clipped = np.clip(p_actual, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
        return cls(confusion, float(len(act)), bins, LogLossSums(float(-np.log(clipped).sum()), float(len(a))))

    def __add__(self, other: ClassificationStats) -> ClassificationStats:
        scores = dict(self.scores)
        for cls, bins in other.scores.items():
            scores[cls] = scores[cls] + bins if cls in scores else bins
        if self.log_loss is None or other.log_loss is None:
            log_loss = self.log_loss or other.log_loss
        else:
            log_loss = self.log_loss + other.log_loss
        return ClassificationStats(self.confusion + other.confusion, self.n_predictions + other.n_predictions,
                                   scores, log_loss)


# --- regression ----------------------------------------------------------------


@dataclass(frozen=True)
class Histogram(_LazyBinTuples):
    """Counts over fixed edges plus what fell outside them (nothing is dropped)."""

    edges: tuple[float, ...]
    counts: tuple[float, ...]
    underflow: float = 0.0
    overflow: float = 0.0
    _BIN_COLUMNS = ("counts",)

    def __post_init__(self) -> None:
        _validate_bins(self, *self._BIN_COLUMNS)
        _non_negative(_floats((self.underflow, self.overflow), "histogram counts"), "histogram counts")

    @classmethod
    def empty(cls, edges: tuple[float, ...]) -> Self:
        return cls(edges, (0.0,) * (len(edges) - 1))

    @classmethod
    def from_values(cls, values: np.ndarray, edges: tuple[float, ...]) -> Self:
        v = np.asarray(values, dtype=float)
        inside = (v >= edges[0]) & (v <= edges[-1])
        counts = np.bincount(bin_index(v[inside], edges), minlength=len(edges) - 1)
        return cls(edges, tuple(counts.astype(float).tolist()),
                   float(np.sum(v < edges[0])), float(np.sum(v > edges[-1])))

    @property
    def array(self) -> np.ndarray:
        """``counts`` as a read-only float64 array."""
        return _arrays(self)[0]

    @property
    def total(self) -> float:
        return float(self.array.sum() + self.underflow + self.overflow)

    def __add__(self, other: Histogram) -> Histogram:
        _same_edges(self.edges, other.edges, "histograms")
        return Histogram(self.edges, self.array + other.array,  # an array: checked and kept as it is
                         self.underflow + other.underflow, self.overflow + other.overflow)


@dataclass(frozen=True)
class RegressionSums:
    """Sums over labelled regression predictions; ``error = prediction - actual``.

    ``sum_actual`` / ``sum_actual_sq`` are taken of ``actual - shift``, the shift
    near the actuals' mean (stores centre on the window's own mean), so the
    variance behind R² does not cancel catastrophically when actuals are large
    and alike (1e6 + N(0, 1)). Sums with different shifts still add: both move
    to the shift of the larger part, never to a far-away one such as 0.

    MAPE's sums skip zero actuals (``n_zero_actual`` counts them) - see
    ``mlmon.metrics.performance.regression_metrics``.
    """

    n: float
    sum_error: float
    sum_abs_error: float
    sum_sq_error: float
    sum_actual: float
    sum_actual_sq: float
    sum_abs_pct_error: float
    n_nonzero_actual: float
    shift: float = 0.0
    error_histogram: Histogram | None = None

    def __post_init__(self) -> None:
        _floats((self.n, self.sum_error, self.sum_abs_error, self.sum_sq_error, self.sum_actual,
                 self.sum_actual_sq, self.sum_abs_pct_error, self.n_nonzero_actual, self.shift), "regression sums")
        _non_negative((self.n, self.sum_abs_error, self.sum_sq_error, self.sum_actual_sq,
                       self.sum_abs_pct_error, self.n_nonzero_actual), "regression sums")
        if self.n_nonzero_actual > self.n * (1 + 1e-9) + 1e-9:
            raise ValueError("n_nonzero_actual exceeds n")

    @property
    def n_zero_actual(self) -> float:
        return self.n - self.n_nonzero_actual

    @classmethod
    def empty(cls, shift: float = 0.0) -> Self:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, shift)

    @classmethod
    def from_arrays(cls, actual: np.ndarray, predicted: np.ndarray, shift: float | None = None,
                    error_edges: tuple[float, ...] | None = None) -> Self:
        """From raw rows (reference profiles, tests). Stores compute the same sums in SQL / aggregations.

        ``shift`` defaults to the actuals' mean (see the class docstring).
        """
        y = np.asarray(actual, dtype=float)
        err = np.asarray(predicted, dtype=float) - y
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(err))):
            raise ValueError("actual and predicted values must be finite")
        if shift is None:
            shift = float(y.mean()) if y.size else 0.0
        nonzero = y != 0
        centred = y - shift
        return cls(float(len(y)), float(err.sum()), float(np.abs(err).sum()), float((err ** 2).sum()),
                   float(centred.sum()), float((centred ** 2).sum()),
                   float((np.abs(err[nonzero]) / np.abs(y[nonzero])).sum()), float(nonzero.sum()), shift,
                   None if error_edges is None else Histogram.from_values(err, error_edges))

    def with_shift(self, shift: float) -> RegressionSums:
        """The same sums taken around another shift: sum(y-k2) = sum(y-k1) + n(k1-k2), likewise for squares."""
        if shift == self.shift:
            return self
        d = self.shift - shift
        return RegressionSums(self.n, self.sum_error, self.sum_abs_error, self.sum_sq_error,
                              self.sum_actual + self.n * d,
                              max(self.sum_actual_sq + 2 * d * self.sum_actual + self.n * d * d, 0.0),
                              self.sum_abs_pct_error, self.n_nonzero_actual, shift, self.error_histogram)

    def __add__(self, other: RegressionSums) -> RegressionSums:
        # The larger part's shift (the other's is near it, or the other is small): an empty part's
        # shift (0 by default) would move 1e6-sized actuals' sums to 0 and lose their variance.
        shift = other.shift if other.n > self.n else self.shift
        a, o = self.with_shift(shift), other.with_shift(shift)
        if a.error_histogram is None or o.error_histogram is None:
            hist = a.error_histogram or o.error_histogram
        else:
            hist = a.error_histogram + o.error_histogram
        return RegressionSums(a.n + o.n, a.sum_error + o.sum_error, a.sum_abs_error + o.sum_abs_error,
                              a.sum_sq_error + o.sum_sq_error, a.sum_actual + o.sum_actual,
                              a.sum_actual_sq + o.sum_actual_sq, a.sum_abs_pct_error + o.sum_abs_pct_error,
                              a.n_nonzero_actual + o.n_nonzero_actual, shift, hist)


# --- CBPE (no labels) ----------------------------------------------------------


@dataclass(frozen=True)
class PredictedScoreBins(_LazyBinTuples):
    """Unlabelled raw scores of one class, binned, for the predictions of one predicted class.

    Per bin: how many predictions and the sum of their raw scores. CBPE maps
    each bin's mean raw score through the calibration fitted on the reference.
    """

    edges: tuple[float, ...]
    counts: tuple[float, ...]
    score_sum: tuple[float, ...]
    _BIN_COLUMNS = ("counts", "score_sum")

    def __post_init__(self) -> None:
        _validate_bins(self, *self._BIN_COLUMNS)

    @classmethod
    def from_scores(cls, scores: np.ndarray, edges: tuple[float, ...]) -> Self:
        s = np.clip(np.asarray(scores, dtype=float), edges[0], edges[-1])
        idx = bin_index(s, edges)
        k = len(edges) - 1
        return cls(edges, tuple(np.bincount(idx, minlength=k).astype(float).tolist()),
                   tuple(np.bincount(idx, s, minlength=k).tolist()))

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``counts``, ``score_sum`` as read-only float64 arrays."""
        counts, ssum = _arrays(self)
        return counts, ssum

    @property
    def total(self) -> float:
        return float(self.arrays[0].sum())

    def __add__(self, other: PredictedScoreBins) -> PredictedScoreBins:
        _same_edges(self.edges, other.edges, "score bins")
        counts, ssum = (a + b for a, b in zip(self.arrays, other.arrays))
        return PredictedScoreBins(self.edges, counts, ssum)  # arrays: checked and kept as they are


@dataclass(frozen=True)
class CbpeStats:
    """One class's raw score, binned separately for predictions of that class and of any other.

    Binary: the positive-class score, split by predicted positive / negative.
    Multiclass: one per class (one-vs-rest).
    """

    predicted_positive: PredictedScoreBins
    predicted_negative: PredictedScoreBins

    def __post_init__(self) -> None:
        _same_edges(self.predicted_positive.edges, self.predicted_negative.edges, "CBPE score bins")

    @classmethod
    def from_scores(cls, scores: np.ndarray, predicted_positive: np.ndarray, edges: tuple[float, ...]) -> Self:
        s = np.asarray(scores, dtype=float)
        mask = np.asarray(predicted_positive, dtype=bool)
        return cls(PredictedScoreBins.from_scores(s[mask], edges), PredictedScoreBins.from_scores(s[~mask], edges))

    @property
    def n(self) -> float:
        return self.predicted_positive.total + self.predicted_negative.total

    def __add__(self, other: CbpeStats) -> CbpeStats:
        return CbpeStats(self.predicted_positive + other.predicted_positive,
                         self.predicted_negative + other.predicted_negative)


# --- fairness --------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCounts:
    """Binary-classification counts of one group of a sensitive attribute.

    ``n_predictions`` / ``n_predicted_positive`` cover every prediction of the
    group (labelled or not): selection rate needs no labels. The confusion cells
    ``tp, fp, fn, tn`` cover the labelled ones only.
    """

    n_predictions: float
    n_predicted_positive: float
    tp: float
    fp: float
    fn: float
    tn: float

    def __post_init__(self) -> None:
        values = _floats((self.n_predictions, self.n_predicted_positive, self.tp, self.fp, self.fn, self.tn),
                         "group counts")
        _non_negative(values, "group counts")
        slack = 1e-9 * max(self.n_predictions, 1.0)
        if self.n_predicted_positive > self.n_predictions + slack:
            raise ValueError("n_predicted_positive exceeds n_predictions")
        if self.n_labelled > self.n_predictions + slack:
            raise ValueError(f"{self.n_labelled} labelled predictions but only {self.n_predictions} predictions")
        if self.tp + self.fp > self.n_predicted_positive + slack:
            raise ValueError("labelled predicted positives (tp + fp) exceed n_predicted_positive")

    @classmethod
    def empty(cls) -> Self:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_arrays(cls, predicted_positive: np.ndarray, actual_positive: np.ndarray | None = None,
                    labelled: np.ndarray | None = None) -> Self:
        """From raw rows of one group (tests, reference profiles)."""
        pred = np.asarray(predicted_positive, dtype=bool)
        has_label = np.ones_like(pred) if labelled is None else np.asarray(labelled, dtype=bool)
        act = np.zeros_like(pred) if actual_positive is None else np.asarray(actual_positive, dtype=bool)
        p, a = pred[has_label], act[has_label]
        return cls(float(len(pred)), float(pred.sum()), float(np.sum(p & a)), float(np.sum(p & ~a)),
                   float(np.sum(~p & a)), float(np.sum(~p & ~a)))

    @property
    def n_labelled(self) -> float:
        return self.tp + self.fp + self.fn + self.tn

    def __add__(self, other: GroupCounts) -> GroupCounts:
        return GroupCounts(self.n_predictions + other.n_predictions,
                           self.n_predicted_positive + other.n_predicted_positive,
                           self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


def add_groups(a: Mapping[str, GroupCounts], b: Mapping[str, GroupCounts]) -> dict[str, GroupCounts]:
    """Sum two windows' per-group counts (groups seen in either)."""
    return {g: a.get(g, GroupCounts.empty()) + b.get(g, GroupCounts.empty()) for g in sorted(set(a) | set(b))}


# --- attributions ------------------------------------------------------------------


@dataclass(frozen=True)
class AttributionSums:
    """Per-feature sums over explanation events: count, sum |a|, sum a, sum a².

    ``sum a²`` equals ``sum |a|²``, so it gives the variance of |a| too (for the
    noise level of the mean |a|) at no extra cost.
    """

    n: float
    sum_abs: float
    sum: float
    sum_sq: float

    def __post_init__(self) -> None:
        _floats((self.n, self.sum_abs, self.sum, self.sum_sq), "attribution sums")
        _non_negative((self.n, self.sum_abs, self.sum_sq), "attribution sums")
        if abs(self.sum) > self.sum_abs * (1 + 1e-9) + 1e-12:
            raise ValueError("|sum of attributions| exceeds the sum of |attributions|")

    @classmethod
    def empty(cls) -> Self:
        return cls(0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_values(cls, values: np.ndarray) -> Self:
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        return cls(float(len(v)), float(np.abs(v).sum()), float(v.sum()), float((v ** 2).sum()))

    def __add__(self, other: AttributionSums) -> AttributionSums:
        return AttributionSums(self.n + other.n, self.sum_abs + other.sum_abs, self.sum + other.sum,
                               self.sum_sq + other.sum_sq)


def add_features(a: Mapping[str, AttributionSums], b: Mapping[str, AttributionSums]) -> dict[str, AttributionSums]:
    """Sum two windows' per-feature attribution sums (features seen in either)."""
    return {f: a.get(f, AttributionSums.empty()) + b.get(f, AttributionSums.empty()) for f in sorted(set(a) | set(b))}
