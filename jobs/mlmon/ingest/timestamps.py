"""ISO 8601 timestamps as both engines read and write them.

Accepted: ``YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)`` - a zone is required,
since a zone-less time is ambiguous. Written back in UTC the way Logstash
serialises a Timestamp (Java's ``ISO_INSTANT``): no fraction when it is zero,
else 3, 6 or 9 digits. Hand-written rather than ``datetime.fromisoformat`` because
the Logstash ruby filter must produce byte-identical output and keep nanoseconds.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from datetime import datetime

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class Instant:
    """A UTC instant with nanosecond precision."""

    seconds: int  # since the Unix epoch
    nanos: int    # 0 <= nanos < 1e9

    @property
    def micros(self) -> int:
        return self.seconds * 1_000_000 + self.nanos // 1000

    def after(self, other: Instant, tolerance_seconds: int) -> bool:
        """True when self is later than ``other`` + tolerance."""
        return (self.seconds, self.nanos) > (other.seconds + tolerance_seconds, other.nanos)

    def iso(self) -> str:
        y, mo, d, h, mi, s = time.gmtime(self.seconds)[:6]
        n = self.nanos
        if n == 0:
            frac = ""
        elif n % 1_000_000 == 0:
            frac = f".{n // 1_000_000:03d}"
        elif n % 1000 == 0:
            frac = f".{n // 1000:06d}"
        else:
            frac = f".{n:09d}"
        return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z"

    @classmethod
    def now(cls) -> Instant:
        ns = time.time_ns()
        return cls(ns // 1_000_000_000, ns % 1_000_000_000)


def parse_iso(text: str) -> Instant | None:
    """The instant ``text`` names, or None when it is not an accepted timestamp."""
    m = _ISO.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if y < 1 or h > 23 or mi > 59 or s > 59:  # no leap seconds: Elasticsearch rejects them too
        return None
    try:
        datetime(y, mo, d)
    except ValueError:
        return None
    offset = 0
    if m.group(8) is None:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (1 if m.group(9) == "+" else -1)
    seconds = calendar.timegm((y, mo, d, h, mi, s)) - offset
    year_utc = time.gmtime(seconds).tm_year if seconds >= -62135596800 else 0
    if not 1 <= year_utc <= 9999:
        return None
    nanos = int((m.group(7) or "").ljust(9, "0"))
    return Instant(seconds, nanos)
