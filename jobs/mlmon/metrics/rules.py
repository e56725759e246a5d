"""A metric's thresholds: :class:`Rule` (warning / alert, direction, gating). Pure: no I/O.

Its own module so that the drift metric registry (which gives each metric its
default rule) and :mod:`mlmon.metrics.thresholds` (which decides statuses) can
both use it; ``Rule`` and ``NO_RULE`` are re-exported by ``thresholds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlmon.core.documents import Threshold


@dataclass(frozen=True)
class Rule:
    """Thresholds of one metric. ``relative``: thresholds are added to the reference's own value."""

    warning: float | None
    alert: float | None
    direction: Literal["above", "below"] = "above"
    relative: bool = False
    #: A warning/alert also needs the field's test to be significant (after correction).
    gated: bool = True
    source: str = "default"

    def threshold(self, reference_value: float = 0.0) -> Threshold:
        base = reference_value if self.relative else 0.0
        return Threshold(
            warning=None if self.warning is None else base + self.warning,
            alert=None if self.alert is None else base + self.alert,
            direction=self.direction,
            source="reference_relative" if self.relative and self.source == "default" else self.source,
        )


NO_RULE = Rule(None, None)
