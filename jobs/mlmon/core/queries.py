"""The questions the jobs ask a store, as values: a window of one model's events and what to count.

A store answers in sufficient statistics (``mlmon.core.stats``), never in rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Unseen categories named per field per window (the rest are counted together).
DEFAULT_MAX_UNSEEN = 20


@dataclass(frozen=True)
class WindowQuery:
    """Statistics wanted for one model and time window ``[start, end)`` of prediction events."""

    model: str
    start: datetime
    end: datetime
    version: str | None = None
    #: Numeric field (dotted contract name) -> inner bin edges.
    numeric: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    #: Categorical field -> the categories to count by name (the reference's).
    categorical: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_unseen: int = DEFAULT_MAX_UNSEEN
    #: Only events of this segment: (segment name, value), i.e. ``mlmon.segment.<name> == value``.
    segment: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware (UTC)")
        if not self.start < self.end:
            raise ValueError(f"empty window: start {self.start} is not before end {self.end}")


def flatten_source(source: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested document -> dotted keys, stopping at ``metric.details`` (a flattened field)."""
    out: dict[str, Any] = {}
    for k, v in source.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key != "metric.details":
            out.update(flatten_source(v, f"{key}."))
        else:
            out[key] = v
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys -> nested document (inverse of :func:`flatten_source`)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".") if key != "@timestamp" else [key]
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out
