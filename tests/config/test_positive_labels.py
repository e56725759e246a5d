"""Class labels in mlmon.yaml read as the emitter logs them: booleans as "true"/"false", everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from mlmon.config.explainability import parse_fairness
from mlmon.config.model import ConfigError, Where
from mlmon.config.performance import parse_performance
from mlmon_logging.values import to_label

WHERE_PERF = Where("mlmon.yaml", "models.churn.performance")
WHERE_FAIR = Where("mlmon.yaml", "models.churn.fairness")


def _performance(label: Any) -> str:
    return parse_performance({"task": "classification", "positive_label": label}, WHERE_PERF).positive_label


def _fairness(label: Any) -> str:
    return parse_fairness({"attributes": ["country"], "positive_label": label}, WHERE_FAIR).positive_label


@pytest.mark.parametrize("label", [True, False, 1, 0, "yes", "1", 2.0])
def test_performance_and_fairness_read_a_label_the_way_the_emitter_logs_it(label: Any) -> None:
    assert _performance(label) == _fairness(label) == to_label(label)


def test_a_performance_threshold_for_a_boolean_class_is_accepted_too() -> None:
    cfg = parse_performance({"task": "classification", "positive_label": True,
                             "thresholds": {"f1": {"class": False, "warning": 0.8}}}, WHERE_PERF)
    assert cfg.positive_label == "true" and cfg.thresholds[0].class_label == "false"


@pytest.mark.parametrize("label", ["", None, [1], {"a": 1}, 0.5])
def test_what_is_not_a_label_is_one_clear_line_in_both_sections(label: Any) -> None:
    for parse in (_performance, _fairness):
        with pytest.raises(ConfigError) as err:
            parse(label)
        message = str(err.value)
        assert len(message.splitlines()) == 1 and "positive_label" in message and "positive class" in message, message
        assert "a string, an integer or true/false" in message


def test_fairness_groups_read_as_the_emitter_logs_segment_values() -> None:
    cfg = parse_fairness({"attributes": {"member": [True, 2.0, "DE"]}}, WHERE_FAIR)
    assert cfg.attributes["member"] == ("true", "2", "DE")
    with pytest.raises(ConfigError, match="group values"):
        parse_fairness({"attributes": {"member": [float("nan"), "DE"]}}, WHERE_FAIR)


def test_segment_values_read_as_the_emitter_logs_them() -> None:
    """A YAML `true` segment value is the logged "true" (str() would give "True", never matching)."""
    from mlmon.config.model import parse

    model = parse({"models": {"m": {"drift": {"segments": {"vip": [True, 2.0]}},
                                    "performance": {"task": "classification", "segments": {"vip": [True]}}}}}).models[0]
    assert model.drift.segments == {"vip": ("true", "2")}
    assert model.sections["performance"].segments == {"vip": ("true",)}
