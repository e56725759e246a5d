"""The feature and segment columns of one slice of ``log_predictions``, shared by its rows.

Why: a batch call that builds one feature dict per row on the caller, only for the writer
to copy and split it into numeric and categorical dicts, costs more per event than
``log_prediction`` with ready dicts. Instead every queue tuple of a slice carries the same
:class:`RowBlock` in its features slot and its row number in its segment slot::

    (PREDICTION, ts_ns, prediction_id, block, prediction, score, latency_ms, row, scores)

and on the writer thread :meth:`RowBlock.features` gives the row's split features
(``{"numeric": ..., "categorical": ...}``), built for every row of the block at once from
its columns by the plan :class:`~mlmon_logging.plans.FeatureSplitter` holds for their
shape: the very dicts the splitter would make from the row's dict.

A column's value type is known once per column where its dtype makes it safe (a numpy
float or int column holds only floats or only ints), else read value by value (an object
column may mix numbers, strings, None). A row the plan does not cover - a value of
another type than its column's, a non-finite number, a column of bools - gets None and
takes the dict path with the dicts ``log_prediction`` would have been given
(:meth:`RowBlock.row`), so it is coerced, flagged or refused exactly as a single call.

Order matters for what the splitter learns: a feature name's kind is learned from the
first value seen, so the block plans its shape only when its first covered row is
rendered (after the rows before it took the dict path), and plans again whenever the
splitter forgot its plans (a route changed: :attr:`FeatureSplitter.epoch`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import islice, repeat
from typing import Any, Final

from mlmon_logging.plans import SPLIT_ROW, FeatureSplitter

#: Value types a plan covers; any other goes the dict path.
_PLANNABLE: Final = (float, int, str)
_NAN: Final = float("nan")

Row = dict[Any, Any] | None


Split = dict[str, dict[str, Any]]


class RowBlock:
    """Feature and segment columns (lists of plain values, one per row) of one slice.

    ``feature_types``: per feature column, its value type where the column's dtype
    guarantees one (None: read the values). Built on the caller thread; read on the
    writer thread only (one writer per logger), so the parts made there need no lock.
    """

    __slots__ = ("rows", "has_segment", "_feature_labels", "_feature_columns", "_segment_labels", "_segment_columns",
                 "_types", "_slow", "_epoch", "_split", "_numeric_names", "_categorical_names", "_numeric",
                 "_categorical", "_numeric_rows", "_categorical_rows", "_next", "_segments")

    def __init__(self, rows: int, feature_labels: Sequence[Any], feature_columns: list[list[Any]],
                 feature_types: list[type | None], segment_labels: Sequence[Any],
                 segment_columns: list[list[Any]]) -> None:
        self.rows = rows
        self._feature_labels = tuple(feature_labels)
        self._feature_columns = feature_columns
        self._segment_labels = tuple(segment_labels)
        self._segment_columns = segment_columns
        self.has_segment = bool(self._segment_labels)
        self._segments: list[dict[Any, Any]] | None = None
        # The block's shape (one value type per feature column) and the rows that differ from it.
        self._types, self._slow = _shape(feature_columns, feature_types, rows)
        self._epoch = -1  # the splitter's epoch the split below was planned in
        self._split: Callable[[int], Split | None] = _declined
        self._numeric_names: tuple[Any, ...] = ()
        self._categorical_names: tuple[Any, ...] = ()
        self._numeric: list[list[Any]] = []  # the plan's numeric columns (ints as floats) and categorical ones
        self._categorical: list[list[Any]] = []
        self._numeric_rows: Iterator[tuple[Any, ...]] = iter(())
        self._categorical_rows: Iterator[tuple[Any, ...]] = iter(())
        self._next = 0  # the row the two iterators above give next

    # --- the dict path: what log_prediction would have been given ------------------
    def row(self, i: int) -> tuple[Row, Row]:
        """(features, segment) of row ``i`` as dicts (None where the call named no such columns)."""
        features = (dict(zip(self._feature_labels, [column[i] for column in self._feature_columns]))
                    if self._feature_labels else None)
        return features, self.segment(i)

    def segment(self, i: int) -> Row:
        """Row ``i``'s segment dict (None without segment columns)."""
        if not self._segment_labels:
            return None
        if self._segments is None:  # all at once: map/zip keep the loop in C
            self._segments = list(map(dict, map(zip, repeat(self._segment_labels), zip(*self._segment_columns))))
        return self._segments[i]

    # --- the plain path ----------------------------------------------------------------
    def features(self, i: int, splitter: FeatureSplitter) -> Split | None:
        """Row ``i``'s features split as ``splitter.split_features`` splits its dict, or None (dict path)."""
        if i in self._slow:
            return None
        if self._epoch != splitter.epoch:  # first asked, or the splitter forgot its plans
            self._epoch = splitter.epoch
            self._plan(splitter, i)
        return self._split(i)

    def _plan(self, splitter: FeatureSplitter, i: int) -> None:
        """Plan the block's shape now, as the splitter would plan row ``i``'s dict, and split rows by it."""
        if not self._feature_labels:
            self._split = _no_features
            return
        plan = splitter.plan_for(self._feature_labels, self._types)
        if plan is None:
            self._split = _declined
            return
        categorical_set = set(plan.categorical_names)
        numeric_names: list[Any] = []
        numeric: list[list[Any]] = []
        categorical: list[list[Any]] = []
        slow = self._slow
        for label, column, t in zip(self._feature_labels, self._feature_columns, self._types):
            if label in categorical_set:
                categorical.append(column)
                continue
            numeric_names.append(label)
            if t is int:  # the plan writes ints as floats (doubles downstream)
                column = _floats(column, slow)
            elif slow:  # a slow row's value may be of any type: keep it out of the sums
                column = [value if type(value) is float else _NAN for value in column]
            numeric.append(column)
        self._numeric_names, self._numeric = tuple(numeric_names), numeric
        self._categorical_names, self._categorical = plan.categorical_names, categorical
        if SPLIT_ROW is not None:  # the C twin of _next_split: one call a row, no tuples
            self._split = partial(SPLIT_ROW, dict.fromkeys(self._numeric_names), numeric,
                                  dict.fromkeys(self._categorical_names), categorical)
        else:
            self._rewind(i)
            self._split = self._next_split

    def _rewind(self, i: int) -> None:
        self._numeric_rows = islice(zip(*self._numeric) if self._numeric else repeat(()), i, None)
        self._categorical_rows = islice(zip(*self._categorical) if self._categorical else repeat(()), i, None)
        self._next = i

    def _next_split(self, i: int) -> Split | None:
        """Row ``i`` split from the columns' row iterators.

        Rows are asked for in order (the queue keeps it), each once; each row's dicts are
        made when it is asked for and freed once rendered: making a slice's dicts at once kept
        thousands alive for the garbage collector to walk (measured 2x slower).
        """
        if i != self._next:
            if i < self._next:
                self._rewind(i)
            else:  # the rows in between went the dict path, or were not logged
                skip = i - self._next
                self._numeric_rows = islice(self._numeric_rows, skip, None)
                self._categorical_rows = islice(self._categorical_rows, skip, None)
        self._next = i + 1
        values: tuple[Any, ...] = next(self._numeric_rows)
        labels: tuple[Any, ...] = next(self._categorical_rows)
        if values:
            # The splitter declines a row whose numbers do not sum to a finite value (a NaN
            # or an inf among them): its careful path names them. The same sum, same order.
            total = sum(values)
            if total - total != 0.0:
                return None
            if labels:
                return {"numeric": dict(zip(self._numeric_names, values)),
                        "categorical": dict(zip(self._categorical_names, labels))}
            return {"numeric": dict(zip(self._numeric_names, values))}
        return {"categorical": dict(zip(self._categorical_names, labels))}


def _declined(_: int) -> None:
    """No plan covers the block's shape: every row takes the dict path."""
    return None


def _no_features(_: int) -> Split:
    return {}  # what the splitter gives for an empty dict


def _shape(columns: list[list[Any]], known: list[type | None], rows: int) -> tuple[tuple[type, ...], set[int]]:
    """Per column the type of most of its values (those a plan covers), and the rows with another one."""
    types: list[type] = []
    slow: set[int] = set()
    for column, known_type in zip(columns, known):
        if known_type is not None:
            types.append(known_type)
            continue
        kinds = set(map(type, column))  # about 4x faster than counting them
        if len(kinds) == 1:
            types.append(kinds.pop())
            continue
        plannable = [(count, t) for t, count in Counter(map(type, column)).items() if t in _PLANNABLE]
        if not plannable:
            types.append(type(None))  # no plan covers it: every row is slow
            slow.update(range(rows))
            continue
        _, common = max(plannable, key=lambda pair: pair[0])
        types.append(common)
        slow.update(i for i, value in enumerate(column) if type(value) is not common)
    return tuple(types), slow


def _floats(column: list[Any], slow: set[int] | frozenset[int]) -> list[float]:
    """An int column as floats; a value that is no int, or beyond the float range, becomes NaN (its row declines)."""
    if not slow:
        try:
            return list(map(float, column))
        except OverflowError:
            pass
    out = []
    for value in column:
        try:
            out.append(float(value) if type(value) is int else _NAN)
        except OverflowError:
            out.append(_NAN)
    return out
