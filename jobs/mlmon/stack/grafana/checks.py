"""Offline checks of the generated dashboards that no type system sees.

@grafana/schema types the JSON (tests/grafana/schema_check.py); these check what it
points at: every datasource uid is one Grafana is provisioned with, every series a
PromQL query names is one mlmon exports, every field an Elasticsearch query names is
a metric document field, and every ``$variable`` a query uses is defined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mlmon.core.documents import METRIC_FIELDS
from mlmon.stack.grafana import promql
from mlmon.stack.grafana.datasources import ELASTICSEARCH, PROMETHEUS

#: Grafana's own variables ($__rate_interval, $__range, ...) start with two underscores.
_VARIABLE = re.compile(r"\$(?!__)(\w+)|\$\{(?!__)(\w+)(?::\w+)?\}")
#: A series name: an identifier followed by `{` or `[` or `)` and not a function call `(`.
_SERIES = re.compile(r"\b(mlmon_\w+)\b")
#: Lucene `field:` terms of an Elasticsearch query.
_LUCENE_FIELD = re.compile(r"(?<![\w.])([A-Za-z_@][\w.@]*):")
_KNOWN_SOURCES = {PROMETHEUS.uid: PROMETHEUS.plugin, ELASTICSEARCH.uid: ELASTICSEARCH.plugin}


def dashboard_problems(dashboard: dict[str, Any]) -> list[str]:
    uid = dashboard.get("uid", "?")
    problems: list[str] = []
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    ids = [p["id"] for p in dashboard.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append(f"{uid}: panel ids are not unique: {ids}")
    for variable in dashboard.get("templating", {}).get("list", []):
        problems += _query_problems(f"{uid} variable {variable['name']}", variable.get("datasource"),
                                    {"expr": variable.get("query", {}).get("query", "")}, variables)
    for panel in dashboard.get("panels", []):
        where = f"{uid} panel {panel.get('title')!r}"
        for target in panel.get("targets", []):
            problems += _query_problems(where, target.get("datasource") or panel.get("datasource"), target, variables)
    return problems


def _query_problems(where: str, source: dict[str, str] | None, target: dict[str, Any],
                    variables: set[str]) -> list[str]:
    if not source or _KNOWN_SOURCES.get(source.get("uid", "")) != source.get("type"):
        return [f"{where}: datasource {source} is not a provisioned one ({_KNOWN_SOURCES})"]
    text = target.get("expr") or target.get("query") or ""
    problems = [f"{where}: ${name} is not a dashboard variable (defined: {sorted(variables)})"
                for name in _used_variables(text) if name not in variables]
    if source["type"] == PROMETHEUS.plugin:
        problems += [f"{where}: series {name} is not one mlmon exports (promql.METRIC_NAMES)"
                     for name in _SERIES.findall(text) if name not in promql.METRIC_NAMES]
    else:
        fields = set(_LUCENE_FIELD.findall(text))
        fields |= {agg["field"] for agg in [*target.get("metrics", []), *target.get("bucketAggs", [])]
                   if "field" in agg}
        problems += [f"{where}: field {f!r} is not a metric document field (core.documents.METRIC_FIELDS)"
                     for f in sorted(fields) if f not in METRIC_FIELDS]
    return problems


def _used_variables(text: str) -> Iterable[str]:
    for plain, braced in _VARIABLE.findall(text):
        yield plain or braced
