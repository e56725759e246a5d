"""The questions the jobs ask a store, as values: a window of one model's events and what to count.

A store answers in sufficient statistics (``mlmon.core.stats``), never in rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlmon.core.labels import OrphanFeedback

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


@dataclass(frozen=True)
class WindowBatch:
    """Aligned windows of one size asked together (a backfill, a look-back): a store answers every window
    as if it had been asked alone, in one pass over ``[start, end)`` instead of one per window.

    Windows are identified by their slot, the number of window sizes between the first start and theirs;
    gaps are allowed (a slot not asked for is not answered).
    """

    windows: tuple[tuple[datetime, datetime], ...]

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("a window batch needs at least one window")
        size = self.size
        if size <= timedelta(0):
            raise ValueError(f"empty window: {self.windows[0]}")
        first = self.windows[0][0]
        previous: datetime | None = None
        for start, end in self.windows:
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("window bounds must be timezone-aware (UTC)")
            if end - start != size or (start - first) % size:
                raise ValueError(f"window [{start}, {end}) is not aligned with [{first}, {first + size})")
            if previous is not None and start <= previous:
                raise ValueError("the windows of a batch must be sorted and distinct")
            previous = start

    @classmethod
    def of(cls, windows: Sequence[tuple[datetime, datetime]]) -> WindowBatch:
        return cls(tuple(windows))

    @property
    def size(self) -> timedelta:
        start, end = self.windows[0]
        return end - start

    @property
    def start(self) -> datetime:
        return self.windows[0][0]

    @property
    def end(self) -> datetime:
        return self.windows[-1][1]

    @property
    def slots(self) -> tuple[int, ...]:
        """Each window's slot: whole window sizes from the first start to its start."""
        return tuple((start - self.start) // self.size for start, _ in self.windows)

    def __len__(self) -> int:
        return len(self.windows)


@dataclass(frozen=True)
class WindowInputs:
    """What a window's label join reads, in brief: its predictions and a digest of every event the join and the
    orphan-feedback count would read (ids of the predictions, of their feedback and of the feedback stamped in the
    window, with its orphan flag). Equal digests mean equal statistics: events are immutable per ``event.id``."""

    predictions: int
    digest: str
    #: The window's orphan-feedback count, when the store counted it while reading the inputs (it reads the
    #: same events): the job need not count again. Not part of the digest.
    orphans: OrphanFeedback | None = None


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
