"""Prometheus duration strings (``1h``, ``2h59m59s``, ``1500ms``) from timedeltas."""

from __future__ import annotations

from datetime import timedelta

_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def prom_duration(value: timedelta) -> str:
    """``timedelta(hours=3) - timedelta(seconds=1)`` -> ``2h59m59s``; whole milliseconds only."""
    ms = round(value.total_seconds() * 1000)
    if ms <= 0 or abs(value.total_seconds() * 1000 - ms) > 1e-6:
        raise ValueError(f"{value!r}: Prometheus durations are positive whole milliseconds")
    parts = []
    for unit, size in _UNITS:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
