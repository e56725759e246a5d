"""Consistent sampling: keep a prediction, its feedback and its explanation together.

The decision is a pure function of the prediction id, so any process that
logs feedback for a prediction (a label service, a batch job) reaches the
same decision without coordination. CRC-32 is not a cryptographic hash; it
only needs to spread ids evenly, which it does within a few percent for
UUIDv7 and for sequential ids like ``req-1``, ``req-2`` (see the tests), at a
quarter of blake2b's cost on the request path. Other emitters must use the
same rule: keep iff ``crc32(utf8(id)) < rate * 2**32``.
"""

from __future__ import annotations

import zlib


def check_rate(rate: float) -> float:
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 < rate <= 1.0:
        raise ValueError(f"sample_rate must be a number in (0, 1], got {rate!r}")
    return float(rate)


def keep(prediction_id: object, rate: float) -> bool:
    """True if events of this prediction are logged at this sample rate."""
    if rate >= 1.0:
        return True
    return zlib.crc32(str(prediction_id).encode("utf-8", "surrogatepass")) < rate * 4294967296.0
