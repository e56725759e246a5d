"""What a report shows, as plain data (filled from a store by :mod:`mlmon.outputs.report.gather`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class NumericDistribution:
    """Reference vs current distribution of one numeric feature over shared bin edges."""

    feature: str
    edges: list[float]          # inner edges; counts have len(edges) + 1 bins (open outer bins)
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class CategoricalDistribution:
    feature: str
    reference: dict[str, float]
    current: dict[str, float]


@dataclass
class ModelReport:
    model: str
    version: str
    #: Metric documents as stored (``MetricDocument.to_source()`` shape).
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: Alert documents as stored, newest first.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: Latest window vs reference, for the features that drifted most.
    distributions: list[NumericDistribution | CategoricalDistribution] = field(default_factory=list)
    distribution_window: tuple[datetime, datetime] | None = None


@dataclass
class Report:
    title: str
    generated_at: datetime
    store: str
    models: list[ModelReport]
