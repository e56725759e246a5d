"""Turning whatever a model service passes into contract values.

Runs on the emitter's background thread (or inside a structlog / logging
formatter chain), never on the request path. Every function here returns a
value orjson can serialise; none raises on odd input: a value that cannot be
represented becomes its ``repr`` and the caller flags it.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import numbers
from decimal import Decimal
from typing import Any, Final, Literal

Kind = Literal["numeric", "categorical"]

#: Longest repr kept for an object that cannot be serialised.
MAX_REPR_CHARS: Final = 256


class Missing:
    """Marker for a missing value (None, pandas NA/NaT): written as null, never flagged."""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid only
        return "MISSING"


MISSING: Final = Missing()


class NotFinite:
    """Marker for NaN / +-inf: written as null and flagged in ``mlmon.quality.null_fields``."""


NOT_FINITE: Final = NotFinite()


class Unrepresentable(str):
    """A repr standing in for a value that could not be serialised (flagged)."""

    __slots__ = ()


_MISSING_TYPE_NAMES: Final = frozenset({"NAType", "NaTType"})  # pandas, without importing it


def is_missing(value: Any) -> bool:
    return value is None or type(value).__name__ in _MISSING_TYPE_NAMES


def safe_repr(value: Any) -> Unrepresentable:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break logging
        text = f"<unrepresentable {type(value).__qualname__}>"
    return Unrepresentable(text[:MAX_REPR_CHARS])


def _unwrap(value: Any) -> Any:
    """numpy 0-d / size-1 arrays and numpy/pandas scalars -> plain Python values."""
    if isinstance(value, enum.Enum):
        return value.value
    size = getattr(value, "size", None)
    item = getattr(value, "item", None)
    if size == 1 and callable(item):  # numpy scalar, 0-d or one-element array
        try:
            return item()
        except Exception:
            return value
    return value


def to_number(value: Any) -> float | NotFinite | Missing | Unrepresentable:
    """A numeric value as a finite float; NaN/inf -> NOT_FINITE."""
    t = type(value)
    if t is float:  # fast paths first: `v - v == 0` is False for NaN and +-inf
        return value if value - value == 0.0 else NOT_FINITE
    if t is int and -2**53 < value < 2**53:
        return float(value)
    if is_missing(value):
        return MISSING
    value = _unwrap(value)
    if is_missing(value):
        return MISSING
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (numbers.Real, Decimal)):
        return safe_repr(value)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return NOT_FINITE
    except (TypeError, ValueError):
        return safe_repr(value)
    return number if math.isfinite(number) else NOT_FINITE


def to_label(value: Any) -> str | NotFinite | Missing | Unrepresentable:
    """A class label / categorical value as a string.

    bool -> "true"/"false"; integral floats lose their ".0" so that a label
    predicted as 1.0 and the ground truth 1 compare equal; datetimes become
    ISO 8601.
    """
    t = type(value)
    if t is str:
        return value
    if t is int:
        return str(value)
    if isinstance(value, str):
        return str(value)
    if is_missing(value):
        return MISSING
    value = _unwrap(value)
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, (float, Decimal, numbers.Real)):
        try:
            number = float(value)
        except (OverflowError, TypeError, ValueError):
            return NOT_FINITE
        if not math.isfinite(number):
            return NOT_FINITE
        return str(int(number)) if number.is_integer() and abs(number) < 2**63 else repr(number)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return _iso(value)
    return safe_repr(value)


def is_fractional(value: Any) -> bool:
    """Whether ``value`` is a finite number with a fractional part (3.7, not 3.0, 3, True or "3.7").

    Such a number given as a prediction without a score is a regression output, never a
    class label: the rule ModelLogger infers its task by when ``task=`` is not given.
    """
    if value is None or type(value) in (str, int, bool):
        return False
    value = _unwrap(value)
    if isinstance(value, (bool, str, numbers.Integral)) or not isinstance(value, (numbers.Real, Decimal)):
        return False
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return False
    return math.isfinite(number) and not number.is_integer()


def classify(value: Any) -> tuple[Kind, Any]:
    """The feature kind a value implies and its coerced value.

    Numbers -> numeric; str, bool, datetimes -> categorical; anything else ->
    categorical repr (an ``Unrepresentable``). Missing values return kind
    "numeric" with MISSING; callers decide the kind of a missing feature.
    """
    if is_missing(value):
        return "numeric", MISSING
    value = _unwrap(value)
    if isinstance(value, bool) or isinstance(value, (str, dt.datetime, dt.date, dt.time)):
        return "categorical", to_label(value)
    if isinstance(value, (numbers.Real, Decimal)):
        return "numeric", to_number(value)
    if is_missing(value):
        return "numeric", MISSING
    return "categorical", safe_repr(value)


def _iso(value: dt.datetime | dt.date | dt.time) -> str:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.isoformat()


#: Event times ingest accepts: years 1 to 9999 (UTC), in Unix seconds.
_FIRST_SECOND: Final = -62_135_596_800  # 0001-01-01T00:00:00Z
_END_SECOND: Final = 253_402_300_800    # 10000-01-01T00:00:00Z


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND: Final = dt.timedelta(microseconds=1)


def timestamp_ns(value: dt.datetime | float | int) -> int:
    """An event time given by the caller (aware datetime or Unix seconds) in ns, floored to the microsecond.

    Datetimes are converted exactly (integer arithmetic): through ``.timestamp()``'s float a
    time such as 23:16:57.366 came out as .365999 - in the millisecond before. A pandas
    ``Timestamp`` floors its nanoseconds (pandas' own ``.timestamp()`` rounds them up).

    Raises ValueError for a naive datetime or a time outside years 1-9999 (UTC), which
    ingest refuses - most often Unix milliseconds passed as seconds - and TypeError for
    anything else.
    """
    if isinstance(value, dt.datetime):
        micros = _datetime_micros(value)
        if not _FIRST_SECOND * 1_000_000 <= micros < _END_SECOND * 1_000_000:
            raise _outside(value)
        return micros * 1000
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value
    else:
        raise TypeError(f"timestamp must be an aware datetime or Unix seconds, not {type(value).__name__}")
    if not _FIRST_SECOND <= seconds < _END_SECOND:
        raise _outside(value)
    return int(seconds * 1_000_000) * 1000


def _outside(value: object) -> ValueError:
    return ValueError(f"timestamp {value!r} is outside the years 1-9999 (UTC) that ingest accepts: pass Unix "
                      "seconds (not milliseconds) or an aware datetime")


def _datetime_micros(value: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime, floored."""
    if type(value).__name__ == "Timestamp" and value.tzinfo is not None:  # pandas, without importing it
        try:
            # Its ns since the epoch (UTC); its own arithmetic costs ~10x the stdlib's.
            return int(value.value) // 1000  # type: ignore[attr-defined]
        except (AttributeError, OverflowError):  # outside pandas' ns range: the general way
            pass
    try:
        if value.tzinfo is not None:
            return (value - _EPOCH) // _MICROSECOND
    except TypeError:  # a tzinfo whose utcoffset() is None: naive all the same
        pass
    raise ValueError(f"naive datetime {value!r}: pass an aware datetime (mlmon works in UTC)")
