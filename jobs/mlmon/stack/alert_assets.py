"""Kibana rules, their connectors and Watcher watches, as readable code.

The committed files are generated from this module (a test checks they are
equal), so a query changes in one place:

* ``kibana/rules/<name>.json``            - ``{"id": <uuid v4>, "body": <create-rule body>}``
  for ``POST /api/alerting/rule/<id>`` (Basic licence: ``.es-query`` and ``.index-threshold``).
* ``kibana/rules/connectors/<name>.json`` - ``{"id": ..., "body": <create-connector body>}``
  for ``POST /api/actions/connector/<id>``; Basic connector types only
  (``.server-log``, ``.index``). The rules' actions reference them by id.
* ``elasticsearch/watcher/<name>.json``    - ``PUT _watcher/watch/<name>`` bodies (Gold+/trial).

Run ``python -m mlmon.stack.alert_assets`` to rewrite the files after a change.

The rules and watches read the metric documents the jobs write (``mlmon-metrics*``,
``@timestamp`` = window end) and the event data streams, and write what they
find as alert documents (``alert.source: kibana`` / ``watcher``) into
``mlmon-alerts-kibana`` / ``mlmon-alerts-watcher``, both under the
``mlmon-alerts*`` template, so one data view shows every alert whoever raised it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mlmon.core.assets import ELASTICSEARCH, KIBANA, ROOT, refuse_write
from mlmon.core.documents import ALERTS_INDEX, METRICS_INDEX
from mlmon_logging import contract

RULES_DIR = KIBANA / "rules"
CONNECTORS_DIR = RULES_DIR / "connectors"
WATCHER_DIR = ELASTICSEARCH / "watcher"

METRICS_PATTERN = f"{METRICS_INDEX}*"
PREDICTIONS_PATTERN = f"{contract.DATA_STREAM_TYPE}-{contract.DATASETS['prediction']}-*"
DEAD_LETTERS_PATTERN = f"{contract.DATA_STREAM_TYPE}-{contract.DEAD_LETTER_DATASET}-*"
KIBANA_ALERTS_INDEX = f"{ALERTS_INDEX}-kibana"
WATCHER_ALERTS_INDEX = f"{ALERTS_INDEX}-watcher"

SERVER_LOG_CONNECTOR_ID = "8ed7de22-7beb-4740-a063-e2703733cb64"
INDEX_CONNECTOR_ID = "8df68717-4a31-42d6-b853-93e118e41719"

#: Metric documents are written once per window, after it closes; look back far
#: enough to see a daily window written late, and check often enough for hourly ones.
METRIC_LOOKBACK_HOURS = 26
CHECK_INTERVAL = "15m"
#: While a condition still holds, re-notify at most once per this interval - the local
#: engine's default ``renotify_every`` (mlmon.config.alerts.Rule): Kibana rules via each
#: firing action's ``frequency`` (onThrottleInterval), watches via ``throttle_period``.
RENOTIFY_EVERY = "24h"
WATCH_THROTTLE = RENOTIFY_EVERY
#: Kibana's .es-query accepts at most this many group-by terms (MAX_SELECTABLE_GROUP_BY_TERMS).
MAX_GROUP_BY_TERMS = 4
#: Explainability metrics with thresholds an alert is about (importance itself is informational).
ATTRIBUTION_ALERT_METRICS = ["attribution_drift", "ranking_ndcg"]


# --- shared query pieces ------------------------------------------------------------------

def metric_status_query(families: list[str], status: str = "alert",
                        metrics: list[str] | None = None) -> dict[str, Any]:
    """Metric documents of some families (and metric names) in a given status (the caller adds the time range)."""
    filters: list[dict[str, Any]] = [{"terms": {"metric.family": families}}, {"term": {"metric.status": status}}]
    if metrics is not None:
        filters.append({"terms": {"metric.name": metrics}})
    return {"bool": {"filter": filters}}


def _with_range(query: dict[str, Any], field: str, gte: str) -> dict[str, Any]:
    return {"bool": {"filter": [*query["bool"]["filter"], {"range": {field: {"gte": gte}}}]}}


# --- Kibana (Basic) ---------------------------------------------------------------------

CONNECTORS: dict[str, dict[str, Any]] = {
    "mlmon-server-log": {"id": SERVER_LOG_CONNECTOR_ID, "body": {
        "name": "mlmon: Kibana server log", "connector_type_id": ".server-log", "config": {}, "secrets": {}}},
    "mlmon-alerts-index": {"id": INDEX_CONNECTOR_ID, "body": {
        "name": "mlmon: alert documents", "connector_type_id": ".index",
        "config": {"index": KIBANA_ALERTS_INDEX, "refresh": False, "executionTimeField": "@timestamp"},
        "secrets": {}}},
}


def _actions(group: str) -> list[dict[str, Any]]:
    """Log and index when an alert fires, again at most once per RENOTIFY_EVERY while it holds, and on recovery."""
    firing = {"summary": False, "notify_when": "onThrottleInterval", "throttle": RENOTIFY_EVERY}
    recovery = {"summary": False, "notify_when": "onActionGroupChange", "throttle": None}  # once per recovery
    out: list[dict[str, Any]] = []
    for grp, action, frequency in ((group, "fired", firing), ("recovered", "recovered", recovery)):
        out.append({"group": grp, "id": SERVER_LOG_CONNECTOR_ID, "frequency": frequency, "params": {
            "level": "warn" if action == "fired" else "info",
            "message": f"mlmon {action}: {{{{rule.name}}}} [{{{{context.group}}}}] - {{{{context.message}}}}"}})
        out.append({"group": grp, "id": INDEX_CONNECTOR_ID, "frequency": frequency, "params": {"documents": [{
            # executionTimeField fills @timestamp; these follow ALERT_FIELDS.
            "alert": {"source": "kibana", "action": action, "rule": {"id": "{{rule.id}}", "name": "{{rule.name}}"},
                      "group": "{{context.group}}", "reason": "{{context.message}}"}}]}})
    return out


def _rule(rule_id: str, name: str, rule_type: str, params: dict[str, Any], *, group: str,
          active_after: int = 1) -> dict[str, Any]:
    return {"id": rule_id, "body": {
        "name": name, "rule_type_id": rule_type, "consumer": "stackAlerts", "enabled": True,
        "tags": ["mlmon"], "schedule": {"interval": CHECK_INTERVAL}, "params": params,
        "actions": _actions(group),
        # Kibana's own "N consecutive runs" guard against a single noisy check.
        "alert_delay": {"active": active_after}}}


def _es_query_rule(rule_id: str, name: str, query: dict[str, Any], group_by: list[str] | str) -> dict[str, Any]:
    return _rule(rule_id, name, ".es-query", {
        "searchType": "esQuery", "index": [METRICS_PATTERN], "timeField": "@timestamp",
        "esQuery": json.dumps({"query": query}, indent=2),
        "size": 10, "excludeHitsFromPreviousRun": False,
        "aggType": "count", "groupBy": "top", "termField": group_by, "termSize": 100,
        "thresholdComparator": ">", "threshold": [0],
        "timeWindowSize": METRIC_LOOKBACK_HOURS, "timeWindowUnit": "h"}, group="query matched")


def kibana_rules() -> dict[str, dict[str, Any]]:
    return {
        "mlmon-drift-alert": _es_query_rule(
            "4df1c872-c79b-4203-bf42-dfc7470fbc77", "mlmon: feature drift in alert",
            metric_status_query(["drift", "prediction_drift"]), ["mlmon.model.name", "metric.feature"]),
        "mlmon-performance-drop": _es_query_rule(
            "dec2b93d-5162-49b9-9dda-52ccb664ec5a", "mlmon: model performance drop",
            metric_status_query(["performance", "estimated_performance"]), ["mlmon.model.name", "metric.name"]),
        "mlmon-label-coverage-stalled": _es_query_rule(
            "97714606-5948-477b-8a91-dcbf20a99292", "mlmon: label coverage stalled",
            metric_status_query(["label_coverage"]), "mlmon.model.name"),
        "mlmon-attribution-drift": _es_query_rule(
            "0b6f3c2e-5d47-4e8a-9c1b-7a2d4e6f8b90", "mlmon: attribution drift in alert",
            metric_status_query(["explainability"], metrics=ATTRIBUTION_ALERT_METRICS),
            ["mlmon.model.name", "metric.name", "metric.feature", "metric.segment.value"]),
        "mlmon-fairness-gap": _es_query_rule(
            "6e1d9a47-2b3c-4f58-8d6e-0c9b7a5f3e21", "mlmon: fairness gap in alert",
            metric_status_query(["fairness"]), ["mlmon.model.name", "metric.segment.field", "metric.name"]),
        "mlmon-volume-drop": _es_query_rule(
            "94c88a05-1d73-4cb9-9902-e204efbaa13a", "mlmon: prediction volume drop",
            metric_status_query(["volume"]), "mlmon.model.name"),
        # Terms groups never include an empty bucket, so "no traffic at all" is checked ungrouped.
        "mlmon-traffic-stopped": _rule(
            "4d797b55-c45f-48b7-a07e-4f08ecb44202", "mlmon: no predictions logged for an hour",
            ".index-threshold", {
                "index": [PREDICTIONS_PATTERN], "timeField": "@timestamp", "aggType": "count", "groupBy": "all",
                "thresholdComparator": "<", "threshold": [1], "timeWindowSize": 1, "timeWindowUnit": "h"},
            group="threshold met", active_after=2),
        "mlmon-dead-letter-spike": _rule(
            "539a9db8-83ab-45e7-b459-0ad86067333f", "mlmon: dead-letter spike",
            ".index-threshold", {
                "index": [DEAD_LETTERS_PATTERN], "timeField": "@timestamp", "aggType": "count", "groupBy": "top",
                "termField": "error.type", "termSize": 20,
                "thresholdComparator": ">", "threshold": [100], "timeWindowSize": 15, "timeWindowUnit": "m"},
            group="threshold met"),
    }


# --- Watcher (Gold+/trial) --------------------------------------------------------------

#: Painless that builds a watch's alert reason from the search response. Mustache is rendered in
#: some action fields (logging text, email) but never inside script ``params``: a reason passed
#: there as ``{{ctx.payload...}}`` would be stored as that literal text, so it is built here.
BUCKET_REASON = (
    "String reason = ctx.payload.hits.total + params.what;"
    " for (def m : ctx.payload.aggregations.models.buckets) { reason += ' ' + m.key + ' ('; String sep = '';"
    " for (def s : m.split.buckets) { reason += sep + s.key; sep = ' '; } reason += ')'; }")
DEAD_LETTER_REASON = (
    "String reason = ctx.payload.hits.total + params.what; String sep = '';"
    " for (def b : ctx.payload.aggregations.reasons.buckets) { reason += sep + b.key + '=' + b.doc_count; sep = ' '; }")
STATIC_REASON = "String reason = params.what;"


def _watch(name: str, title: str, indices: list[str], body: dict[str, Any], condition: dict[str, Any],
           log_text: str, reason: str, what: str) -> dict[str, Any]:
    """A watch that logs and indexes an alert document while ``condition`` holds, throttled.

    ``log_text`` is mustache (rendered by the logging action); ``reason`` is Painless that sets
    ``String reason`` from ``ctx.payload`` and ``params.what`` (plain text, no mustache).
    """
    document = (
        f"{reason} return ['@timestamp': ctx.execution_time, 'alert': ['source': 'watcher', 'action': 'fired', "
        "'rule': ['id': ctx.watch_id, 'name': ctx.metadata.title], 'group': '', "
        "'fired_at': ctx.execution_time, 'reason': reason]];")
    return {
        "metadata": {"title": title, "mlmon": {"watch": name}},
        "trigger": {"schedule": {"interval": CHECK_INTERVAL}},
        "input": {"search": {"request": {"indices": indices, "rest_total_hits_as_int": True, "body": body}}},
        "condition": condition,
        "actions": {
            "log": {"throttle_period": WATCH_THROTTLE,
                    "logging": {"level": "warn", "text": f"mlmon watch {{{{ctx.watch_id}}}}: {log_text}"}},
            "index_alert": {"throttle_period": WATCH_THROTTLE,
                            "transform": {"script": {"lang": "painless", "source": document,
                                                     "params": {"what": what}}},
                            "index": {"index": WATCHER_ALERTS_INDEX}},
        },
    }


def _metric_watch(name: str, title: str, families: list[str], split: str,
                  metrics: list[str] | None = None) -> dict[str, Any]:
    body = {
        "size": 0,
        "query": _with_range(metric_status_query(families, metrics=metrics), "@timestamp",
                             f"now-{METRIC_LOOKBACK_HOURS}h"),
        "aggs": {"models": {"terms": {"field": "mlmon.model.name", "size": 50},
                            "aggs": {"split": {"terms": {"field": split, "size": 20}}}}},
    }
    what = f" metric documents of {'/'.join(families)} in alert over the last {METRIC_LOOKBACK_HOURS}h:"
    log_text = (f"{{{{ctx.payload.hits.total}}}}{what} {{{{#ctx.payload.aggregations.models.buckets}}}}{{{{key}}}} "
                f"({{{{#split.buckets}}}}{{{{key}}}} {{{{/split.buckets}}}}) {{{{/ctx.payload.aggregations.models.buckets}}}}")
    return _watch(name, title, [METRICS_PATTERN], body, {"compare": {"ctx.payload.hits.total": {"gt": 0}}},
                  log_text, BUCKET_REASON, what)


#: Hourly volume below this share of the model's average hour over the previous day is a drop.
VOLUME_DROP_RATIO = 0.5
#: ...once the previous day had at least this many predictions (no alarms for idle models).
VOLUME_MIN_BASELINE = 240


def watcher_watches() -> dict[str, dict[str, Any]]:
    volume_body = {
        "size": 0,
        "query": {"range": {"@timestamp": {"gte": "now-25h"}}},
        "aggs": {"models": {"terms": {"field": "mlmon.model.name", "size": 100}, "aggs": {
            "recent": {"filter": {"range": {"@timestamp": {"gte": "now-1h"}}}},
            "baseline": {"filter": {"range": {"@timestamp": {"lt": "now-1h"}}}}}}},
    }
    volume_condition = {"script": {"lang": "painless", "params": {
        "ratio": VOLUME_DROP_RATIO, "min_baseline": VOLUME_MIN_BASELINE}, "source": (
        "for (def b : ctx.payload.aggregations.models.buckets) {"
        " if (b.baseline.doc_count >= params.min_baseline"
        " && b.recent.doc_count < params.ratio * b.baseline.doc_count / 24.0) { return true; } }"
        " return false;")}}
    volume_text = (f"a model's predictions in the last hour fell below {VOLUME_DROP_RATIO:g} x its "
                   f"hourly average of the previous day")
    dead_letter_body = {
        "size": 0,
        "query": {"range": {"@timestamp": {"gte": "now-15m"}}},
        "aggs": {"reasons": {"terms": {"field": "error.type", "size": 20}}},
    }
    return {
        "mlmon-drift-alert": _metric_watch("mlmon-drift-alert", "mlmon: feature drift in alert",
                                           ["drift", "prediction_drift"], "metric.feature"),
        "mlmon-performance-drop": _metric_watch("mlmon-performance-drop", "mlmon: model performance drop",
                                                ["performance", "estimated_performance"], "metric.name"),
        "mlmon-label-coverage-stalled": _metric_watch("mlmon-label-coverage-stalled", "mlmon: label coverage stalled",
                                                      ["label_coverage"], "mlmon.model.version"),
        "mlmon-attribution-drift": _metric_watch("mlmon-attribution-drift", "mlmon: attribution drift in alert",
                                                 ["explainability"], "metric.feature",
                                                 metrics=ATTRIBUTION_ALERT_METRICS),
        "mlmon-fairness-gap": _metric_watch("mlmon-fairness-gap", "mlmon: fairness gap in alert", ["fairness"],
                                            "metric.segment.field"),
        "mlmon-volume-drop": _watch(
            "mlmon-volume-drop", "mlmon: prediction volume drop", [PREDICTIONS_PATTERN], volume_body,
            volume_condition, volume_text, STATIC_REASON, volume_text),
        "mlmon-dead-letter-spike": _watch(
            "mlmon-dead-letter-spike", "mlmon: dead-letter spike", [DEAD_LETTERS_PATTERN], dead_letter_body,
            {"compare": {"ctx.payload.hits.total": {"gt": 100}}},
            "{{ctx.payload.hits.total}} dead letters in 15 minutes: "
            "{{#ctx.payload.aggregations.reasons.buckets}}{{key}}={{doc_count}} "
            "{{/ctx.payload.aggregations.reasons.buckets}}", DEAD_LETTER_REASON, " dead letters in 15 minutes: "),
    }


# --- files ------------------------------------------------------------------------------

def expected_files() -> dict[Path, str]:
    """Every generated file and its content."""
    files: dict[Path, Any] = {}
    files.update({RULES_DIR / f"{n}.json": r for n, r in kibana_rules().items()})
    files.update({CONNECTORS_DIR / f"{n}.json": c for n, c in CONNECTORS.items()})
    files.update({WATCHER_DIR / f"{n}.json": w for n, w in watcher_watches().items()})
    return {path: json.dumps(obj, indent=2, sort_keys=False) + "\n" for path, obj in files.items()}


def write_files() -> list[Path]:
    written = []
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


if __name__ == "__main__":
    if why := next(filter(None, map(refuse_write, (RULES_DIR, WATCHER_DIR))), None):
        sys.exit(f"python -m mlmon.stack.alert_assets: {why}")
    changed = write_files()
    print("\n".join(str(p.relative_to(ROOT)) for p in changed) or "all alerting assets up to date")
    sys.exit(0)
