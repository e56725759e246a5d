"""Errors of mlmon.yaml: one line each, with the file, the line, the key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmon.config.alerts import AlertsConfigError
from mlmon.config.model import ConfigError, load, parse


def _error(tmp_path: Path, text: str) -> str:
    p = tmp_path / "mlmon.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(p)
    return str(err.value).replace(str(p), "mlmon.yaml")


def test_an_error_names_the_line_of_the_key(tmp_path: Path) -> None:
    text = ("models:\n"
            "  churn:\n"
            "    window: 1h\n"
            "    drift:\n"
            "      thresholds:\n"
            "        psi: {warning: 0.3, alert: 0.1}\n")
    assert _error(tmp_path, text) == \
        "mlmon.yaml:6: models.churn.drift.thresholds.psi: alert (0.1) must not be below warning (0.3)"


def test_a_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    text = "models:\n  churn:\n    drift:\n      calibrate: 'yes'\n      min_rows: 0\n"
    message = _error(tmp_path, text)
    assert message.splitlines() == ["mlmon.yaml:4: models.churn.drift.calibrate: expected true or false, got 'yes'",
                                    "mlmon.yaml:5: models.churn.drift.min_rows: expected an integer >= 1, got 0"]


def test_a_missing_key_points_at_its_section(tmp_path: Path) -> None:
    text = "models:\n  churn:\n    window: 1h\n    performance:\n      min_labelled: 10\n"
    assert _error(tmp_path, text) == ("mlmon.yaml:4: models.churn.performance.task: required key is missing; "
                                      "expected classification or regression")


def test_an_unknown_key_lists_the_allowed_keys(tmp_path: Path) -> None:
    message = _error(tmp_path, "models:\n  churn:\n    window: 1h\n    drfit: {}\n")
    assert message == ("mlmon.yaml:4: models.churn.drfit: unknown key 'drfit'; did you mean 'drift'? allowed: "
                       "alerts, drift, explainability, fairness, lateness, performance, reference, version, window")
    nested = _error(tmp_path, "models:\n  churn:\n    alerts:\n      webhook: {url: 'http://x', retries: 3}\n")
    assert nested.startswith("mlmon.yaml:4: models.churn.alerts.webhook.retries: unknown key 'retries'; ")
    assert nested.endswith("allowed: expire_after, headers, max_attempts, max_retry_backoff, retry_backoff, round_timeout_seconds, timeout_seconds, url")


def test_duplicate_keys_are_rejected_with_both_lines(tmp_path: Path) -> None:
    text = "models:\n  churn:\n    window: 1h\n    lateness: 1m\n    window: 5m\n"
    assert _error(tmp_path, text) == ("mlmon.yaml:5: models.churn.window: duplicate key 'window' "
                                      "(first at line 3; YAML would keep only the last one)")
    twice = _error(tmp_path, "models:\n  a: {}\nstore: duckdb:///x\nmodels:\n  b: {}\n")
    assert twice.startswith("mlmon.yaml:4: models: duplicate key 'models' (first at line 1;")


def test_every_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    text = ("models:\n  churn:\n    window: soon\n    lateness: 0m\n  other:\n    version: [3]\n"
            "    fairness: {attributes: [region], max_groups: 1}\n")
    lines = _error(tmp_path, text).splitlines()
    assert lines == [
        "mlmon.yaml:3: models.churn.window: expected a positive duration like 30s, 5m, 1h or 1d, got 'soon'",
        "mlmon.yaml:4: models.churn.lateness: expected a positive duration like 30s, 5m, 1h or 1d, got '0m'",
        "mlmon.yaml:6: models.other.version: expected a string, got list [3]",
        "mlmon.yaml:7: models.other.fairness.max_groups: expected an integer >= 2, got 1",
    ]


def test_not_yaml_is_one_line_with_the_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "models:\n  churn: {window: 1h\n")
    assert message.startswith("mlmon.yaml:3: not valid YAML: ") and "\n" not in message


def test_without_a_file_errors_name_the_key_only() -> None:
    with pytest.raises(ConfigError, match=r"^mlmon.yaml: models.churn.window: expected a positive duration"):
        parse({"models": {"churn": {"window": 5}}}, "mlmon.yaml")


def test_alert_section_errors_keep_their_own_type(tmp_path: Path) -> None:
    p = tmp_path / "mlmon.yaml"
    p.write_text("models:\n  churn:\n    alerts:\n      enabled: 'no'\n", encoding="utf-8")
    with pytest.raises(AlertsConfigError, match=r":4: models\.churn\.alerts\.enabled: expected true or false"):
        load(p)
    assert issubclass(AlertsConfigError, ConfigError) and issubclass(ConfigError, ValueError)


def test_drift_metric_names_come_from_the_metric_registry() -> None:
    from mlmon.metrics.registry import DRIFT_METRIC_NAMES
    from mlmon.metrics.thresholds import DEFAULT_RULES

    assert set(DEFAULT_RULES) <= set(DRIFT_METRIC_NAMES)
    every = {m: {"warning": 1.0, "alert": 2.0} for m in DRIFT_METRIC_NAMES}
    policy = parse({"models": {"m": {"drift": {"thresholds": every}}}}).models[0].drift.policy
    assert {m for m in DRIFT_METRIC_NAMES if policy.rule(m, "x").alert == 2.0} == set(DRIFT_METRIC_NAMES)
    with pytest.raises(ConfigError) as err:
        parse({"models": {"m": {"drift": {"thresholds": {"kl": {}}}}}}, "f")
    assert str(err.value) == ("f: models.m.drift.thresholds.kl: unknown metric 'kl'; expected one of "
                              + ", ".join(sorted(DRIFT_METRIC_NAMES)))
