"""Event times from datetimes are exact: no float rounding moves an event to another millisecond.

Batch calls read a datetime column in one vectorised step (integer microseconds); the
per-value path (``log_prediction(timestamp=...)``) must give the same time, to the
microsecond, or the same row logged both ways would land in different milliseconds.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mlmon_logging.values import timestamp_ns

UTC = dt.timezone.utc


@pytest.mark.parametrize("when, expected_ns", [
    # .timestamp() * 1e6 truncated gave ...365999000 / ...136999000: the millisecond before.
    (dt.datetime(2005, 1, 30, 23, 16, 57, 366000, tzinfo=UTC), 1_107_127_017_366_000_000),
    (dt.datetime(1987, 7, 16, 16, 39, 4, 137000, tzinfo=UTC), 553_451_944_137_000_000),
    # Before 1970 a time floors to its microsecond, as after it (truncation went up).
    (dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), -1000),
])
def test_aware_datetime_is_exact_to_the_microsecond(when: dt.datetime, expected_ns: int) -> None:
    assert timestamp_ns(when) == expected_ns


def test_pandas_timestamp_floors_its_nanoseconds() -> None:
    # pandas rounds .timestamp() to the microsecond: .001999999 became .002, the next millisecond.
    when = pd.Timestamp("2026-11-02 10:00:00.001999999", tz="Europe/Berlin")
    assert timestamp_ns(when) == 1_793_610_000_001_999_000


def test_offset_zone_is_honoured() -> None:
    when = dt.datetime(2026, 11, 2, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert timestamp_ns(when) == timestamp_ns(dt.datetime(2026, 11, 2, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize("bad, error", [
    (dt.datetime(2026, 11, 2), ValueError),                         # naive
    (pd.Timestamp("2026-11-02"), ValueError),                       # naive pandas
    (dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=2))), ValueError),  # year 10000 in UTC
    (1_793_610_000_000, ValueError),                                # milliseconds passed as seconds
    (float("nan"), TypeError),
    ("2026-11-02", TypeError),
])
def test_unusable_times_still_raise(bad: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        timestamp_ns(bad)  # type: ignore[arg-type]
