"""prometheus/ as committed: generated from code, and valid for the real promtool and amtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mlmon.config.alerts import DEFAULT_RULES
from mlmon.stack.prometheus.__main__ import main
from mlmon.stack.prometheus.files import (ALERTMANAGER_FILE, CONFIG_FILE, PROMETHEUS_DIR, RULES_FILE, RULES_TEST_FILE,
                                          expected_files)
from mlmon.stack.prometheus.rules import alert_name, alert_names, rule_groups
from tests.prometheus.binaries import binary
from tests.support import REPO


def _run(*argv: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_committed_files_are_the_generated_ones() -> None:
    assert PROMETHEUS_DIR == REPO / "prometheus"
    for path, text in expected_files().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python -m mlmon.stack.prometheus"
    assert main(["--check"]) == 0


def test_every_default_alert_rule_of_the_jobs_has_a_prometheus_rule() -> None:
    names = set(alert_names(rule_groups()))
    assert {alert_name(r) for r in DEFAULT_RULES} <= names
    assert {"MlmonTrafficStopped", "MlmonPredictionVolumeDrop", "MlmonPredictionLatencyHigh",
            "MlmonPredictionErrorRatioHigh", "MlmonEventsDropped", "MlmonJobsStale", "MlmonExporterDown"} <= names


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    tests = yaml.safe_load(RULES_TEST_FILE.read_text(encoding="utf-8"))["tests"]
    fired: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
            # a case that expects alerts also proves the series it leaves out do not fire
            if check["exp_alerts"] and len(case["input_series"]) > len(check["exp_alerts"]):
                silent.add(check["alertname"])
    names = set(alert_names(rule_groups()))
    assert fired == names
    assert silent == names


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = binary("promtool")
    config = _run(promtool, "check", "config", CONFIG_FILE.name)
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _run(promtool, "check", "rules", str(RULES_FILE.relative_to(PROMETHEUS_DIR)))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = _run(binary("promtool"), "test", "rules", str(RULES_TEST_FILE.relative_to(PROMETHEUS_DIR)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old, new, alert", [
    ("2h59m59s999ms:1h", "3h:1h", "MlmonDataDrift"),  # a whole 3h subquery is 4 steps on Prometheus 2.x
    (") >= 2\n", ") >= 1\n", "MlmonDataDrift"),       # n of m
    ('window="latest", ', "", "MlmonDataDrift"),       # latest_final must not be read
    ("keep_firing_for: 15m", "keep_firing_for: 1m", "MlmonJobsStale"),
    ("> 0.05", "> 0.2", "MlmonPredictionErrorRatioHigh"),
])
def test_the_rule_unit_tests_catch_a_broken_rule(tmp_path: Path, old: str, new: str, alert: str) -> None:
    promtool = binary("promtool")
    rules = RULES_FILE.read_text(encoding="utf-8")
    assert old in rules
    (tmp_path / RULES_FILE.name).write_text(rules.replace(old, new), encoding="utf-8")
    # Only the cases of the broken rule, to keep the run short (promtool 2.42 has no filter of its own).
    tests = yaml.safe_load(RULES_TEST_FILE.read_text(encoding="utf-8"))
    tests["tests"] = [t for t in tests["tests"] if t["alert_rule_test"][0]["alertname"] == alert]
    assert tests["tests"]
    (tmp_path / RULES_TEST_FILE.name).write_text(yaml.safe_dump(tests), encoding="utf-8")
    assert _run(promtool, "test", "rules", RULES_TEST_FILE.name, cwd=tmp_path).returncode != 0, \
        f"promtool test rules passed with {old!r} -> {new!r}"
    (tmp_path / RULES_FILE.name).write_text(rules, encoding="utf-8")  # the same cases pass on the real rule
    result = _run(promtool, "test", "rules", RULES_TEST_FILE.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_config() -> None:
    result = _run(binary("amtool"), "check-config", ALERTMANAGER_FILE.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 receivers" in result.stdout


def test_rules_of_a_config_follow_its_models_windows_and_rules(tmp_path: Path) -> None:
    config = tmp_path / "mlmon.yaml"
    config.write_text("models:\n  churn:\n    window: 1d\n    alerts:\n      use_default_rules: false\n"
                      "      rules:\n        - {id: age-drift, families: [drift], features: [age, 'inc*'], "
                      "n_of_m: [1, 2], min_status: warning}\n  quiet:\n    alerts: {enabled: false}\n")
    out = tmp_path / "rules.yml"
    assert main(["--config", str(config), "--rules-out", str(out)]) == 0
    groups = yaml.safe_load(out.read_text(encoding="utf-8"))["groups"]
    (jobs,) = [g["rules"] for g in groups if g["name"] == "mlmon-jobs"]
    assert [r["alert"] for r in jobs] == ["MlmonAgeDrift"]
    assert jobs[0]["expr"] == ('count_over_time((last_over_time(mlmon_metric_severity{model="churn", window="latest", '
                               'family="drift", feature=~"age|inc.*"}[1d]) >= 2)[1d23h59m59s999ms:1d]) >= 1')
    assert jobs[0]["labels"]["severity"] == "warning"
    result = _run(binary("promtool"), "check", "rules", str(out))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mlmon.yaml"
    config.write_text("models:\n  churn:\n    window: often\n")
    assert main(["--config", str(config), "--rules-out", str(tmp_path / "r.yml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "mlmon.yaml:3" in err and "window" in err


def test_the_rules_read_only_gauges_the_exporter_exports() -> None:
    from mlmon.outputs.prometheus.series import GAUGES
    from mlmon.stack.prometheus.rules import EXPORTER_GAUGES_READ

    assert set(EXPORTER_GAUGES_READ) <= set(GAUGES)
