"""Kibana rules, connectors and Watcher watches: generated, well-formed, naming only mapped fields.

Kibana cannot run here, so the rule bodies are cross-checked offline against the
constraints of Kibana 9.x's own schemas (``createBodySchema`` in
x-pack/platform/plugins/shared/alerting/common/routes/rule/apis/create/schemas/v1.ts
and the ``.es-query`` / ``.index-threshold`` params in
src/platform/packages/shared/response-ops/rule_params/{es_query,index_threshold}/v1.ts).
Watches are type-checked against the Elasticsearch client's API types.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import datetime, timezone
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from mlmon.stack import alert_assets as assets
from mlmon.stores.elasticsearch.alerts import (due_deliveries_search, held_back_search, last_notifications_search,
                                              metric_documents_search, recent_alerts_search, series_windows_search,
                                              stored_alerts_search)
from mlmon.config.alerts import Rule
from mlmon.core.alert_schema import ALERT_FIELDS
from mlmon.core.documents import METRIC_FIELDS
from mlmon.core.queries import flatten_source
from mlmon_logging import contract
from tests.support.estypes import assert_bodies_typecheck

RULE_BODY_KEYS = {"name", "rule_type_id", "enabled", "consumer", "tags", "throttle", "params", "schedule",
                  "actions", "notify_when", "alert_delay", "flapping", "dashboards"}
ACTION_KEYS = {"group", "id", "params", "frequency", "uuid", "alerts_filter", "use_alert_data_for_template"}
ES_QUERY_PARAMS = {"size", "timeWindowSize", "excludeHitsFromPreviousRun", "timeWindowUnit", "threshold",
                   "thresholdComparator", "aggType", "aggField", "groupBy", "termField", "termSize", "searchType",
                   "timeField", "searchConfiguration", "esQuery", "index", "esqlQuery", "sourceFields"}
INDEX_THRESHOLD_PARAMS = {"index", "timeField", "aggType", "aggField", "groupBy", "termField", "filterKuery",
                          "termSize", "timeWindowSize", "timeWindowUnit", "thresholdComparator", "threshold"}
PARAMS_BY_TYPE = {".es-query": ES_QUERY_PARAMS, ".index-threshold": INDEX_THRESHOLD_PARAMS}
ACTION_GROUPS = {".es-query": {"query matched", "recovered"}, ".index-threshold": {"threshold met", "recovered"}}
COMPARATORS = {">", "<", ">=", "<=", "between", "notBetween"}
BASIC_CONNECTOR_TYPES = {".server-log", ".index"}
MAX_GROUPS = 1000  # response-ops rule_params/common/constants.ts


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def rules() -> dict[str, Any]:
    return {p.stem: load(p) for p in sorted(assets.RULES_DIR.glob("*.json"))}


def watches() -> dict[str, Any]:
    return {p.stem: load(p) for p in sorted(assets.WATCHER_DIR.glob("*.json"))}


def test_committed_files_are_what_the_generator_produces() -> None:
    expected = assets.expected_files()
    committed = {*assets.RULES_DIR.glob("*.json"), *assets.CONNECTORS_DIR.glob("*.json"),
                 *assets.WATCHER_DIR.glob("*.json")}
    assert committed == set(expected), "run: python -m mlmon.stack.alert_assets"
    for path, text in expected.items():
        assert path.read_text() == text, f"{path} is stale; run: python -m mlmon.stack.alert_assets"


def test_the_issue_s_conditions_are_all_covered() -> None:
    names = {"mlmon-drift-alert", "mlmon-performance-drop", "mlmon-label-coverage-stalled", "mlmon-volume-drop",
             "mlmon-dead-letter-spike", "mlmon-attribution-drift", "mlmon-fairness-gap"}
    assert names <= set(rules()) and names == set(watches())
    assert {r["body"]["rule_type_id"] for r in rules().values()} == {".es-query", ".index-threshold"}


def test_rule_and_connector_ids_are_unique_uuid_v4_and_actions_resolve() -> None:
    connectors = {load(p)["id"]: load(p)["body"] for p in assets.CONNECTORS_DIR.glob("*.json")}
    ids = [r["id"] for r in rules().values()] + list(connectors)
    assert len(ids) == len(set(ids))
    for rule_id in ids:  # Kibana accepts only UUID v1 / v4 as a predefined rule id
        assert uuid.UUID(rule_id).version == 4, rule_id
    assert {c["connector_type_id"] for c in connectors.values()} <= BASIC_CONNECTOR_TYPES
    for name, rule in rules().items():
        for action in rule["body"]["actions"]:
            assert action["id"] in connectors, f"{name}: action names an unknown connector"


def check_rule_body(body: dict[str, Any]) -> None:
    """Raise AssertionError where the body breaks a constraint of Kibana's create-rule schemas."""
    assert set(body) <= RULE_BODY_KEYS, set(body) - RULE_BODY_KEYS
    assert {"name", "rule_type_id", "consumer", "params", "schedule"} <= set(body)
    assert re.fullmatch(r"\d+[smhd]", body["schedule"]["interval"])
    rule_type = body["rule_type_id"]
    params = body["params"]
    assert set(params) <= PARAMS_BY_TYPE[rule_type], f"unknown params {set(params) - PARAMS_BY_TYPE[rule_type]}"
    assert params.get("thresholdComparator") in COMPARATORS
    assert len(params["threshold"]) == (2 if "etween" in params["thresholdComparator"] else 1)
    assert params["timeWindowUnit"] in {"s", "m", "h", "d"} and params["timeWindowSize"] >= 1
    if params.get("aggType", "count") != "count":
        assert params.get("aggField")
    if params.get("groupBy") == "top":
        assert params.get("termField") and 1 <= params.get("termSize", 0) <= MAX_GROUPS
    if rule_type == ".es-query":
        assert params["searchType"] == "esQuery" and params["timeField"] and params["index"]
        assert "query" in json.loads(params["esQuery"])
        assert 0 <= params["size"] <= 10000
    term = params.get("termField")
    if isinstance(term, list):  # response-ops rule_params: 2..MAX_SELECTABLE_GROUP_BY_TERMS terms
        assert 2 <= len(term) <= assets.MAX_GROUP_BY_TERMS and len(set(term)) == len(term), term
    assert "notify_when" not in body and "throttle" not in body  # per action only: both levels is an error
    for action in body["actions"]:
        assert set(action) <= ACTION_KEYS and action["group"] in ACTION_GROUPS[rule_type], action["group"]
        frequency = action["frequency"]
        assert set(frequency) == {"summary", "notify_when", "throttle"}
        assert frequency["notify_when"] in {"onActionGroupChange", "onActiveAlert", "onThrottleInterval"}
        if frequency["notify_when"] == "onThrottleInterval":  # Kibana: throttle required, not below the schedule
            assert re.fullmatch(r"[1-9]\d*[smhd]", frequency["throttle"] or "")
            assert _seconds(frequency["throttle"]) >= _seconds(body["schedule"]["interval"])
        else:
            assert frequency["throttle"] is None


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[duration[-1]]


def test_rules_and_watches_renotify_like_the_local_engine() -> None:
    """Fire, then at most once per the engine's default renotify_every while the condition holds, then recover."""
    engine_default = Rule("x", ("drift",)).renotify_every
    assert engine_default is not None and _seconds(assets.RENOTIFY_EVERY) == engine_default.total_seconds()
    for name, rule in rules().items():
        by_group = {a["group"]: a["frequency"] for a in rule["body"]["actions"]}
        fired = [f for g, f in by_group.items() if g != "recovered"]
        assert fired and all(f == {"summary": False, "notify_when": "onThrottleInterval",
                                   "throttle": assets.RENOTIFY_EVERY} for f in fired), name
        assert by_group["recovered"]["notify_when"] == "onActionGroupChange", name
    for name, watch in watches().items():
        assert {a["throttle_period"] for a in watch["actions"].values()} == {assets.RENOTIFY_EVERY}, name


@pytest.mark.parametrize(("name", "families", "metrics"), [
    ("mlmon-attribution-drift", ["explainability"], ["attribution_drift", "ranking_ndcg"]),
    ("mlmon-fairness-gap", ["fairness"], None),
])
def test_explainability_and_fairness_alerts_select_their_alerting_documents(
        name: str, families: list[str], metrics: list[str] | None) -> None:
    expected = [{"terms": {"metric.family": families}}, {"term": {"metric.status": "alert"}}]
    if metrics is not None:
        expected.append({"terms": {"metric.name": metrics}})
    rule_query = json.loads(rules()[name]["body"]["params"]["esQuery"])["query"]
    assert rule_query["bool"]["filter"] == expected
    watch_filters = watches()[name]["input"]["search"]["request"]["body"]["query"]["bool"]["filter"]
    assert watch_filters[:-1] == expected and "range" in watch_filters[-1]


@pytest.mark.parametrize("name", sorted(rules()))
def test_rule_body_satisfies_kibana_s_create_schema(name: str) -> None:
    rule = rules()[name]
    assert set(rule) == {"id", "body"}
    check_rule_body(rule["body"])


@pytest.mark.parametrize(("path", "wrong"), [
    (("params", "thresholdComparater"), ">"),     # misspelled key
    (("params", "thresholdComparator"), "=>"),    # no such comparator
    (("params", "termSize"), 5000),                # above Kibana's MAX_GROUPS
    (("notifyWhen",), "onActiveAlert"),            # camelCase is the 7.x API
    (("notify_when",), "onActiveAlert"),           # rule-level notify_when next to per-action frequency
    (("actions", 0, "frequency", "throttle"), None),  # onThrottleInterval without its interval
    (("actions", 0, "frequency", "throttle"), "5m"),  # re-notify more often than the rule runs
    (("params", "termField"), ["a", "b", "c", "d", "e"]),  # more group-by terms than Kibana allows
])
def test_the_cross_check_catches_broken_rule_bodies(path: tuple[str, ...], wrong: Any) -> None:
    body = copy.deepcopy(rules()["mlmon-drift-alert"]["body"])
    target = body
    for key in path[:-1]:
        target = target[key]
    if path[-1] == "thresholdComparater":
        del target["thresholdComparator"]
    target[path[-1]] = wrong
    with pytest.raises(AssertionError):
        check_rule_body(body)


# --- fields named by queries exist in the mappings ------------------------------------------

def index_fields(pattern: str) -> dict[str, str]:
    """Field -> type of what an index pattern holds, from the contract / METRIC_FIELDS."""
    if pattern == assets.METRICS_PATTERN:
        return dict(METRIC_FIELDS)
    if pattern == assets.PREDICTIONS_PATTERN:
        return {f.name: f.type for f in contract.fields_for("prediction")}
    if pattern == assets.DEAD_LETTERS_PATTERN:
        return {f.name: f.type for f in contract.DEAD_LETTER_FIELDS}
    raise AssertionError(f"unknown index pattern {pattern}")


_FIELD_KEYED = {"term", "terms", "range", "match", "match_phrase", "prefix", "wildcard"}


def query_fields(node: Any) -> Iterator[str]:
    """Every field a query / aggregation tree names (``field`` values and field-keyed clauses)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _FIELD_KEYED and isinstance(value, dict) and "field" not in value:  # a query clause
                yield from (k for k in value if k != "boost")
            elif key == "field" and isinstance(value, str):
                yield value
            else:
                yield from query_fields(value)
    elif isinstance(node, list):
        for item in node:
            yield from query_fields(item)


def rule_fields(params: dict[str, Any]) -> set[str]:
    names = {params["timeField"]}
    term = params.get("termField")
    names.update([term] if isinstance(term, str) else term or [])
    if params.get("aggField"):
        names.add(params["aggField"])
    if "esQuery" in params:
        names.update(query_fields(json.loads(params["esQuery"])))
    return names


def named_fields() -> list[tuple[str, str, set[str]]]:
    """(label, index pattern, fields) for every rule and watch."""
    out = []
    for name, rule in rules().items():
        for pattern in rule["body"]["params"]["index"]:
            out.append((f"rule {name}", pattern, rule_fields(rule["body"]["params"])))
    for name, watch in watches().items():
        request = watch["input"]["search"]["request"]
        for pattern in request["indices"]:
            out.append((f"watch {name}", pattern, set(query_fields(request["body"]))))
    return out


def test_every_field_a_rule_or_watch_names_is_mapped_with_a_fitting_type() -> None:
    for label, pattern, fields in named_fields():
        mapping = index_fields(pattern)
        assert fields, label
        for field in fields:
            assert field in mapping, f"{label}: {field!r} is not in the {pattern} mapping"
            assert mapping[field] in {"keyword", "date", "long", "double"}, f"{label}: {field} is {mapping[field]}"
        assert mapping.get("@timestamp") == "date", label


def test_alert_documents_written_by_kibana_and_watcher_fit_the_alert_mapping() -> None:
    for name, rule in rules().items():
        for action in rule["body"]["actions"]:
            for doc in action["params"].get("documents", []):
                assert set(flatten_source(doc)) <= set(ALERT_FIELDS), name
    index_connector = load(assets.CONNECTORS_DIR / "mlmon-alerts-index.json")["body"]["config"]
    assert index_connector["executionTimeField"] in ALERT_FIELDS
    segments = {part for name in ALERT_FIELDS for part in name.split(".")}
    for name, watch in watches().items():
        script = watch["actions"]["index_alert"]["transform"]["script"]["source"]
        keys = set(re.findall(r"'([@\w]+)':", script))
        assert keys and keys <= segments, f"{name}: {keys - segments} not in ALERT_FIELDS"


TEMPLATES = REPO / "elasticsearch" / "index_templates"


def template_fields(pattern: str) -> dict[str, str] | None:
    """Mapped fields of the committed index template whose index_patterns match ``pattern``, if any."""
    components = REPO / "elasticsearch" / "component_templates"
    for path in sorted(TEMPLATES.glob("*.json")):
        body = load(path)
        if pattern not in body.get("index_patterns", []):
            continue
        mappings = [load(components / f"{c}.json").get("template", {}).get("mappings", {})
                    for c in body.get("composed_of", []) if (components / f"{c}.json").exists()]
        mappings.append(body.get("template", {}).get("mappings", {}))
        fields: dict[str, str] = {}
        for mapping in mappings:
            fields.update(_properties(mapping.get("properties", {})))
        return fields
    return None


def _properties(props: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in props.items():
        if "properties" in spec:
            out.update(_properties(spec["properties"], f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = spec.get("type", "object")
    return out


@pytest.mark.skipif(not TEMPLATES.is_dir(), reason="elasticsearch/index_templates not committed yet")
def test_fields_exist_in_the_committed_index_templates() -> None:
    checked = 0
    for label, pattern, fields in named_fields():
        mapped = template_fields(pattern)
        if mapped is None:
            continue
        checked += 1
        for field in fields:
            assert field in mapped, f"{label}: {field!r} is not mapped by the {pattern} template"
    alerts = template_fields(f"{assets.ALERTS_INDEX}*")
    if alerts is not None:
        checked += 1
        for field, es_type in ALERT_FIELDS.items():
            assert alerts.get(field) in {es_type, "match_only_text"} if es_type == "text" else \
                alerts.get(field) == es_type, f"mlmon-alerts template: {field} should be {es_type}"
    assert checked, "no committed template covers the indices the rules and watches read"


# --- Watcher bodies against the Elasticsearch API types ----------------------------------------

def test_all_alerting_bodies_typecheck_against_the_elasticsearch_api_types() -> None:
    # The spec types a watch's search-input body as WatcherSearchInputRequestBody = {query} only,
    # while Elasticsearch accepts a full search body there (size, aggs, ...). So: each watch is
    # checked with its body narrowed to the query, and the full body is checked as a `search` body.
    items: list[tuple[str, dict[str, Any] | list[Any], str]] = []
    for name, watch in watches().items():
        narrowed = copy.deepcopy(watch)
        body = narrowed["input"]["search"]["request"]["body"]
        narrowed["input"]["search"]["request"]["body"] = {"query": body["query"]}
        items.append(("watcher.put_watch", narrowed, f"{name}.json (search body narrowed to query)"))
        items.append(("search", body, f"{name}.json input.search.request.body"))
    for name, rule in rules().items():
        if "esQuery" in rule["body"]["params"]:
            items.append(("search", json.loads(rule["body"]["params"]["esQuery"]), f"rule {name} esQuery"))
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    items.append(("search", series_windows_search("churn", "3", ["drift"], t0, t0), "alert adapter: series windows"))
    items.append(("search", metric_documents_search(["a"]), "alert adapter: metric documents"))
    items.append(("search", stored_alerts_search(["a"]), "alert adapter: stored alerts"))
    items.append(("search", due_deliveries_search(t0, 100), "alert adapter: due deliveries"))
    items.append(("search", held_back_search(["a"], t0), "alert adapter: held-back deliveries"))
    items.append(("search", last_notifications_search(["a", "b"]), "alert adapter: last notifications"))
    items.append(("search", recent_alerts_search("churn", 50), "alert adapter: recent alerts"))
    assert_bodies_typecheck(items)
