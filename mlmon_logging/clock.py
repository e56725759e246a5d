"""``@timestamp`` strings: ISO 8601, UTC, milliseconds, 'Z'.

``datetime.isoformat`` costs about a microsecond; the date-and-seconds part
changes once a second, so it is formatted once per second and reused.
"""

from __future__ import annotations

import time


class TimestampFormatter:
    """Safe to share between threads: the cache is one tuple, read and replaced whole."""

    __slots__ = ("_second", "_last")

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")
        # Under load many events share a millisecond: the last string is reused whole.
        self._last: tuple[int, str] = (-1, "")

    def __call__(self, ts_ns: int) -> str:
        ms = ts_ns // 1_000_000
        last_ms, text = self._last
        if ms == last_ms:
            return text
        second, millis = divmod(ms, 1000)
        cached_second, prefix = self._second
        if second != cached_second:
            # Not strftime("%Y"): glibc does not pad years before 1000 to four digits, which
            # ingest (and Elasticsearch) refuse.
            t = time.gmtime(second)
            prefix = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            self._second = (second, prefix)
        text = f"{prefix}.{millis:03d}Z"
        self._last = (ms, text)
        return text
