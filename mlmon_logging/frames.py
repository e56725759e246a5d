"""Reading the table of a batch call (a pandas DataFrame or a dict of columns) a slice at a time.

Duck-typed: nothing here imports pandas or numpy (the emitter does not depend on them), it
uses what a DataFrame, a Series and a numpy array all offer (``columns``, ``iloc``,
slicing, ``tolist``). A slice of a column becomes a list of plain Python values
(``Series.tolist()`` gives ``int``/``float``/``str``), the very values a caller of
``log_prediction`` passes row by row, so the batch rows take the same fast path on the
writer thread and give the same events.

Every argument naming a column (:data:`ColumnRef`) takes either a column label of the
table or a sequence with one value per row (a numpy array, a Series, a list: e.g. the
output of ``estimator.predict``). A label the table does not have, or a sequence of the
wrong length, is a bad call: :class:`BatchCallError`, one line naming the argument and
the fix.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from mlmon_logging.values import _END_SECOND, _FIRST_SECOND, is_missing, timestamp_ns

#: A column label of the table, or a sequence of values (one per row).
ColumnRef = Any
#: numpy's int64 of NaT.
_NAT: Final = -(2**63)
_FIRST_MICROS: Final = _FIRST_SECOND * 1_000_000
_END_MICROS: Final = _END_SECOND * 1_000_000
#: Labels shown in an error message, at most.
_SHOWN_LABELS: Final = 12


class BatchCallError(ValueError):
    """A batch call that cannot be read at all (not a bad row): raised to the caller, one line."""


def _length(values: Any) -> int | None:
    try:
        return len(values)
    except TypeError:
        return None


def _slice(values: Any, start: int, stop: int) -> list[Any]:
    """``values[start:stop]`` as a list of plain Python values (numpy/pandas scalars unboxed).

    In a text column (numpy/pandas dtype kind ``O``: object, pandas' ``str``) a NaN is how
    pandas writes a missing value: it is read as None (left out, as a missing value is),
    not as a non-finite number (flagged, and turning a categorical feature numeric).
    """
    iloc = getattr(values, "iloc", None)
    part = iloc[start:stop] if iloc is not None else values[start:stop]
    tolist = getattr(part, "tolist", None)
    out = tolist() if callable(tolist) else list(part)
    if getattr(getattr(values, "dtype", None), "kind", "") == "O" and getattr(part, "hasnans", True):
        return [None if type(v) is float and v != v else v for v in out]
    return out


def _sliceable(values: Any) -> Any:
    """A numpy-typed pandas column as its numpy array (a view, no copy): slicing a Series costs
    about 20 us a call in pandas, slicing the array under one about 1 us."""
    if known_type(values) is not None and hasattr(values, "iloc") and hasattr(values, "to_numpy"):
        return values.to_numpy()
    return values


def known_type(values: Any) -> type | None:
    """The one type ``tolist()`` gives every value of a column whose numpy dtype fixes it, else None.

    A numpy float column holds only floats (NaN included), an int column only ints, a
    bool column only bools. Pandas' own dtypes (nullable ``Float64``/``Int64``, ``str``,
    ``category``) may hold missing markers among the values: None, their values are read.
    """
    dtype = getattr(values, "dtype", None)
    if dtype is None or not type(dtype).__module__.startswith("numpy"):
        return None
    return _KNOWN_TYPES.get(getattr(dtype, "kind", ""))


#: numpy dtype kind -> the type of every value its ``tolist()`` gives.
_KNOWN_TYPES: Final[dict[str, type]] = {"f": float, "i": int, "u": int, "b": bool}


class Table:
    """The columns of one batch call, read in slices. ``call`` names the method in error messages."""

    def __init__(self, data: Any, call: str) -> None:
        self.call = call
        if hasattr(data, "columns") and hasattr(data, "iloc"):  # a pandas DataFrame
            self.labels: list[Any] = list(data.columns)
            self.rows = len(data)
            self._columns: Mapping[Any, Any] | Any = data
        elif isinstance(data, Mapping):
            self.labels = list(data)
            lengths = {label: _length(values) for label, values in data.items()}
            unsized = [label for label, length in lengths.items() if length is None]
            if unsized:
                raise BatchCallError(f"mlmon: {call}: column {unsized[0]!r} has no length; pass each column as "
                                     "a list, a numpy array or a pandas Series")
            distinct = sorted({length for length in lengths.values() if length is not None})
            if len(distinct) > 1:
                raise BatchCallError(f"mlmon: {call}: the columns differ in length ({self._lengths(lengths)}); "
                                     "pass columns of one length, one value per row")
            self.rows = distinct[0] if distinct else 0
            self._columns = data
        else:
            raise BatchCallError(f"mlmon: {call} takes a pandas DataFrame or a dict of columns (name -> list or "
                                 f"array), not {type(data).__name__}")
        seen: set[Any] = set()
        for label in self.labels:
            if label in seen:
                raise BatchCallError(f"mlmon: {call}: the frame has two columns named {label!r}; rename one")
            seen.add(label)
        self._label_set = seen

    @staticmethod
    def _lengths(lengths: Mapping[Any, int | None]) -> str:
        return ", ".join(f"{label!r}: {length}" for label, length in list(lengths.items())[:_SHOWN_LABELS])

    def _shown_labels(self) -> str:
        shown = ", ".join(repr(label) for label in self.labels[:_SHOWN_LABELS])
        return shown + (", ..." if len(self.labels) > _SHOWN_LABELS else "")

    def is_label(self, ref: ColumnRef) -> bool:
        """Whether ``ref`` stands for a column label (rather than a sequence of values)."""
        return isinstance(ref, str) or _length(ref) is None

    def column(self, ref: ColumnRef, argument: str) -> Any:
        """The values ``ref`` stands for: the table's column of that label, or ``ref`` itself."""
        if self.is_label(ref):
            try:
                known = ref in self._label_set
            except TypeError:  # unhashable, and no sequence either
                known = False
            if not known:
                raise BatchCallError(f"mlmon: {self.call}: {argument}={ref!r} is not a column of the frame (its "
                                     f"columns: {self._shown_labels()}); pass a column name, or a sequence with "
                                     "one value per row")
            return _sliceable(self._columns[ref])
        ndim = getattr(ref, "ndim", 1)
        if ndim != 1:
            raise BatchCallError(f"mlmon: {self.call}: {argument} is a {ndim}-dimensional array; pass one value "
                                 "per row (a 1-d array, a list or a column name)")
        if len(ref) != self.rows:
            raise BatchCallError(f"mlmon: {self.call}: {argument} has {len(ref)} values for {self.rows} rows; pass "
                                 "one value per row")
        return ref

    def labels_of(self, refs: Sequence[Hashable] | None, argument: str) -> list[Any]:
        """Column labels given as a list (``features=``, ``segment=``), each checked."""
        if refs is None:
            return []
        if isinstance(refs, str):
            raise BatchCallError(f"mlmon: {self.call}: {argument}={refs!r} must be a list of column names, "
                                 f"e.g. {argument}=[{refs!r}]")
        labels = list(refs)
        for label in labels:
            self.column(label, argument)
        return labels

    def others(self, used: list[Any]) -> list[Any]:
        """The labels not in ``used``, in the table's order."""
        taken = set(used)
        return [label for label in self.labels if label not in taken]

    def values(self, column: Any, start: int, stop: int) -> list[Any]:
        return _slice(column, start, stop)


class Times:
    """A timestamp column read as event times in ns; a row without a usable time is None.

    A tz-aware pandas datetime column is converted in one vectorised step (exact integer
    microseconds, as :func:`mlmon_logging.values.timestamp_ns` gives for each value); other
    columns (Unix seconds, aware ``datetime`` objects) value by value. A column of naive
    datetimes is a bad call (:class:`BatchCallError`): every row would be refused.
    """

    def __init__(self, column: Any, argument: str, call: str) -> None:
        dtype = getattr(column, "dtype", None)
        datetimes = getattr(dtype, "kind", "") == "M"
        if datetimes and getattr(dtype, "tz", None) is None:
            raise BatchCallError(f"mlmon: {call}: the {argument} column holds naive datetimes ({dtype}); make them "
                                 "aware, e.g. frame[col].dt.tz_localize('UTC') (mlmon works in UTC)")
        self._column = column
        self._vectorised = datetimes and hasattr(column, "iloc")
        #: Why the last slice had rows without a usable time (one cause per kind), for the report.
        self.causes: list[str] = []

    def slice(self, start: int, stop: int) -> list[int | None]:
        self.causes = []
        if self._vectorised:
            micros = self._column.iloc[start:stop].to_numpy(dtype="datetime64[us]").astype("int64").tolist()
            out: list[int | None] = [m * 1000 if _FIRST_MICROS <= m < _END_MICROS else None for m in micros]
            if None in out:
                missing = sum(m == _NAT for m in micros)
                if missing:
                    self.causes.append("no timestamp (NaT)")
                if missing < out.count(None):
                    self.causes.append("a timestamp outside the years 1-9999 (UTC) that ingest accepts")
            return out
        return [self._one(value) for value in _slice(self._column, start, stop)]

    def _one(self, value: Any) -> int | None:
        if is_missing(value) or (type(value) is float and value != value):  # None, NaT, NA, NaN
            self._cause("no timestamp (None, NaN or NaT)")
            return None
        try:
            return timestamp_ns(value)
        except (TypeError, ValueError) as exc:
            self._cause(f"an unusable timestamp ({exc})")
            return None

    def _cause(self, cause: str) -> None:
        if cause not in self.causes:
            self.causes.append(cause)
