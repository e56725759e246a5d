"""The feature and segment columns of one slice of ``log_predictions``, shared by its rows.

Why: a batch call that builds one feature dict per row on the caller, only for the writer
to copy and split it into numeric and categorical dicts, costs more per event than
``log_prediction`` with ready dicts. Instead every queue tuple of a slice carries the same
:class:`RowBlock` in its features slot and its row number in its segment slot::

    (PREDICTION, ts_ns, prediction_id, block, prediction, score, latency_ms, row, scores)

and on the writer thread :meth:`RowBlock.features` gives the row's split features
(``{"numeric": ..., "categorical": ...}``) already as JSON (an ``orjson.Fragment``), rendered
for every row of the block at once from its columns by the plan
:class:`~mlmon_logging.plans.FeatureSplitter` holds for their shape: the very bytes orjson
writes for the dicts the splitter would make from the row's dict (:func:`render_rows` says how).

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
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Final

import orjson

from mlmon_logging.plans import JOIN_ROWS, FeatureSplitter

#: Value types a plan covers; any other goes the dict path.
_PLANNABLE: Final = (float, int, str)
_NAN: Final = float("nan")

Row = dict[Any, Any] | None


class RowBlock:
    """Feature and segment columns (lists of plain values, one per row) of one slice.

    ``feature_types``: per feature column, its value type where the column's dtype
    guarantees one (None: read the values). Built on the caller thread; read on the
    writer thread only (one writer per logger), so the parts made there need no lock.
    """

    __slots__ = ("rows", "has_segment", "_feature_labels", "_feature_columns", "_segment_labels", "_segment_columns",
                 "_types", "_slow", "_epoch", "_rendered", "_segments")

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
        # Per row its features' JSON, or None (the dict path); None for all until planned, or unplannable.
        self._rendered: list[bytes | None] | None = None

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
    def features(self, i: int, splitter: FeatureSplitter) -> orjson.Fragment | dict[str, Any] | None:
        """Row ``i``'s ``features`` object as JSON (what orjson writes for the dicts
        ``splitter.split_features`` makes of the row's dict), ``{}`` without feature columns,
        or None (the dict path)."""
        if i in self._slow:
            return None
        if self._epoch != splitter.epoch:  # first asked, or the splitter forgot its plans
            self._epoch = splitter.epoch
            self._plan(splitter)
        rendered = self._rendered
        if rendered is None:
            return {} if not self._feature_labels else None
        line = rendered[i]
        return None if line is None else orjson.Fragment(line)

    def _plan(self, splitter: FeatureSplitter) -> None:
        """Plan the block's shape now, as the splitter would plan a row's dict, and render every row by it."""
        self._rendered = None
        if not self._feature_labels:
            return
        plan = splitter.plan_for(self._feature_labels, self._types)
        if plan is None:
            return
        categorical_set = set(plan.categorical_names)
        numeric_names: list[Any] = []
        numeric: list[list[Any]] = []
        categorical: list[list[Any]] = []
        slow = self._slow
        for label, column, t in zip(self._feature_labels, self._feature_columns, self._types):
            if label in categorical_set:
                categorical.append(column if not slow else [v if type(v) is str else "" for v in column])
                continue
            numeric_names.append(label)
            if t is int:  # the plan writes ints as floats (doubles downstream)
                column = _floats(column, slow)
            elif slow:  # a slow row's value may be of any type: keep it out of the rendering
                column = [value if type(value) is float else _NAN for value in column]
            numeric.append(column)
        self._rendered = render_rows(numeric_names, numeric, list(plan.categorical_names), categorical, self.rows)


def render_rows(numeric_names: list[Any], numeric: list[list[float]], categorical_names: list[Any],
                categorical: list[list[str]], rows: int) -> list[bytes | None] | None:
    """Per row, the JSON orjson writes for ``{"numeric": {...}, "categorical": {...}}`` (empty groups left out)
    of these columns; None for a row with a non-finite number or a text orjson refuses (the dict path
    flags it); None for all when a name cannot be written.

    Why not a dict per row: turning 20 values a row into dicts and having orjson walk them was
    the largest cost of log_predictions' writer thread. orjson writes each column in one call
    (the same number and string formatting as inside a dict); the rows are then spliced from
    those arrays between the pre-rendered names, in C (``_speedups.join_rows``) or by cutting
    the arrays apart and one bytes ``%`` per row.
    """
    try:
        keys = [orjson.dumps(name) for name in [*numeric_names, *categorical_names]]
    except orjson.JSONEncodeError:
        return None
    # pieces[c] comes before column c's value, pieces[-1] after the last.
    pieces = [b"," + key + b":" for key in keys]
    if numeric_names:
        pieces[0] = b'{"numeric":{' + keys[0] + b":"
    if categorical_names:
        first = len(numeric_names)
        pieces[first] = (b'},"categorical":{' if numeric_names else b'{"categorical":{') + keys[first] + b":"
    pieces.append(b"}}")
    declined: set[int] = set()
    arrays = [_numbers(column, declined) for column in numeric]
    arrays += [_texts(column, declined) for column in categorical]
    rendered: list[bytes | None]
    if JOIN_ROWS is not None:
        rendered = list(JOIN_ROWS(pieces, arrays, rows))
    else:
        # Values go in through %b untouched (a text's quotes in the template), names with their % doubled.
        marks = [b"%b"] * len(numeric) + [b'"%b"'] * len(categorical) + [b""]
        template = b"".join(piece.replace(b"%", b"%%") + mark for piece, mark in zip(pieces, marks))
        parts = [array[1:-1].split(b",") for array in arrays[:len(numeric)]]  # a number holds no comma
        # Inside a JSON string every quote is escaped, so '","' only ever separates two of them.
        parts += [array[2:-2].split(b'","') for array in arrays[len(numeric):]]
        rendered = list(map(template.__mod__, zip(*parts)))
    for i in declined:
        rendered[i] = None
    return rendered


def _numbers(column: list[float], declined: set[int]) -> bytes:
    """The column as a JSON array; rows of NaN or inf (orjson's null) added to ``declined``."""
    array = orjson.dumps(column)
    if b"null" in array:
        declined.update(i for i, part in enumerate(array[1:-1].split(b",")) if part == b"null")
    return array


def _texts(column: list[str], declined: set[int]) -> bytes:
    """The column as a JSON array; rows orjson refuses (a lone surrogate) added to ``declined`` (written as "")."""
    try:
        return orjson.dumps(column)
    except orjson.JSONEncodeError:
        parts = []
        for i, text in enumerate(column):
            try:
                parts.append(orjson.dumps(text))
            except orjson.JSONEncodeError:
                declined.add(i)
                parts.append(b'""')
        return b"[" + b",".join(parts) + b"]"


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
