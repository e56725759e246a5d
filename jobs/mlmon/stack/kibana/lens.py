"""Lens visualizations, embedded by value in a dashboard's ``panelsJSON``.

A Lens chart is one form-based (data view) layer: named columns (buckets and
metrics) plus a visualization state that says which column goes where. The
column and visualization shapes are those Lens itself saves in Kibana 8.17-9.x
(``datasourceStates.formBased``, ``visualizationType`` lnsXY / lnsDatatable /
lnsHeatmap / lnsMetric).

Column ids are derived from the chart and column names, so regeneration is
byte-stable and a reader can follow which accessor is which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlmon.stack.kibana.kql import EMPTY, Query
from mlmon.stack.kibana.saved_objects import Reference, stable_id

#: Lens's pseudo-field of the count operation (no real field is read).
RECORDS = "___records___"

NumericOp = Literal["average", "max", "min", "sum", "median"]
SeriesType = Literal["line", "bar", "bar_stacked", "area"]


@dataclass(frozen=True)
class Column:
    """One Lens column: ``key`` is a readable name, unique within its chart."""

    key: str
    spec: dict[str, Any]
    #: For terms: the metric column (by key) whose value orders the buckets.
    order_by_key: str | None = None


def count(key: str = "count", label: str = "Events", kql_filter: Query = EMPTY) -> Column:
    spec: dict[str, Any] = {
        "label": label, "customLabel": True, "dataType": "number", "operationType": "count",
        "isBucketed": False, "scale": "ratio", "sourceField": RECORDS, "params": {"emptyAsNull": True},
    }
    if kql_filter.clauses:
        spec["filter"] = kql_filter.to_json()
    return Column(key, spec)


def numeric(op: NumericOp, source: str, label: str, key: str | None = None) -> Column:
    return Column(key or f"{op}:{source}", {
        "label": label, "customLabel": True, "dataType": "number", "operationType": op,
        "sourceField": source, "isBucketed": False, "scale": "ratio", "params": {"emptyAsNull": True},
    })


def percentile(source: str, pct: int, label: str) -> Column:
    return Column(f"p{pct}:{source}", {
        "label": label, "customLabel": True, "dataType": "number", "operationType": "percentile",
        "sourceField": source, "isBucketed": False, "scale": "ratio", "params": {"percentile": pct},
    })


def last_value(source: str, label: str, data_type: Literal["string", "number"], sort_field: str = "@timestamp") -> Column:
    """The value of the latest document (by ``sort_field``) in each bucket."""
    return Column(f"last:{source}", {
        "label": label, "customLabel": True, "dataType": data_type, "operationType": "last_value",
        "sourceField": source, "isBucketed": False, "scale": "ordinal" if data_type == "string" else "ratio",
        # Lens adds this filter itself: without it a bucket whose latest doc lacks the field shows empty.
        "filter": {"language": "kuery", "query": f"{source} : *"},
        "params": {"sortField": sort_field, "showArrayValues": False},
    })


def date_histogram(source: str = "@timestamp", label: str = "Time") -> Column:
    return Column(f"date:{source}", {
        "label": label, "customLabel": True, "dataType": "date", "operationType": "date_histogram",
        "sourceField": source, "isBucketed": True, "scale": "interval",
        "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
    })


def terms(source: str, label: str, size: int, order_by: Column | None = None,
          secondary: tuple[str, ...] = (), other_bucket: bool = True) -> Column:
    """Top ``size`` values of ``source`` (and ``secondary`` fields: multi-term buckets).

    Ordered by ``order_by`` (descending) or, without it, alphabetically.
    """
    order: dict[str, Any] = (
        {"type": "column", "columnId": ""} if order_by else {"type": "alphabetical", "fallback": True})
    params: dict[str, Any] = {
        "size": size, "orderBy": order, "orderDirection": "desc" if order_by else "asc",
        "otherBucket": other_bucket, "missingBucket": False, "parentFormat": {"id": "multi_terms" if secondary else "terms"},
        "include": [], "exclude": [], "includeIsRegex": False, "excludeIsRegex": False,
    }
    if secondary:
        params["secondaryFields"] = list(secondary)
    spec = {"label": label, "customLabel": True, "dataType": "string", "operationType": "terms",
            "scale": "ordinal", "sourceField": source, "isBucketed": True, "params": params}
    return Column(f"terms:{source}:{','.join(secondary)}", spec, order_by.key if order_by else None)


@dataclass(frozen=True)
class XY:
    """Lines or bars over ``x``, one series per ``split`` bucket (or per y column)."""

    x: Column
    ys: tuple[Column, ...]
    split: Column | None = None
    series: SeriesType = "line"
    type_name: str = field(default="lnsXY", init=False)

    def columns(self) -> tuple[Column, ...]:
        return (self.x, *((self.split,) if self.split else ()), *self.ys)

    def state(self, layer: str, ids: dict[str, str]) -> dict[str, Any]:
        data_layer: dict[str, Any] = {
            "layerId": layer, "layerType": "data", "seriesType": self.series,
            "xAccessor": ids[self.x.key], "accessors": [ids[y.key] for y in self.ys],
        }
        if self.split:
            data_layer["splitAccessor"] = ids[self.split.key]
        return {
            "legend": {"isVisible": True, "position": "right"},
            "valueLabels": "hide",
            "fittingFunction": "None",
            "preferredSeriesType": self.series,
            "layers": [data_layer],
        }


@dataclass(frozen=True)
class Table:
    """A data table; ``pivot`` columns are transposed into column headers."""

    rows: tuple[Column, ...]
    metrics: tuple[Column, ...]
    pivot: Column | None = None
    sort_by: Column | None = None
    type_name: str = field(default="lnsDatatable", init=False)

    def columns(self) -> tuple[Column, ...]:
        return (*self.rows, *((self.pivot,) if self.pivot else ()), *self.metrics)

    def state(self, layer: str, ids: dict[str, str]) -> dict[str, Any]:
        state: dict[str, Any] = {
            "layerId": layer, "layerType": "data",
            "columns": [{"columnId": ids[c.key], "isTransposed": c is self.pivot} for c in self.columns()],
        }
        if self.sort_by:
            state["sorting"] = {"columnId": ids[self.sort_by.key], "direction": "desc"}
        return state


@dataclass(frozen=True)
class Heatmap:
    x: Column
    y: Column
    value: Column
    type_name: str = field(default="lnsHeatmap", init=False)

    def columns(self) -> tuple[Column, ...]:
        return (self.x, self.y, self.value)

    def state(self, layer: str, ids: dict[str, str]) -> dict[str, Any]:
        return {
            "shape": "heatmap", "layerId": layer, "layerType": "data",
            "xAccessor": ids[self.x.key], "yAccessor": ids[self.y.key], "valueAccessor": ids[self.value.key],
            "legend": {"isVisible": True, "position": "right", "type": "heatmap_legend"},
            "gridConfig": {"type": "heatmap_grid", "isCellLabelVisible": False, "isYAxisLabelVisible": True,
                           "isXAxisLabelVisible": True, "isYAxisTitleVisible": False, "isXAxisTitleVisible": False},
            # Green (0) to red: any count of warning/alert windows stands out.
            "palette": {"type": "palette", "name": "custom", "params": {
                "name": "custom", "rangeType": "number", "rangeMin": 0, "rangeMax": None,
                "progression": "fixed", "continuity": "above", "reverse": False, "steps": 3,
                "stops": [{"color": "#54b399", "stop": 1}, {"color": "#d6bf57", "stop": 2}, {"color": "#e7664c", "stop": 3}],
                "colorStops": [{"color": "#54b399", "stop": 0}, {"color": "#d6bf57", "stop": 1}, {"color": "#e7664c", "stop": 2}],
            }},
        }


@dataclass(frozen=True)
class Metric:
    value: Column
    type_name: str = field(default="lnsMetric", init=False)

    def columns(self) -> tuple[Column, ...]:
        return (self.value,)

    def state(self, layer: str, ids: dict[str, str]) -> dict[str, Any]:
        return {"layerId": layer, "layerType": "data", "metricAccessor": ids[self.value.key]}


Visualization = XY | Table | Heatmap | Metric


@dataclass(frozen=True)
class LensChart:
    """A chart over one data view, optionally narrowed by a KQL query."""

    key: str                 # readable, unique within the dashboard
    title: str
    data_view_id: str
    vis: Visualization
    query: Query = EMPTY

    def attributes(self) -> tuple[dict[str, Any], str, Reference]:
        """Lens attributes, the layer id, and the layer's data view reference (unprefixed)."""
        layer = stable_id(self.key, "layer")
        cols = self.vis.columns()
        keys = [c.key for c in cols]
        if len(set(keys)) != len(keys):
            raise ValueError(f"chart {self.key!r}: duplicate column keys {keys}")
        ids = {c.key: stable_id(self.key, "column", c.key) for c in cols}
        specs: dict[str, dict[str, Any]] = {}
        for c in cols:
            spec = dict(c.spec)
            if c.order_by_key is not None:
                if c.order_by_key not in ids:
                    raise ValueError(f"chart {self.key!r}: {c.key!r} is ordered by {c.order_by_key!r}, not in the chart")
                spec["params"] = {**spec["params"], "orderBy": {"type": "column", "columnId": ids[c.order_by_key]}}
            specs[ids[c.key]] = spec
        ref = Reference(f"indexpattern-datasource-layer-{layer}", "index-pattern", self.data_view_id)
        attrs = {
            "title": "",
            "description": "",
            "visualizationType": self.vis.type_name,
            "type": "lens",
            "references": [ref.to_json()],
            "state": {
                "visualization": self.vis.state(layer, ids),
                "query": self.query.to_json(),
                "filters": [],
                "datasourceStates": {
                    "formBased": {"layers": {layer: {
                        "columns": specs,
                        # Lens evaluates buckets in columnOrder: buckets first, then metrics.
                        "columnOrder": [ids[c.key] for c in sorted(cols, key=lambda c: not c.spec["isBucketed"])],
                        "incompleteColumns": {},
                        "sampling": 1,
                    }}},
                    "indexpattern": {"layers": {}},
                    "textBased": {"layers": {}},
                },
                "internalReferences": [],
                "adHocDataViews": {},
            },
        }
        return attrs, layer, ref
