"""One threshold type for every family: absolute, relative and calibrated levels from :class:`Rule`."""

from __future__ import annotations

from typing import Literal

import pytest

from mlmon.config.explainability import EXPLAINABILITY_DEFAULTS, FAIRNESS_DEFAULTS
from mlmon.config.model import parse
from mlmon.metrics.rules import Rule
from mlmon.metrics.thresholds import DEFAULT_RULES


def test_absolute_and_relative_levels() -> None:
    assert Rule(0.9, 0.8, "below", source="config").threshold().status(0.85) == "warning"
    relative = Rule(-0.05, -0.1, "below", relative=True).threshold(0.9)
    assert (relative.warning, relative.alert, relative.source) == (pytest.approx(0.85), pytest.approx(0.8),
                                                                   "reference_relative")


@pytest.mark.parametrize(("direction", "warning", "alert"), [("below", 0.8, 0.7), ("above", 1.2, 1.3)])
def test_calibrated_levels_move_the_way_the_metric_gets_worse(direction: Literal["above", "below"], warning: float, alert: float) -> None:
    th = Rule(None, None, direction, calibrated_sd=(2.0, 3.0)).calibrated(1.0, 0.1)
    assert (th.warning, th.alert, th.source) == (pytest.approx(warning), pytest.approx(alert), "calibrated")
    with pytest.raises(ValueError):
        Rule(0.1, 0.2).calibrated(1.0, 0.1)


def test_every_family_configures_the_same_rule_type() -> None:
    config = parse({"models": {"m": {
        "performance": {"task": "classification", "reference": {"from": "2025-01-01T00:00:00Z",
                                                               "to": "2025-01-02T00:00:00Z"},
                        "thresholds": {"accuracy": {"warning": 0.9, "alert": 0.8},
                                       "f1": {"relative": True, "warning": -0.05},
                                       "roc_auc": {"calibrated": True}}},
        "fairness": {"attributes": ["region"]}, "explainability": {}}}})
    model = config.models[0]
    perf = model.sections["performance"]
    assert [r.mode for r in perf.thresholds] == ["absolute", "relative", "calibrated"]
    rules = [r.rule for r in perf.thresholds] + list(model.drift.policy.rules.values()) \
        + list(model.sections["fairness"].thresholds.values()) + list(EXPLAINABILITY_DEFAULTS.values()) \
        + list(FAIRNESS_DEFAULTS.values()) + list(DEFAULT_RULES.values())
    assert {type(r) for r in rules} == {Rule}
    assert perf.thresholds[2].rule.calibrated_sd == (2.0, 3.0)
