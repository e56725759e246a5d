"""Window alignment shared by every job: windows are aligned to the epoch.

An hourly window is [10:00, 11:00) whoever computes it, so rounds, restarts,
backfills and late-label recomputations produce the same windows and the
same metric document ids.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def floor_time(t: datetime, size: timedelta) -> datetime:
    """Start of the window of length ``size`` that contains ``t``."""
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t!r}: pass an aware (UTC) time")
    return EPOCH + ((t - EPOCH) // size) * size
