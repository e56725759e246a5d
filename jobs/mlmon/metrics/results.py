"""The one result shape of metric math: :class:`MetricValue` objects gathered in a :class:`MetricSet`.

Every metric function of :mod:`mlmon.metrics` (drift, performance, CBPE,
fairness, attribution) returns these, and one ``MetricValue`` maps one to one
onto a metric document (metric, value, class / feature / group, n, details).

A value that cannot be computed is ``None`` with ``missing`` saying why:
``"insufficient_data"`` (too few observations: no labels yet, an empty group,
no values in one of the samples compared) or ``"undefined"`` (the data exist
but the metric has no value, e.g. ROC AUC when only one class occurs).
Values are always finite: NaN and infinities become ``None`` with a reason.

Metrics that belong to a statistical test (drift) also carry the test's
``p_value`` and name (``test``), and the size of the reference sample they
were compared with (``n_reference``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

Missing = Literal["", "insufficient_data", "undefined"]
Detail = float | int | str | bool | None | list[float] | list[str] | list[list[float]]


@dataclass(frozen=True)
class MetricValue:
    """One computed metric; the shape every metric function of this package returns."""

    metric: str
    value: float | None
    n: float                       # observations behind the value (its denominator's population; drift: current)
    class_label: str = ""          # a class, "macro", "weighted", "micro", or "" when not per class
    feature: str = ""
    group: str = ""                # value of the sensitive attribute / segment, "" for all traffic
    missing: Missing = ""          # why value is None
    note: str = ""                 # one human sentence when value is None or approximate
    details: Mapping[str, Detail] = field(default_factory=dict)
    p_value: float | None = None   # of the test this metric belongs to (drift: the field's KS / chi-square test)
    test: str = ""                 # which test p_value belongs to ("ks", "chi_square"), "" when none
    n_reference: float | None = None  # observations of the reference sample compared against, when there is one

    def __post_init__(self) -> None:
        # Plain floats out, whatever numpy scalars went in (documents and JSON want builtins).
        object.__setattr__(self, "n", float(self.n))
        if self.value is not None:
            object.__setattr__(self, "value", float(self.value))
        if self.p_value is not None:
            object.__setattr__(self, "p_value", float(self.p_value))
        if self.n_reference is not None:
            object.__setattr__(self, "n_reference", float(self.n_reference))
        if self.value is None and not self.missing:
            raise ValueError(f"{self.metric}: a None value needs a reason in 'missing'")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"{self.metric}: non-finite value {self.value}")


@dataclass(frozen=True)
class MetricSet:
    """The results of one metric function, in a stable order, with lookup by key."""

    values: tuple[MetricValue, ...]

    def __iter__(self) -> Iterator[MetricValue]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def get(self, metric: str, class_label: str = "", feature: str = "", group: str = "") -> MetricValue:
        for v in self.values:
            if (v.metric, v.class_label, v.feature, v.group) == (metric, class_label, feature, group):
                return v
        raise KeyError((metric, class_label, feature, group))

    def value(self, metric: str, class_label: str = "", feature: str = "", group: str = "") -> float | None:
        return self.get(metric, class_label, feature, group).value


def ratio(numerator: float, denominator: float, metric: str, n: float, *, class_label: str = "",
          group: str = "", feature: str = "", empty: Missing = "undefined", note: str = "",
          details: Mapping[str, Detail] | None = None) -> MetricValue:
    """``numerator / denominator`` as a MetricValue; None (``empty``) when the denominator is 0."""
    if denominator <= 0:
        return MetricValue(metric, None, n, class_label, feature, group, empty, note or "denominator is zero",
                           details or {})
    return MetricValue(metric, numerator / denominator, n, class_label, feature, group, details=details or {})
