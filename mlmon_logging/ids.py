"""Time-ordered ids (UUIDv7, RFC 9562) cheap enough for the request path.

``uuid.uuid7`` only arrives in Python 3.14 and ``uuid.uuid4`` alone costs
several microseconds here, more than the caller's whole budget. So an id is
built from strings that mostly stay the same:

* bits 0-47: the Unix time in milliseconds, formatted once per millisecond;
* ``rand_a`` (12 bits) and the 14 bits after the variant: random per process;
* the last 48 bits: a per-process random start plus a counter (RFC 9562
  §6.2, "fixed bit-length dedicated counter"), so ids are unique within a
  process and increase within a millisecond.

Collisions across processes need the same millisecond, the same 26 random
middle bits and overlapping counter ranges. The random parts are drawn again
in a forked child, so the workers of a pre-fork server never share them.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time

_MASK_48 = (1 << 48) - 1


class _State:
    #: "-7xxx-yxxx-": version nibble, rand_a, variant bits and 14 random bits.
    middle: str = ""
    counter: itertools.count[int] = itertools.count()
    # (millisecond, its 8-4 hex prefix) of the last id; a tuple so one
    # attribute read gives a consistent pair even with concurrent writers.
    last_ms: tuple[int, str] = (-1, "")


def _reseed() -> None:
    rand_a = secrets.randbits(12)
    rand_b_high = (0b10 << 14) | secrets.randbits(14)
    _State.middle = f"-7{rand_a:03x}-{rand_b_high:04x}-"
    # Start at most half-way so the 48-bit counter never wraps in practice.
    _State.counter = itertools.count(secrets.randbits(47))
    _State.last_ms = (-1, "")


_reseed()
os.register_at_fork(after_in_child=_reseed)


def uuid7_from_ns(ts_ns: int) -> str:
    """A UUIDv7 string for a time given in nanoseconds since the epoch."""
    ms = ts_ns // 1_000_000
    cached_ms, prefix = _State.last_ms
    if ms != cached_ms:
        h = f"{ms & _MASK_48:012x}"
        prefix = f"{h[:8]}-{h[8:]}"
        _State.last_ms = (ms, prefix)
    # next() on itertools.count is atomic under the GIL: no lock needed.
    return f"{prefix}{_State.middle}{next(_State.counter) & _MASK_48:012x}"


def new_id() -> str:
    """A new time-ordered id, e.g. for a prediction logged through plain structlog."""
    return uuid7_from_ns(time.time_ns())
