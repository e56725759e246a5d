"""A dashboard: sections of panel rows on Grafana's 24-column grid, variables and links."""

from __future__ import annotations

from dataclasses import dataclass

from mlmon.stack.grafana.datasources import PROMETHEUS
from mlmon.stack.grafana.panels import Json, Panel

GRID_COLUMNS = 24
#: Grafana 12.4's dashboard schema version: written as is, Grafana runs no migration on load.
SCHEMA_VERSION = 42
#: Every mlmon dashboard carries it; the dashboard links list the dashboards by it.
TAG = "mlmon"


@dataclass(frozen=True)
class Row:
    height: int
    panels: tuple[tuple[int, Panel], ...]  # (width in grid columns, panel)


@dataclass(frozen=True)
class Section:
    """A titled group of rows (a Grafana row panel, expanded)."""

    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Variable:
    """A query variable over one label of a Prometheus series."""

    name: str
    label: str
    #: PromQL series selector whose label values are offered, e.g. 'mlmon_predictions_total{model=~"$model"}'.
    series: str
    multi: bool = False

    def to_json(self) -> Json:
        values = f"label_values({self.series}, {self.name})"
        out: Json = {
            "name": self.name, "label": self.label, "type": "query", "datasource": PROMETHEUS.ref(),
            # qryType 1: the Prometheus variable editor's "label values" query.
            "query": {"qryType": 1, "query": values, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            # Refresh on time-range change: a new model or version appears without a reload.
            "refresh": 2, "sort": 1, "multi": self.multi, "includeAll": self.multi,
            "options": [], "regex": "", "hide": 0, "skipUrlSync": False,
        }
        if self.multi:
            out["current"] = {"text": ["All"], "value": ["$__all"]}
        return out


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    sections: tuple[Section, ...]
    variables: tuple[Variable, ...]
    time_from: str = "now-6h"
    refresh: str = "1m"

    @property
    def file_name(self) -> str:
        return f"{self.uid}.json"

    def panels(self) -> list[Panel]:
        return [p for s in self.sections for r in s.rows for _, p in r.panels]

    def to_json(self) -> Json:
        panels: list[Json] = []
        next_id = 1
        y = 0
        for section in self.sections:
            panels.append({"id": next_id, "type": "row", "title": section.title, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": GRID_COLUMNS, "h": 1}, "panels": []})
            next_id += 1
            y += 1
            for row in section.rows:
                x = 0
                for width, panel in row.panels:
                    panels.append(panel.to_json(next_id, {"x": x, "y": y, "w": width, "h": row.height}))
                    next_id += 1
                    x += width
                if x > GRID_COLUMNS:
                    raise ValueError(f"dashboard {self.uid!r}: a row of {section.title!r} is {x} columns wide "
                                     f"(the grid has {GRID_COLUMNS})")
                y += row.height
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": [TAG],
            "editable": False,
            "graphTooltip": 1,  # shared crosshair: one moment across every panel
            "schemaVersion": SCHEMA_VERSION,
            "time": {"from": self.time_from, "to": "now"},
            "timezone": "utc",  # windows and metric documents are in UTC
            "refresh": self.refresh,
            "links": [{
                "title": "mlmon dashboards", "type": "dashboards", "tags": [TAG], "asDropdown": False,
                "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link",
                "tooltip": "", "url": "",
            }],
            "templating": {"list": [v.to_json() for v in self.variables]},
            "annotations": {"list": []},
            "panels": panels,
        }
