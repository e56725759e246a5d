"""Panels and their queries, in Grafana's dashboard JSON model (schemaVersion 42).

A :class:`Panel` carries what varies (title, queries, unit, options); the builders
below fill in each plugin's required options, so every panel passes the
``@grafana/schema`` check of its plugin (``tests/grafana/schema_check.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlmon.core.documents import SEVERITY
from mlmon.stack.grafana.datasources import ELASTICSEARCH, PROMETHEUS, Datasource

Json = dict[str, Any]


@dataclass(frozen=True)
class PromQuery:
    expr: str
    legend: str = ""
    #: True: one value per series at the end of the range (tables, stats of the newest value).
    instant: bool = False
    #: "heatmap" turns histogram buckets into heatmap cells.
    format: str = "time_series"

    def target(self, ref_id: str) -> Json:
        return {
            "refId": ref_id, "datasource": PROMETHEUS.ref(), "editorMode": "code", "expr": self.expr,
            "legendFormat": self.legend or "__auto", "format": self.format,
            "range": not self.instant, "instant": self.instant,
        }


@dataclass(frozen=True)
class EsQuery:
    """A query on the metric documents: a Lucene query, metric aggregations, bucket aggregations."""

    query: str
    metrics: tuple[Json, ...]
    bucket_aggs: tuple[Json, ...] = ()
    alias: str = ""

    def target(self, ref_id: str) -> Json:
        out: Json = {"refId": ref_id, "datasource": ELASTICSEARCH.ref(), "query": self.query,
                     "metrics": list(self.metrics), "bucketAggs": list(self.bucket_aggs),
                     "timeField": "@timestamp"}
        if self.alias:
            out["alias"] = self.alias
        return out

    def fields(self) -> list[str]:
        """Every document field the aggregations name (checked against the metric mapping)."""
        return [agg["field"] for agg in (*self.metrics, *self.bucket_aggs) if "field" in agg]


Query = PromQuery | EsQuery


@dataclass(frozen=True)
class Panel:
    title: str
    type: str
    queries: tuple[Query, ...]
    options: Json
    description: str = ""
    defaults: Json = field(default_factory=dict)   # fieldConfig.defaults without `custom`
    custom: Json | None = None                     # fieldConfig.defaults.custom
    overrides: tuple[Json, ...] = ()
    links: tuple[Json, ...] = ()
    transformations: tuple[Json, ...] = ()

    @property
    def datasource(self) -> Datasource:
        kinds = {type(q) for q in self.queries}
        if len(kinds) != 1:
            raise ValueError(f"panel {self.title!r}: queries must all use one datasource, got {kinds or 'none'}")
        return PROMETHEUS if kinds == {PromQuery} else ELASTICSEARCH

    def to_json(self, panel_id: int, grid: Json) -> Json:
        defaults = dict(self.defaults)
        if self.custom is not None:
            defaults["custom"] = self.custom
        out: Json = {
            "id": panel_id, "type": self.type, "title": self.title, "description": self.description,
            "gridPos": grid, "datasource": self.datasource.ref(),
            "targets": [q.target(chr(ord("A") + i)) for i, q in enumerate(self.queries)],
            "options": self.options,
            "fieldConfig": {"defaults": defaults, "overrides": list(self.overrides)},
        }
        if self.links:
            out["links"] = list(self.links)
        if self.transformations:
            out["transformations"] = list(self.transformations)
        return out


# --- shared option blocks -------------------------------------------------------------------

def legend(placement: str = "bottom", as_table: bool = False, calcs: Sequence[str] = ()) -> Json:
    return {"showLegend": True, "displayMode": "table" if as_table else "list", "placement": placement,
            "calcs": list(calcs)}


TOOLTIP: Json = {"mode": "multi", "sort": "desc"}


def thresholds(*steps: tuple[float, str], base: str = "green") -> Json:
    """Absolute thresholds: ``base`` below the first step, then each (value, colour)."""
    return {"mode": "absolute",
            "steps": [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in steps]}


#: How a `severity` value reads and looks (jobs/mlmon/core/documents.py SEVERITY).
SEVERITY_LOOK: Mapping[int, tuple[str, str]] = {0: ("ok", "green"), 1: ("insufficient data", "blue"),
                                                2: ("warning", "yellow"), 3: ("alert", "red")}


def severity_mappings() -> list[Json]:
    """Value mappings naming every severity level the documents use, by their statuses."""
    statuses: dict[int, list[str]] = {}
    for status, level in SEVERITY.items():
        statuses.setdefault(level, []).append(status.replace("_", " "))
    missing = set(statuses) - set(SEVERITY_LOOK)
    if missing:
        raise ValueError(f"severity levels {sorted(missing)} have no colour in SEVERITY_LOOK")
    options = {str(level): {"text": SEVERITY_LOOK[level][0], "color": SEVERITY_LOOK[level][1], "index": i}
               for i, level in enumerate(sorted(statuses))}
    return [{"type": "value", "options": options}]


def _graph_custom(draw: str = "line", stack: str = "none", fill: int = 10) -> Json:
    return {"drawStyle": draw, "lineWidth": 1, "fillOpacity": fill, "showPoints": "never",
            "spanNulls": False, "stacking": {"mode": stack, "group": "A"}, "axisPlacement": "auto"}


# --- builders -------------------------------------------------------------------------------

def timeseries(title: str, *queries: Query, unit: str = "short", description: str = "",
               stack: str = "none", draw: str = "line", min_value: float | None = None,
               max_value: float | None = None, step_lines: bool = False,
               mappings: list[Json] | None = None, color: Json | None = None) -> Panel:
    defaults: Json = {"unit": unit, "color": color or {"mode": "palette-classic"}}
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    if mappings:
        defaults["mappings"] = mappings
    custom = _graph_custom(draw, stack, fill=0 if stack == "none" else 60)
    if step_lines:
        # Window metrics change once per window: draw steps, not slopes between windows.
        custom["lineInterpolation"] = "stepAfter"
    return Panel(title, "timeseries", tuple(queries), {"legend": legend(), "tooltip": TOOLTIP},
                 description, defaults, custom)


def stat(title: str, query: Query, unit: str = "short", description: str = "",
         steps: Sequence[tuple[float, str]] = (), base: str = "green", graph: bool = False,
         calc: str = "lastNotNull", mappings: list[Json] | None = None) -> Panel:
    defaults: Json = {"unit": unit, "color": {"mode": "thresholds"}, "thresholds": thresholds(*steps, base=base)}
    if mappings:
        defaults["mappings"] = mappings
    options: Json = {
        "reduceOptions": {"calcs": [calc], "fields": "", "values": False},
        "orientation": "auto", "textMode": "auto", "colorMode": "background" if steps else "value",
        "graphMode": "area" if graph else "none", "justifyMode": "auto", "wideLayout": True,
        "showPercentChange": False, "percentChangeColorMode": "standard",
    }
    return Panel(title, "stat", (query,), options, description, defaults)


def state_timeline(title: str, query: Query, description: str = "") -> Panel:
    """One row per series, coloured by severity (0 ok .. 3 alert)."""
    defaults: Json = {"color": {"mode": "thresholds"}, "mappings": severity_mappings(),
                      "thresholds": thresholds((1, "blue"), (2, "yellow"), (3, "red")), "min": 0, "max": 3}
    options: Json = {"showValue": "never", "rowHeight": 0.8, "mergeValues": True, "alignValue": "left",
                     "legend": legend(), "tooltip": {"mode": "single", "sort": "none"}}
    return Panel(title, "state-timeline", (query,), options, description, defaults,
                 {"fillOpacity": 80, "lineWidth": 0})


def heatmap(title: str, query: PromQuery, unit: str = "short", description: str = "") -> Panel:
    """Prometheus histogram buckets as cells (``format: heatmap``, ``le`` on the y axis)."""
    options: Json = {
        "calculate": False,
        "cellGap": 1,
        "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange", "scale": "exponential",
                  "exponent": 0.5, "steps": 64, "reverse": False},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": True},
        "yAxis": {"axisPlacement": "left", "unit": unit, "reverse": False},
        "cellValues": {"unit": "short"},
    }
    return Panel(title, "heatmap", (query,), options, description, {},
                 {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
                  "scaleDistribution": {"type": "linear"}})


def table(title: str, *queries: Query, description: str = "", unit: str = "short",
          overrides: Sequence[Json] = (), sort_by: str | None = None, hide: Sequence[str] = ("Time",)) -> Panel:
    """Rows of an instant query (``format: table``): one per series, its labels as columns."""
    options: Json = {"showHeader": True, "cellHeight": "sm", "frameIndex": 0}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    custom: Json = {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False, "filterable": True}
    # Instant rows all share one timestamp: the column would say nothing.
    organize = {"id": "organize", "options": {"excludeByName": {name: True for name in hide}}}
    return Panel(title, "table", tuple(queries), options, description, {"unit": unit}, custom, tuple(overrides),
                 transformations=(organize,) if hide else ())


def override(field_name: str, **properties: Any) -> Json:
    """fieldConfig override of the named field: ``override("Value", unit="s")``."""
    return {"matcher": {"id": "byName", "options": field_name},
            "properties": [{"id": k.replace("__", "."), "value": v} for k, v in properties.items()]}
