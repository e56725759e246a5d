"""Prometheus alerting rules, as readable code (``prometheus/rules/mlmon.rules.yml`` is generated from here).

Three groups:

* ``mlmon-jobs``: the alert rules of mlmon.yaml (:data:`mlmon.config.alerts.DEFAULT_RULES` when no
  config is given), "bad in n of the last m windows" over the one severity gauge
  ``mlmon_metric_severity{window="latest"}``, as the jobs' own engine and the Kibana rules judge them.
  Prometheus holds one value per series at a time (the newest window), so the m windows are m
  steps of one window length in a subquery: ``last_over_time(severity[window])`` at each step is
  the newest window known then. The subquery spans ``m * window - 1ms``: on Prometheus 2.x both
  ends of a range are inclusive, so ``[3h:1h]`` holds 4 steps when the evaluation falls on the hour.
  ``keep_firing_for`` (Prometheus >= 2.42) keeps an alert firing while the exporter restarts (its
  series go stale for a scrape or two), so a restart neither resolves nor re-sends it.
* ``mlmon-service``: the model service's request metrics (``mlmon_logging``): traffic stopped,
  volume drop, p95 latency, error ratio, events dropped by the emitter, the service down.
* ``mlmon-health``: the jobs stale (no success for 3 windows, or never), the exporter down or stale.

The local engine says "recovered" after m-n+1 ok windows; here an alert resolves once fewer than
n of the last m windows are bad (and ``keep_firing_for`` has passed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mlmon.config.alerts import DEFAULT_RULES, Rule
from mlmon.config.model import Config
from mlmon.core.documents import SEVERITY
from mlmon.outputs.prometheus.series import SEVERITY_GAUGE
from mlmon.stack.alert_assets import VOLUME_DROP_RATIO, VOLUME_MIN_BASELINE
from mlmon.stack.prometheus.durations import prom_duration

#: Scrape job names of prometheus.yml (the ``job`` label Prometheus adds).
EXPORTER_JOB = "mlmon-exporter"
SERVICE_JOB = "mlmon-model-service"

PREDICTIONS = "mlmon_predictions_total"
DURATION_BUCKETS = "mlmon_prediction_duration_seconds_bucket"
ERRORS = "mlmon_prediction_errors_total"
DROPPED = "mlmon_events_dropped_total"
JOB_LAST_SUCCESS = "mlmon_job_last_success_timestamp_seconds"
JOB_LAST_RUN_OK = "mlmon_job_last_run_ok"
EXPORTER_LAST_REFRESH = "mlmon_exporter_last_refresh_success_timestamp_seconds"
#: The exporter's gauges the rules read (tests check they are among what it exports).
EXPORTER_GAUGES_READ = (SEVERITY_GAUGE, JOB_LAST_SUCCESS, JOB_LAST_RUN_OK)

#: Alertmanager severities: a rule that counts only mlmon's ``alert`` status pages, ``warning`` warns.
CRITICAL, WARNING = "critical", "warning"


@dataclass(frozen=True)
class Timings:
    """Every duration of the rules; the tests run the same rules with seconds instead of hours."""

    #: Length of a monitored window: the step of the n-of-m subquery (the model's ``window``).
    window: timedelta = timedelta(hours=1)
    #: How long an exporter-fed alert outlives its condition: longer than an exporter restart.
    keep_firing_for: timedelta = timedelta(minutes=15)
    #: The jobs are stale after this long without a successful run (default: 3 windows).
    jobs_stale_after: timedelta | None = None
    rate_range: timedelta = timedelta(minutes=5)
    service_for: timedelta = timedelta(minutes=10)
    traffic_range: timedelta = timedelta(hours=1)
    traffic_for: timedelta = timedelta(minutes=15)
    volume_baseline: timedelta = timedelta(days=1)
    dropped_range: timedelta = timedelta(minutes=15)
    down_for: timedelta = timedelta(minutes=5)
    exporter_stale_after: timedelta = timedelta(minutes=15)

    @property
    def stale_after(self) -> timedelta:
        return self.jobs_stale_after or 3 * self.window


@dataclass(frozen=True)
class ServiceThresholds:
    latency_quantile: float = 0.95
    latency_seconds: float = 0.5
    error_ratio: float = 0.05


@dataclass(frozen=True)
class ModelRules:
    """The severity rules of one model (or of every model when ``model`` is None) and its window."""

    model: str | None
    rules: tuple[Rule, ...] = DEFAULT_RULES
    timings: Timings = field(default_factory=Timings)


def d(value: timedelta) -> str:
    return prom_duration(value)


def alert_name(rule: Rule) -> str:
    """``Data drift`` -> ``MlmonDataDrift``; ``drift-critical`` -> ``MlmonDriftCritical``."""
    words = (rule.name or rule.id).replace("-", " ").replace("_", " ").split()
    return "Mlmon" + "".join(w[:1].upper() + w[1:] for w in words)


def glob_regex(pattern: str) -> str:
    """An fnmatch pattern (``*``, ``?``, ``[seq]``, ``[!seq]``) as an RE2 regex without backslashes, which
    PromQL strings would need doubled. Feature and metric names are letters, digits, ``_``, ``-``, ``.``."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        close = pattern.find("]", i + 2) if ch == "[" else -1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif close > i:
            body = pattern[i + 1:close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = close
        elif ch.isalnum() or ch in "_-:":
            out.append(ch)
        elif ch == ".":
            out.append("[.]")
        else:
            raise ValueError(f"pattern {pattern!r}: {ch!r} cannot be used in a Prometheus rule (names use letters, "
                             f"digits, '_', '-', '.')")
        i += 1
    return "".join(out)


def _matchers(rule: Rule, model: str | None) -> str:
    families = "|".join(rule.families)
    parts = [f'window="latest"', f'family=~"{families}"' if len(rule.families) > 1 else f'family="{families}"']
    if model is not None:
        parts.insert(0, f'model="{model}"')
    for label, patterns in (("metric", rule.metrics), ("feature", rule.features)):
        if patterns != ("*",):
            parts.append(f'{label}=~"{"|".join(glob_regex(p) for p in patterns)}"')
    return ", ".join(parts)


def severity_expr(rule: Rule, timings: Timings, model: str | None = None) -> str:
    step = d(timings.window)
    span = d(timings.window * rule.m - timedelta(milliseconds=1))  # exactly m steps (see the module docstring)
    newest = f"last_over_time({SEVERITY_GAUGE}{{{_matchers(rule, model)}}}[{step}])"
    return f"count_over_time(({newest} >= {SEVERITY[rule.min_status]})[{span}:{step}]) >= {rule.n}"


def severity_rule(rule: Rule, timings: Timings, model: str | None = None) -> dict[str, Any]:
    what = "{{ $labels.family }}/{{ $labels.metric }}"
    detail = ("{{ if $labels.feature }} feature {{ $labels.feature }}{{ end }}"
              "{{ if $labels.class }} class {{ $labels.class }}{{ end }}"
              "{{ if $labels.segment }} segment {{ $labels.segment }}{{ end }}")
    return {
        "alert": alert_name(rule),
        "expr": severity_expr(rule, timings, model),
        "keep_firing_for": d(timings.keep_firing_for),
        "labels": {"severity": CRITICAL if rule.min_status == "alert" else WARNING, "mlmon_rule": rule.id},
        "annotations": {
            "summary": f"{{{{ $labels.model }}}} v{{{{ $labels.model_version }}}}: {what}{detail} is "
                       f"{rule.min_status} or worse in {{{{ $value }}}} of the last {rule.m} windows",
            "description": f"mlmon rule {rule.id} ({rule.display_name}): {rule.min_status} or worse in at least "
                           f"{rule.n} of the last {rule.m} windows of {d(timings.window)}; "
                           f"`mlmon metrics --model {{{{ $labels.model }}}} --family {{{{ $labels.family }}}}` "
                           f"lists the windows",
        },
    }


def _service_alert(name: str, expr: str, for_: timedelta | None, severity: str, summary: str,
                   description: str) -> dict[str, Any]:
    out: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ is not None:
        out["for"] = d(for_)
    out["labels"] = {"severity": severity}
    out["annotations"] = {"summary": summary, "description": description}
    return out


def service_rules(timings: Timings, thresholds: ServiceThresholds) -> list[dict[str, Any]]:
    rate_range, traffic = d(timings.rate_range), d(timings.traffic_range)
    baseline = d(timings.volume_baseline)
    per_baseline = timings.volume_baseline / timings.traffic_range  # e.g. 24 hours in a day
    recent = f"sum by (model) (increase({PREDICTIONS}[{traffic}]))"
    before = f"sum by (model) (increase({PREDICTIONS}[{baseline}] offset {traffic}))"
    by_version = "sum by (model, model_version)"
    return [
        _service_alert(
            "MlmonTrafficStopped", f"{recent} == 0", timings.traffic_for, CRITICAL,
            f"{{{{ $labels.model }}}}: no predictions logged in the last {traffic}",
            "The model service is up but mlmon_predictions_total did not move: no traffic, or the "
            "service stopped calling log_prediction."),
        _service_alert(
            "MlmonPredictionVolumeDrop",
            f"({recent} < {VOLUME_DROP_RATIO:g} * {before} / {per_baseline:g}) and ({before} >= {VOLUME_MIN_BASELINE})",
            timings.traffic_for, WARNING,
            f"{{{{ $labels.model }}}}: predictions in the last {traffic} fell below {VOLUME_DROP_RATIO:g} x its "
            f"average over the {baseline} before",
            f"As the Watcher watch mlmon-volume-drop: only once the baseline had at least {VOLUME_MIN_BASELINE} "
            "predictions."),
        _service_alert(
            "MlmonPredictionLatencyHigh",
            f"histogram_quantile({thresholds.latency_quantile:g}, {by_version[:-1]}, le) "
            f"(rate({DURATION_BUCKETS}[{rate_range}]))) > {thresholds.latency_seconds:g}",
            timings.service_for, WARNING,
            f"{{{{ $labels.model }}}} v{{{{ $labels.model_version }}}}: p{thresholds.latency_quantile * 100:g} "
            f"prediction latency {{{{ printf \"%.3g\" $value }}}}s > {thresholds.latency_seconds:g}s",
            "mlmon_prediction_duration_seconds (histogram) over the last " + rate_range),
        _service_alert(
            "MlmonPredictionErrorRatioHigh",
            f"{by_version} (rate({ERRORS}[{rate_range}])) / {by_version} (rate({PREDICTIONS}[{rate_range}])) "
            f"> {thresholds.error_ratio:g}",
            timings.service_for, CRITICAL,
            f"{{{{ $labels.model }}}} v{{{{ $labels.model_version }}}}: error ratio {{{{ printf \"%.3g\" $value }}}} "
            f"> {thresholds.error_ratio:g}",
            "mlmon_prediction_errors_total / mlmon_predictions_total over the last " + rate_range),
        _service_alert(
            "MlmonEventsDropped",
            f"sum by (model, model_version, reason) (increase({DROPPED}[{d(timings.dropped_range)}])) > 0",
            None, WARNING,
            f"{{{{ $labels.model }}}} v{{{{ $labels.model_version }}}}: the emitter dropped events "
            f"({{{{ $labels.reason }}}}) in the last {d(timings.dropped_range)}",
            "Dropped events never reach the store: the jobs' windows undercount. The reason says why "
            "(queue full, sink gone, ...)."),
        _service_alert(
            "MlmonModelServiceDown", f'up{{job="{SERVICE_JOB}"}} == 0', timings.down_for, CRITICAL,
            "{{ $labels.instance }}: the model service's /metrics cannot be scraped",
            "Prometheus cannot scrape the model service; traffic alerts see nothing while it is down."),
    ]


def health_rules(timings: Timings, model: str | None = None) -> list[dict[str, Any]]:
    only = f'{{model="{model}"}}' if model is not None else ""
    stale = d(timings.stale_after)
    return [
        {"alert": "MlmonJobsStale",
         "expr": f"(time() - {JOB_LAST_SUCCESS}{only} > {timings.stale_after.total_seconds():g}) "
                 f"or ({JOB_LAST_RUN_OK}{only} == 0 unless on (model, family) {JOB_LAST_SUCCESS})",
         "keep_firing_for": d(timings.keep_firing_for),
         "labels": {"severity": CRITICAL},
         "annotations": {
             "summary": f"{{{{ $labels.model }}}}: the {{{{ $labels.family }}}} job has not succeeded for {stale} "
                        f"(or never)",
             "description": "mlmon_job_last_success_timestamp_seconds: the metrics stopped moving; "
                            "`mlmon run` logs say why (mlmon_job_last_run_ok is 0 when the last run failed)."}},
    ]


def exporter_rules(timings: Timings) -> list[dict[str, Any]]:
    up = f'up{{job="{EXPORTER_JOB}"}}'
    return [
        _service_alert(
            "MlmonExporterDown", f"{up} == 0 or absent({up})", timings.down_for, CRITICAL,
            "mlmon serve-metrics cannot be scraped",
            f"Job metrics alerts keep firing for {d(timings.keep_firing_for)} (keep_firing_for) and then resolve "
            "for want of data; start mlmon serve-metrics again."),
        _service_alert(
            "MlmonExporterStale", f"time() - {EXPORTER_LAST_REFRESH} > {timings.exporter_stale_after.total_seconds():g}",
            None, WARNING,
            f"mlmon serve-metrics has not read the store for {d(timings.exporter_stale_after)}",
            "Its refreshes fail (mlmon_exporter_refresh_failures_total says why): the values served are old."),
    ]


def rule_groups(models: Sequence[ModelRules] = (ModelRules(None),), timings: Timings = Timings(),
                thresholds: ServiceThresholds = ServiceThresholds()) -> dict[str, Any]:
    """The rule file: ``{"groups": [...]}``. ``timings`` serves the service and exporter rules;
    each ModelRules brings its own for its severity and job health rules."""
    jobs: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    for m in models:
        jobs += [severity_rule(r, m.timings, m.model) for r in m.rules]
        health += health_rules(m.timings, m.model)
    return {"groups": [
        {"name": "mlmon-jobs", "rules": jobs},
        {"name": "mlmon-service", "rules": service_rules(timings, thresholds)},
        {"name": "mlmon-health", "rules": health + exporter_rules(timings)},
    ]}


def models_of(config: Config) -> list[ModelRules]:
    """One ModelRules per configured model whose alerts are enabled, with its rules and window."""
    out = []
    for m in config.models:
        alerts = m.sections.get("alerts")
        if alerts is not None and not alerts.enabled:
            continue
        rules = alerts.rules if alerts is not None else DEFAULT_RULES
        out.append(ModelRules(m.name, tuple(rules), Timings(window=m.window)))
    return out


def alert_names(groups: dict[str, Any]) -> Iterable[str]:
    return (r["alert"] for g in groups["groups"] for r in g["rules"])
