"""The Store protocol: what the jobs ask of Elasticsearch or DuckDB.

A store answers in sufficient statistics (histograms over given edges,
category counts, missing counts, row counts, min/max), never in rows, so what
leaves the store per window depends on features and bins, not on traffic.
It also keeps the jobs' documents: metric documents (upserts by id), reference
profiles, and checkpoints of finished windows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlmon.core.documents import MetricDocument
from mlmon.core.reference import ReferenceProfile
from mlmon.core.stats import WindowStatistics

if TYPE_CHECKING:  # the other jobs' query interfaces; they import this module
    from mlmon.stores.duckdb.alerts import AlertStore
    from mlmon.jobs.explainability import ExplainBackend
    from mlmon.core.labels import LabelledStore

#: Unseen categories named per field per window (the rest are counted together).
DEFAULT_MAX_UNSEEN = 20


class StoreError(RuntimeError):
    """The store failed after retries (unavailable, rejected writes, bad answer); the message says what."""


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


@runtime_checkable
class Store(Protocol):
    def window_statistics(self, query: WindowQuery) -> WindowStatistics:
        """Row count and per-field statistics of the window (fields absent from the store count as missing)."""

    def quantiles(self, model: str, start: datetime, end: datetime, fields: Sequence[str],
                  levels: Sequence[float], version: str | None = None) -> dict[str, list[float]]:
        """Quantiles of numeric fields over a window (to build a reference profile from production)."""

    def fields(self, model: str, version: str | None = None) -> list[str]:
        """Feature and prediction fields present in the store for the model."""

    def write_metrics(self, docs: Sequence[MetricDocument]) -> None:
        """Upsert by ``doc.id``; raises StoreError unless every document was written."""

    def read_metrics(self, model: str | None = None, limit: int = 1000,
                     start: datetime | None = None, end: datetime | None = None) -> list[dict[str, Any]]:
        """Stored metric documents (``to_source()`` shape), newest window first."""

    def put_reference(self, profile: ReferenceProfile) -> str:
        """Store a profile (idempotent: its id is content-addressed); returns its id."""

    def get_reference(self, model: str, version: str | None = None,
                      reference_id: str | None = None) -> ReferenceProfile | None:
        """A profile by id, or the newest for model (and version)."""

    def list_references(self, model: str | None = None) -> list[dict[str, Any]]:
        """Header fields of the stored profiles, newest first."""

    def get_checkpoint(self, key: str) -> datetime | None:
        """End of the last window finished under ``key``."""

    def set_checkpoint(self, key: str, window_end: datetime) -> None: ...

    # The other jobs' queries over the same connection or client (never a second one).
    def labels(self) -> LabelledStore: ...

    def explain_queries(self) -> ExplainBackend: ...

    def alert_store(self) -> AlertStore: ...

    def close(self) -> None: ...


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
