"""The rows of ModelLogger's batch calls turned into queue tuples, a slice at a time.

Each ``*Rows`` class checks a call's arguments against its table once (a bad call raises
:class:`~mlmon_logging.frames.BatchCallError` before anything is logged), then
:meth:`slice` gives the queue tuples of rows ``start:stop``: the very tuples
``log_prediction`` / ``log_feedback`` / ``log_explanation`` would queue for those rows
(:mod:`mlmon_logging.items`), with the same ids, times and sampling decisions, so the
writer thread builds, validates and flags them alike - except that a prediction row's
features and segment stay in its slice's columns (a :class:`~mlmon_logging.blocks.RowBlock`)
rather than in dicts of its own. Reading a slice at a time keeps
memory bounded by the slice (and the queue) whatever the table's size.

A row whose time (or, for feedback and explanations, prediction id) cannot be read is
the one thing the single calls would raise for; here it is left out and counted
(``unreadable``, dropped with reason ``invalid``), its causes listed once per slice.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from time import time_ns
from typing import Any, Final

from mlmon_logging.blocks import RowBlock
from mlmon_logging.frames import BatchCallError, ColumnRef, Table, Times, known_type
from mlmon_logging.ids import uuid7_from_ns
from mlmon_logging.items import EXPLANATION, FEEDBACK, PREDICTION
from mlmon_logging.sampling import keep
from mlmon_logging.values import is_missing

#: Rows turned into tuples at a time: large enough that per-slice costs vanish, small
#: enough that the slice's dicts stay in cache and memory.
SLICE_ROWS: Final = 2048
#: Scores given per class: {class label: column} or [column, ...] (each column's label is the class).
ScoresRef = Mapping[Any, ColumnRef] | Sequence[Hashable]


@dataclass
class Slice:
    """The queue tuples of some rows, and what happened to the others."""

    items: list[tuple[Any, ...]]
    ids: list[str] = field(default_factory=list)  # one per row (predictions only)
    sampled_out: int = 0
    unreadable: int = 0
    causes: list[str] = field(default_factory=list)  # why rows were unreadable, one line per cause


def _absent(value: Any) -> bool:
    return is_missing(value) or (type(value) is float and value != value)


def _dicts(labels: list[Any], columns: list[list[Any]], rows: int) -> Iterable[dict[Any, Any] | None]:
    """One dict {label: value} per row, or None per row when there are no labels."""
    if not labels:
        return repeat(None, rows)
    # map/zip keep the loop in C: about twice as fast as a comprehension building the same dicts.
    return map(dict, map(zip, repeat(labels), zip(*columns)))


class _Rows:
    """What the three kinds share: the table, the time column, sampling."""

    def __init__(self, table: Table, timestamp: ColumnRef | None) -> None:
        self.table = table
        self.count = table.rows
        self._times = None if timestamp is None else Times(table.column(timestamp, "timestamp"), "timestamp",
                                                           table.call)
        self._used: list[Any] = []  # labels an argument took: not features/attributions by default
        if timestamp is not None and table.is_label(timestamp):
            self._used.append(timestamp)

    def _column(self, ref: ColumnRef | None, argument: str) -> Any:
        if ref is None:
            return None
        column = self.table.column(ref, argument)
        if self.table.is_label(ref):
            self._used.append(ref)
        return column

    def _values(self, column: Any, start: int, stop: int) -> Iterable[Any]:
        return repeat(None, stop - start) if column is None else self.table.values(column, start, stop)

    def _columns(self, columns: list[Any], start: int, stop: int) -> list[list[Any]]:
        return [self.table.values(column, start, stop) for column in columns]

    def _slice_times(self, start: int, stop: int, out: Slice) -> list[int | None]:
        if self._times is None:
            return [time_ns() for _ in range(stop - start)]
        times = self._times.slice(start, stop)
        out.causes.extend(self._times.causes)
        return times


class PredictionRows(_Rows):
    """The rows of ``log_predictions``."""

    def __init__(self, data: Any, *, prediction: ColumnRef, score: ColumnRef | None, scores: ScoresRef | None,
                 features: Sequence[Hashable] | None, segment: Sequence[Hashable] | None,
                 timestamp: ColumnRef | None, latency_ms: ColumnRef | None, prediction_id: ColumnRef | None,
                 call: str = "log_predictions") -> None:
        super().__init__(Table(data, call), timestamp)
        table = self.table
        if prediction is None:
            raise BatchCallError(f"mlmon: {call}: prediction= is required: the column (or values) of the model's "
                                 "outputs")
        self._prediction = self._column(prediction, "prediction")
        self._score = self._column(score, "score")
        self._latency = self._column(latency_ms, "latency_ms")
        self._ids = self._column(prediction_id, "prediction_id")
        self._classes: list[Any] = []
        self._class_columns: list[Any] = []
        if scores is not None:
            if isinstance(scores, Mapping):
                pairs = list(scores.items())
            elif isinstance(scores, str):
                raise BatchCallError(f"mlmon: {call}: scores={scores!r} must be a dict {{class label: column}} or a "
                                     "list of columns named by their class")
            else:
                pairs = [(label, label) for label in scores]
            self._classes = [label for label, _ in pairs]
            self._class_columns = [self._column(ref, f"scores[{label!r}]") for label, ref in pairs]
        self._segment_labels = table.labels_of(segment, "segment")
        self._segment_columns = [table.column(label, "segment") for label in self._segment_labels]
        self._used.extend(self._segment_labels)
        self._feature_labels = (table.others(self._used) if features is None
                                else table.labels_of(features, "features"))
        self._feature_columns = [table.column(label, "features") for label in self._feature_labels]
        self._feature_types = [known_type(column) for column in self._feature_columns]

    def slice(self, start: int, stop: int, sample_rate: float) -> Slice:
        n = stop - start
        out = Slice([])
        times = self._slice_times(start, stop, out)
        if self._ids is None:
            ids = [uuid7_from_ns(t) if t is not None else "" for t in times]
        else:  # as log_prediction: str() of what is given; a missing one is made
            ids = [uuid7_from_ns(t) if _absent(p) and t is not None else "" if _absent(p) else str(p)
                   for p, t in zip(self._values(self._ids, start, stop), times)]
        out.ids = ids
        scores: Iterable[dict[Any, Any] | None] = _dicts(self._classes, self._columns(self._class_columns, start,
                                                                                      stop), n)
        # No dict per row here: the rows share their slice's columns (mlmon_logging.blocks says why).
        block = RowBlock(n, self._feature_labels, self._columns(self._feature_columns, start, stop),
                         self._feature_types, self._segment_labels,
                         self._columns(self._segment_columns, start, stop))
        rows = zip(repeat(PREDICTION), times, ids, repeat(block),
                   self._values(self._prediction, start, stop), self._values(self._score, start, stop),
                   self._values(self._latency, start, stop), range(n), scores)
        out.items = _keep_readable(rows, sample_rate, out)
        return out


class FeedbackRows(_Rows):
    """The rows of ``log_feedback_batch``."""

    def __init__(self, data: Any, *, prediction_id: ColumnRef, actual: ColumnRef, timestamp: ColumnRef | None,
                 call: str = "log_feedback_batch") -> None:
        super().__init__(Table(data, call), timestamp)
        self._ids = self._column(_required(prediction_id, "prediction_id", call), "prediction_id")
        self._actual = self._column(_required(actual, "actual", call), "actual")

    def slice(self, start: int, stop: int, sample_rate: float) -> Slice:
        out = Slice([])
        times = self._slice_times(start, stop, out)
        rows = zip(repeat(FEEDBACK), times, _ids(self._values(self._ids, start, stop), out),
                   self._values(self._actual, start, stop))
        out.items = _keep_readable(rows, sample_rate, out)
        return out


class ExplanationRows(_Rows):
    """The rows of ``log_explanations``: attributions are columns (by default all the others)."""

    def __init__(self, data: Any, *, prediction_id: ColumnRef, attributions: Sequence[Hashable] | None,
                 method: str | None, base_value: ColumnRef | float | None, timestamp: ColumnRef | None,
                 call: str = "log_explanations") -> None:
        super().__init__(Table(data, call), timestamp)
        table = self.table
        self._ids = self._column(_required(prediction_id, "prediction_id", call), "prediction_id")
        if method is not None and not isinstance(method, str):
            raise BatchCallError(f"mlmon: {call}: method={method!r} must be the method's name (a string, the same "
                                 "for every row), e.g. method='shap'")
        self._method = method
        self._base_constant: float | None = None
        self._base = None
        if (isinstance(base_value, numbers.Real) and not isinstance(base_value, bool)
                and base_value not in table.labels):
            self._base_constant = float(base_value)  # one for the model (e.g. SHAP's expected value)
        else:
            self._base = self._column(base_value, "base_value")
        self._labels = (table.others(self._used) if attributions is None
                        else table.labels_of(attributions, "attributions"))
        if not self._labels:
            raise BatchCallError(f"mlmon: {call}: no attribution columns (the frame's columns: {table.labels!r}); "
                                 "pass attributions=[column, ...] or a frame with one column per feature")
        self._columns_of = [table.column(label, "attributions") for label in self._labels]

    def slice(self, start: int, stop: int, sample_rate: float) -> Slice:
        n = stop - start
        out = Slice([])
        times = self._slice_times(start, stop, out)
        bases = repeat(self._base_constant, n) if self._base is None else self._values(self._base, start, stop)
        attributions = _dicts(self._labels, self._columns(self._columns_of, start, stop), n)
        rows = zip(repeat(EXPLANATION), times, _ids(self._values(self._ids, start, stop), out), attributions,
                   repeat(self._method), bases)
        out.items = _keep_readable(rows, sample_rate, out)
        return out


def _required(ref: ColumnRef | None, argument: str, call: str) -> ColumnRef:
    if ref is None:
        raise BatchCallError(f"mlmon: {call}: {argument}= is required (a column name, or a sequence with one value "
                             "per row)")
    return ref


def _ids(values: Iterable[Any], out: Slice) -> list[str | None]:
    """Prediction ids of feedback/explanation rows; a missing one (the row cannot be joined) is None."""
    ids = [None if _absent(p) else str(p) for p in values]
    if None in ids:
        out.causes.append("no prediction id (None, NaN or NaT)")
    return ids


def _keep_readable(rows: Iterable[tuple[Any, ...]], sample_rate: float, out: Slice) -> list[tuple[Any, ...]]:
    """The rows with a time and an id, less those sampled out (counted in ``out``)."""
    if not out.causes and sample_rate >= 1.0:
        return list(rows)  # the usual case: every row goes
    items = []
    for row in rows:
        if row[1] is None or row[2] is None:
            out.unreadable += 1
        elif sample_rate < 1.0 and not keep(row[2], sample_rate):
            out.sampled_out += 1
        else:
            items.append(row)
    return items
