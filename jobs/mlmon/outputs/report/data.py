"""What a report shows, as plain data (filled from a store by :mod:`mlmon.outputs.report.gather`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlmon.core.perf_stats import ClassificationStats, RegressionSums


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


Distribution = NumericDistribution | CategoricalDistribution


@dataclass(frozen=True)
class LabelledPeriod:
    """The label join of one period (the latest labelled window, or the performance reference):
    what confusion matrices, ROC / precision-recall curves and error histograms are drawn from."""

    name: str                   # "latest" or "reference"
    start: datetime
    end: datetime
    classification: ClassificationStats | None = None
    regression: RegressionSums | None = None


@dataclass
class ModelReport:
    model: str
    version: str
    #: Metric documents as stored (``MetricDocument.to_source()`` shape).
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: Alert documents as stored, newest first.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: Latest evaluated drift window vs reference, per feature (display name).
    distributions: list[Distribution] = field(default_factory=list)
    distribution_window: tuple[datetime, datetime] | None = None
    #: Performance over the labelled reference period (``metric|class`` -> value), when known.
    reference_metrics: dict[str, float] = field(default_factory=dict)
    #: Label joins behind the standard plots: latest labelled window and the reference period.
    labelled: list[LabelledPeriod] = field(default_factory=list)
    #: Why a part is missing (no reference profile, no config for the reference period, ...).
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    title: str
    generated_at: datetime
    store: str
    models: list[ModelReport]
    #: The range asked for (None: open); windows overlapping it are shown.
    start: datetime | None = None
    end: datetime | None = None
    #: Metric documents that matched but were left out by the read limit (stated in the header).
    metrics_left_out: int = 0
