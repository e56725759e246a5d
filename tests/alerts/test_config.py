"""The ``alerts:`` section of mlmon.yaml: defaults, user rules, errors naming file and key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from mlmon.core.alerts import SeriesKey
from mlmon.config.alerts import DEFAULT_RULES, AlertsConfigError, parse_alerts_config

SRC = "/etc/mlmon/mlmon.yaml"
KEY = "models.churn.alerts"


def parse(text: str) -> Any:
    return parse_alerts_config(yaml.safe_load(text), source=SRC, key=KEY)


def test_missing_section_gives_defaults_that_do_not_cry_wolf() -> None:
    config = parse_alerts_config(None, source=SRC)
    assert config.enabled and config.webhook is None and config.rules == DEFAULT_RULES
    for rule in config.rules:
        assert rule.min_status == "alert", rule.id          # warnings alone never notify
        assert rule.n >= 2, rule.id                          # one bad window never fires
        assert rule.renotify_every == timedelta(hours=24)
    covered = {fam for r in config.rules for fam in r.families}
    assert covered == {"drift", "data_quality", "prediction_drift", "performance", "estimated_performance",
                       "label_coverage", "explainability", "fairness", "volume"}


def test_user_rules_come_first_and_replace_defaults_with_the_same_id() -> None:
    config = parse("""
renotify_every: 6h
webhook: {url: "http://127.0.0.1:9/hook", max_attempts: 2, headers: {Authorization: Bearer x}}
rules:
  - id: key-features
    families: [drift]
    features: [age, "inc*"]
    min_status: warning
    n_of_m: [1, 1]
    renotify_every: never
  - id: performance
    families: [performance]
    n_of_m: [3, 5]
    notify_recovery: false
""")
    ids = [r.id for r in config.rules]
    assert ids[:2] == ["key-features", "performance"] and ids.count("performance") == 1
    assert config.rule_for(SeriesKey("churn", "3", "drift", "psi", "income")).id == "key-features"
    assert config.rule_for(SeriesKey("churn", "3", "drift", "psi", "plan")).id == "drift"
    perf = config.rules[1]
    assert (perf.n, perf.m, perf.notify_recovery, perf.renotify_every) == (3, 5, False, timedelta(hours=6))
    assert config.rules[0].renotify_every is None
    assert config.webhook is not None and config.webhook.max_attempts == 2
    assert dict(config.webhook.headers) == {"Authorization": "Bearer x"}


def test_defaults_can_be_switched_off() -> None:
    config = parse("use_default_rules: false\nrules: [{id: only, families: [volume]}]")
    assert [r.id for r in config.rules] == ["only"]


@pytest.mark.parametrize(("text", "key", "message"), [
    ("colour: red", f"{KEY}.colour", "unknown key"),
    ("rules: [{id: x, families: [drfit]}]", f"{KEY}.rules[0].families[0]", "unknown family 'drfit'"),
    ("rules: [{families: [drift]}]", f"{KEY}.rules[0].id", "required"),
    ("rules: [{id: x, families: [drift], n_of_m: [3, 2]}]", f"{KEY}.rules[0].n_of_m", "1 <= n <= m"),
    ("rules: [{id: x, families: [drift], n_of_m: 2}]", f"{KEY}.rules[0].n_of_m", "expected a list"),
    ("rules: [{id: x, families: [drift], min_status: ok}]", f"{KEY}.rules[0].min_status", "'warning' or 'alert'"),
    ("rules: [{id: x, families: [drift]}, {id: x, families: [volume]}]", f"{KEY}.rules[1].id", "duplicate"),
    ("renotify_every: 1 week", f"{KEY}.renotify_every", "positive duration"),
    ("webhook: {url: ftp://x}", f"{KEY}.webhook.url", "http(s) URL"),
    ("webhook: {url: 'http://x', max_attempts: 0}", f"{KEY}.webhook.max_attempts", "[1, 10]"),
    ("enabled: 'yes'", f"{KEY}.enabled", "true or false"),
    ("- a list", KEY, "expected a mapping"),
])
def test_errors_name_the_file_and_the_key(text: str, key: str, message: str) -> None:
    with pytest.raises(AlertsConfigError) as err:
        parse(text)
    assert str(err.value).startswith(f"{SRC}: {key}: ")
    assert message in str(err.value)


def test_the_section_is_part_of_mlmon_yaml_loading(tmp_path: Any) -> None:
    from mlmon.config import model as mlmon_config

    good = tmp_path / "mlmon.yaml"
    good.write_text("models:\n  churn:\n    alerts:\n      renotify_every: 12h\n")
    model = next(m for m in mlmon_config.load(good).models if m.name == "churn")
    assert all(r.renotify_every == timedelta(hours=12) for r in model.sections["alerts"].rules)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  churn:\n    alerts:\n      rules: [{id: x, families: [drfit]}]\n")
    with pytest.raises(AlertsConfigError,
                       match=rf"^{bad}:4: models\.churn\.alerts\.rules\[0\]\.families\[0\]: unknown family 'drfit'"):
        mlmon_config.load(bad)
