"""Unit tests of the rules for ``promtool test rules``: every alert has a case that fires and one that does not.

Generated with the rules (``prometheus/rules/mlmon.rules.test.yml``) so they follow the rules'
n, m and durations. promtool compares annotations too, so the expected ones are rendered here
by :func:`render`, a small stand-in for the Go templates the rules use (labels, ``$value``,
``if``, ``printf "%.3g"``): a template the stand-in does not know is an error, not a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from mlmon.config.alerts import Rule
from mlmon.core.documents import SEVERITY
from mlmon.stack.prometheus.durations import prom_duration as d
from mlmon.stack.prometheus.rules import (DROPPED, DURATION_BUCKETS, ERRORS, EXPORTER_JOB, EXPORTER_LAST_REFRESH,
                                          JOB_LAST_RUN_OK, JOB_LAST_SUCCESS, PREDICTIONS, SERVICE_JOB,
                                          SEVERITY_GAUGE, ModelRules, ServiceThresholds, Timings, alert_name,
                                          exporter_rules, health_rules, service_rules, severity_rule)

_IF = re.compile(r"\{\{ if \$labels\.(\w+) \}\}(.*?)\{\{ end \}\}")
_LABEL = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
_PRINTF = re.compile(r'\{\{ printf "%\.3g" \$value \}\}')
_VALUE = re.compile(r"\{\{ \$value \}\}")


def render(template: str, labels: Mapping[str, str], value: float | None = None) -> str:
    text = _IF.sub(lambda m: m.group(2) if labels.get(m.group(1)) else "", template)
    text = _LABEL.sub(lambda m: labels.get(m.group(1), ""), text)
    if value is not None:
        text = _PRINTF.sub(f"{value:.3g}", text)
        text = _VALUE.sub(f"{value:g}", text)
    if "{{" in text:
        raise ValueError(f"cannot render {template!r}: extend rule_tests.render")
    return text


def _series(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _expected(rule: Mapping[str, Any], labels: Mapping[str, str], value: float | None = None) -> dict[str, Any]:
    # Prometheus drops empty labels: the exporter's class="" is no class label at all.
    all_labels = {k: v for k, v in {**labels, **rule["labels"]}.items() if v != ""}
    return {"exp_labels": all_labels,
            "exp_annotations": {k: render(v, all_labels, value) for k, v in rule["annotations"].items()}}


def _example(patterns: tuple[str, ...], default: str) -> str:
    """A name the rule's fnmatch patterns match."""
    return default if patterns == ("*",) else re.sub(r"\[!?([^\]]).*?\]", r"\1", patterns[0]).replace("*", "x") \
        .replace("?", "x")


def severity_test(rule: Rule, timings: Timings) -> dict[str, Any]:
    """Over m + 1 windows sampled 4 times each: ``bad`` ends with n bad windows and fires; ``calm`` has
    n - 1 bad windows and otherwise one level below the rule's: it does not; ``final`` is ``bad`` under
    window="latest_final", which the rules do not read. Evaluated half-way into the last window, and
    at its very start, where ``edge`` (bad in the window m windows back, then n - 1 bad windows) does not
    fire: a subquery spanning a whole m windows would see m + 1 steps there on Prometheus 2.x."""
    bad_level, below = SEVERITY[rule.min_status], SEVERITY[rule.min_status] - 1
    windows = rule.m + 1
    base = {"model": "m", "model_version": "1", "family": rule.families[0],
            "metric": _example(rule.metrics, "psi"), "feature": "", "class": "", "segment": ""}

    def values(levels: list[int]) -> str:
        return " ".join(f"{level}x3" for level in levels)  # "3x3" is 4 samples: one window

    bad = [0] * (windows - rule.n) + [bad_level] * rule.n
    calm = [below] * (windows - rule.n + 1) + [bad_level] * (rule.n - 1)
    edge = [bad_level] + [0] * (windows - rule.n) + [bad_level] * (rule.n - 1)
    rendered = severity_rule(rule, timings)
    series = {}
    for feature, window, levels in (("bad", "latest", bad), ("calm", "latest", calm), ("edge", "latest", edge),
                                    ("bad", "latest_final", bad)):
        labels = {**base, "feature": feature, "window": window}
        series[_series(SEVERITY_GAUGE, labels)] = values(levels)
    last_start = timings.window * (windows - 1)
    eval_at = last_start + timings.window / 2
    fired = [_expected(rendered, {"alertname": rendered["alert"], **base, "feature": "bad", "window": "latest"},
                       rule.n)]
    return {
        "name": f"{rendered['alert']}: {rule.n} of the last {rule.m} windows fire, {rule.n - 1} do not",
        "interval": d(timings.window / 4),
        "input_series": [{"series": k, "values": v} for k, v in series.items()],
        "alert_rule_test": [
            {"eval_time": d(eval_at), "alertname": rendered["alert"], "exp_alerts": fired},
            {"eval_time": d(last_start), "alertname": rendered["alert"], "exp_alerts": fired},
            # one window earlier only n - 1 bad windows were known
            {"eval_time": d(eval_at - timings.window), "alertname": rendered["alert"], "exp_alerts": []},
        ],
    }


def _one(rule: Mapping[str, Any], name: str, interval: timedelta, series: dict[str, str], eval_at: timedelta,
         fired: list[tuple[dict[str, str], float | None]], silent_at: timedelta | None = None) -> dict[str, Any]:
    tests = [{"eval_time": d(eval_at), "alertname": rule["alert"],
              "exp_alerts": [_expected(rule, {"alertname": rule["alert"], **labels}, value)
                             for labels, value in fired]}]
    if silent_at is not None:
        tests.append({"eval_time": d(silent_at), "alertname": rule["alert"], "exp_alerts": []})
    return {"name": name, "interval": d(interval), "input_series": [{"series": k, "values": v}
                                                                    for k, v in series.items()],
            "alert_rule_test": tests}


def service_tests(timings: Timings, thresholds: ServiceThresholds) -> list[dict[str, Any]]:
    """Cases written for the default timings and thresholds (the generator refuses others)."""
    if timings != Timings() or thresholds != ServiceThresholds():
        raise ValueError("the service rule tests are written for the default timings and thresholds")
    rules = {r["alert"]: r for r in service_rules(timings, thresholds) + exporter_rules(timings)}
    minute = timedelta(minutes=1)
    svc = {"job": SERVICE_JOB, "instance": "svc:8000"}

    def preds(model: str, version: str = "1") -> dict[str, str]:
        return {"model": model, "model_version": version, **svc}

    buckets = {}
    for model, in_le in (("slow", ("1", "+Inf")), ("fast", ("0.1", "0.5", "1", "+Inf"))):
        for le in ("0.1", "0.5", "1", "+Inf"):
            buckets[_series(DURATION_BUCKETS, {**preds(model), "le": le})] = \
                "0+10x40" if le in in_le else "0+0x40"
    return [
        _one(rules["MlmonTrafficStopped"], "MlmonTrafficStopped: flat for an hour fires, moving does not", minute,
             {_series(PREDICTIONS, preds("idle")): "0+10x60 600+0x120", _series(PREDICTIONS, preds("busy")): "0+10x180"},
             timedelta(hours=2, minutes=30), [({"model": "idle"}, None)], silent_at=timedelta(hours=1)),
        _one(rules["MlmonPredictionVolumeDrop"], "MlmonPredictionVolumeDrop: a tenth of the usual hour fires; steady "
             "or a baseline under the minimum does not", timedelta(minutes=5),
             {_series(PREDICTIONS, preds("dropped")): "0+100x312 31200+10x24",
              _series(PREDICTIONS, preds("steady")): "0+100x336",
              _series(PREDICTIONS, preds("quiet")): "0+0.5x312 156+0x24"},
             timedelta(hours=27, minutes=30), [({"model": "dropped"}, None)], silent_at=timedelta(hours=25)),
        _one(rules["MlmonPredictionLatencyHigh"], "MlmonPredictionLatencyHigh: p95 in (0.5, 1] s fires, under "
             "0.1 s does not", minute, buckets, timedelta(minutes=20),
             [({"model": "slow", "model_version": "1"}, 0.975)], silent_at=timedelta(minutes=9)),
        _one(rules["MlmonPredictionErrorRatioHigh"], "MlmonPredictionErrorRatioHigh: 10% fires, 1% does not", minute,
             {_series(PREDICTIONS, preds("flaky")): "0+10x30", _series(ERRORS, preds("flaky")): "0+1x30",
              _series(PREDICTIONS, preds("solid")): "0+100x30", _series(ERRORS, preds("solid")): "0+1x30"},
             timedelta(minutes=20), [({"model": "flaky", "model_version": "1"}, 0.1)],
             silent_at=timedelta(minutes=9)),
        _one(rules["MlmonEventsDropped"], "MlmonEventsDropped: a drop fires, a flat counter does not", minute,
             {_series(DROPPED, {**preds("lossy"), "reason": "queue_full"}): "0+0x10 5+0x20",
              _series(DROPPED, {**preds("whole"), "reason": "queue_full"}): "3+0x30"},
             timedelta(minutes=15), [({"model": "lossy", "model_version": "1", "reason": "queue_full"}, None)],
             silent_at=timedelta(minutes=30)),
        _one(rules["MlmonModelServiceDown"], "MlmonModelServiceDown: down for 5m fires, up does not", minute,
             {_series("up", svc): "0x10", _series("up", {"job": SERVICE_JOB, "instance": "other:8000"}): "1x10"},
             timedelta(minutes=6), [(svc, None)], silent_at=timedelta(minutes=4)),
        _one(rules["MlmonExporterDown"], "MlmonExporterDown: down for 5m fires, up does not", minute,
             {_series("up", {"job": EXPORTER_JOB, "instance": "exporter:9464"}): "1x5 0x10"},
             timedelta(minutes=11), [({"job": EXPORTER_JOB, "instance": "exporter:9464"}, None)],
             silent_at=timedelta(minutes=8)),
        _one(rules["MlmonExporterDown"], "MlmonExporterDown: no exporter target at all fires", minute,
             {_series("up", svc): "1x10"}, timedelta(minutes=6), [({"job": EXPORTER_JOB}, None)]),
        _one(rules["MlmonExporterStale"], "MlmonExporterStale: no refresh for 15m fires, refreshing does not", minute,
             {_series(EXPORTER_LAST_REFRESH, {"job": EXPORTER_JOB, "instance": "exporter:9464"}): "0+60x10 600x20"},
             timedelta(minutes=26), [({"job": EXPORTER_JOB, "instance": "exporter:9464"}, None)],
             silent_at=timedelta(minutes=20)),
    ]


def health_tests(timings: Timings) -> list[dict[str, Any]]:
    """Jobs stale: 3 windows without success fires, a job that never succeeded fires, a fresh one does not;
    through an exporter restart (series stale for two scrapes) it keeps firing (keep_firing_for),
    and it resolves once the data stays away longer than keep_firing_for."""
    if timings != Timings():
        raise ValueError("the health rule tests are written for the default timings")
    (rule,) = health_rules(timings)
    job = {"job": EXPORTER_JOB, "instance": "exporter:9464"}
    minute = timedelta(minutes=1)
    stuck, fresh, failing = ({"model": "m", "family": f, **job} for f in ("drift", "performance", "fairness"))
    # Unix time of each sample = its minute * 60: a fresh job succeeded "now".
    return [
        _one(rule, "MlmonJobsStale: no success for 3 windows, or never, fires; a fresh job does not", minute,
             {_series(JOB_LAST_SUCCESS, stuck): "0x240", _series(JOB_LAST_SUCCESS, fresh): "0+60x240",
              _series(JOB_LAST_RUN_OK, failing): "0x240", _series(JOB_LAST_RUN_OK, fresh): "1x240"},
             timedelta(hours=3, minutes=30), [(stuck, None), (failing, None)]),
        _one(rule, "MlmonJobsStale: keeps firing while the exporter restarts", minute,
             {_series(JOB_LAST_SUCCESS, stuck): "0x190 stale stale stale 0x20"},
             timedelta(hours=3, minutes=12), [(stuck, None)]),
        _one(rule, "MlmonJobsStale: resolves once the exporter is gone for longer than keep_firing_for", minute,
             {_series(JOB_LAST_SUCCESS, stuck): "0x190 stale"},
             timedelta(hours=3, minutes=10) + timings.keep_firing_for + 2 * minute, []),
    ]


def rule_tests(rule_file: str, models: ModelRules = ModelRules(None), timings: Timings = Timings(),
               thresholds: ServiceThresholds = ServiceThresholds()) -> dict[str, Any]:
    """The promtool test file for the rule file ``rule_file`` (a path relative to the test file)."""
    tests = [severity_test(r, models.timings) for r in models.rules]
    tests += service_tests(timings, thresholds) + health_tests(models.timings)
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


__all__ = ["alert_name", "render", "rule_tests"]
