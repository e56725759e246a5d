"""Time-ordered ids (UUIDv7, RFC 9562) cheap enough for the request path.

``uuid.uuid7`` only arrives in Python 3.14, ``uuid.uuid4`` alone costs
several microseconds here and formatting 128 bits per call about one, more
than the caller's budget allows. So an id is assembled from strings that
mostly stay the same (RFC 9562 §6.2 method 1, "fixed bit-length dedicated
counter"):

* bits 0-47: the Unix time in milliseconds;
* ``rand_a`` (12 bits) and the 14 bits after the variant: random per process;
* the last 48 bits: a per-process random start plus a counter, so ids are
  unique within a process and increase within a millisecond.

The id is ``head + tail``: ``head`` (time, random bits, the counter's high
32 bits) is formatted once per millisecond or per 65,536 ids, ``tail`` (the
counter's low 16 bits) comes from a precomputed table. Per id that is one
``next()`` on an ``itertools.count`` (atomic under the GIL), two compares,
a table lookup and one concatenation.

Collisions across processes need the same millisecond, the same 26 random
middle bits and overlapping counter ranges. The random parts are drawn again
in a forked child, so the workers of a pre-fork server never share them.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from typing import Final

_MASK_48: Final = (1 << 48) - 1
_LOW_BITS: Final = 16
_LOW_MASK: Final = (1 << _LOW_BITS) - 1
#: The last 4 hex digits of every counter value.
_TAILS: Final = tuple(f"{i:04x}" for i in range(1 << _LOW_BITS))

#: "-7xxx-yxxx-": version nibble, rand_a, variant bits and 14 random bits.
_middle = ""
_counter = itertools.count()
# (millisecond, counter >> 16, head string) of the last id: one tuple so a
# single read gives a consistent triple even with concurrent writers.
_head: tuple[int, int, str] = (-1, -1, "")


def _reseed() -> None:
    global _middle, _counter, _head
    rand_a = secrets.randbits(12)
    rand_b_high = (0b10 << 14) | secrets.randbits(14)
    _middle = f"-7{rand_a:03x}-{rand_b_high:04x}-"
    # Start at most half-way so the 48-bit counter never wraps in practice.
    _counter = itertools.count(secrets.randbits(47))
    _head = (-1, -1, "")


_reseed()
os.register_at_fork(after_in_child=_reseed)


def uuid7_from_ns(ts_ns: int) -> str:
    """A UUIDv7 string for a time given in nanoseconds since the epoch."""
    global _head
    n = next(_counter)
    ms = ts_ns // 1_000_000
    high = n >> _LOW_BITS
    cached_ms, cached_high, head = _head
    if ms != cached_ms or high != cached_high:
        t = f"{ms & _MASK_48:012x}"
        head = f"{t[:8]}-{t[8:]}{_middle}{high & 0xFFFFFFFF:08x}"
        _head = (ms, high, head)
    return head + _TAILS[n & _LOW_MASK]


def new_id() -> str:
    """A new time-ordered id, e.g. for a prediction logged through plain structlog."""
    return uuid7_from_ns(time.time_ns())
