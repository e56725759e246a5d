"""A metric's thresholds: :class:`Rule`, the one threshold type of every family. Pure: no I/O.

Levels are absolute, offsets from the reference's own value (``relative``), or
calibrated on the reference's windows (``calibrated_sd``: their mean -/+ k standard
deviations). Drift also gates a warning/alert on its field's test (``gated``);
a ``two_sided`` rule judges a signed value by its size.

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
    #: Calibrated levels: (warning, alert) standard deviations of the reference's windows from their mean.
    calibrated_sd: tuple[float, float] | None = None
    #: A signed value (mean_shift) drifts either way: its size, |value|, is compared with the levels.
    two_sided: bool = False

    def judged(self, value: float | None) -> float | None:
        """What the levels are compared with: the value, or its size for a two-sided rule."""
        return abs(value) if self.two_sided and value is not None else value

    def threshold(self, reference_value: float = 0.0) -> Threshold:
        base = reference_value if self.relative else 0.0
        return Threshold(
            warning=None if self.warning is None else base + self.warning,
            alert=None if self.alert is None else base + self.alert,
            direction=self.direction,
            source="reference_relative" if self.relative and self.source == "default" else self.source,
        )


    def calibrated(self, mean: float, sd: float) -> Threshold:
        """The calibrated levels, from the mean and standard deviation of the reference's windows."""
        if self.calibrated_sd is None:
            raise ValueError("not a calibrated rule")
        sign = -1.0 if self.direction == "below" else 1.0
        warning_sd, alert_sd = self.calibrated_sd
        return Threshold(mean + sign * warning_sd * sd, mean + sign * alert_sd * sd, self.direction, "calibrated")


NO_RULE = Rule(None, None)
