"""The dashboards: model overview, data drift, performance, explainability, fairness.

Each dashboard is rows of Lens charts on Kibana's 48-column grid. Metric
dashboards read the metric documents (``mlmon-metrics*``; ``@timestamp`` is
the end of a window) and narrow them by ``metric.family``.

Segments: a metric document for all traffic has ``metric.segment.field`` "".
The drift, performance and explainability dashboards open with an
"All traffic" filter pill on that (so segment rows are not mixed into the
totals); disable the pill and use the segment controls to look at a segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlmon.stack.kibana import data_views as dv
from mlmon.stack.kibana import lens
from mlmon.stack.kibana.controls import OptionsList, control_group
from mlmon.stack.kibana.kql import Query, match
from mlmon.stack.kibana.lens import LensChart
from mlmon.stack.kibana.saved_objects import Reference, SavedObject, compact_json, stable_id

GRID_COLUMNS = 48
FILTER_REF = "kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index"


@dataclass(frozen=True)
class Row:
    height: int
    charts: tuple[tuple[int, LensChart], ...]  # (width in grid columns, chart)


@dataclass(frozen=True)
class Dashboard:
    id: str
    title: str
    description: str
    rows: tuple[Row, ...]
    controls: tuple[OptionsList, ...]
    all_traffic_pill: bool = False
    time_from: str = "now-7d"

    def saved_object(self) -> SavedObject:
        panels: list[dict[str, Any]] = []
        refs: list[Reference] = []
        y = 0
        for row in self.rows:
            x = 0
            for width, chart in row.charts:
                pid = stable_id(self.id, "panel", chart.key)
                attrs, _layer, layer_ref = chart.attributes()
                panels.append({
                    "type": "lens",
                    "title": chart.title,
                    "embeddableConfig": {"attributes": attrs, "enhancements": {}},
                    "panelIndex": pid,
                    "gridData": {"x": x, "y": y, "w": width, "h": row.height, "i": pid},
                })
                # By-value panels: the dashboard carries the reference, prefixed by the panel id.
                refs.append(Reference(f"{pid}:{layer_ref.name}", layer_ref.type, layer_ref.id))
                x += width
            if x > GRID_COLUMNS:
                raise ValueError(f"dashboard {self.id!r}: a row is {x} columns wide (grid has {GRID_COLUMNS})")
            y += row.height
        controls, control_refs = control_group(self.id, self.controls)
        filters: list[dict[str, Any]] = []
        if self.all_traffic_pill:
            filters.append(_all_traffic_filter())
            refs.append(Reference(FILTER_REF, "index-pattern", dv.METRICS.id))
        return SavedObject("dashboard", self.id, {
            "title": self.title,
            "description": self.description,
            "timeRestore": True,
            "timeFrom": self.time_from,
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 300_000},  # the jobs run every few minutes
            "optionsJSON": compact_json({"useMargins": True, "syncColors": False, "syncCursor": True,
                                         "syncTooltips": False, "hidePanelTitles": False}),
            "panelsJSON": compact_json(panels),
            "controlGroupInput": controls,
            "kibanaSavedObjectMeta": {"searchSourceJSON": compact_json(
                {"query": {"query": "", "language": "kuery"}, "filter": filters})},
        }, tuple(refs + control_refs))


#: The Query DSL of the "All traffic" pill. A term query, because KQL cannot say "equals the empty string".
ALL_TRAFFIC_QUERY: dict[str, Any] = {"term": {"metric.segment.field": ""}}


def _all_traffic_filter() -> dict[str, Any]:
    return {
        "meta": {"alias": "All traffic (disable to pick a segment)", "disabled": False, "negate": False,
                 "type": "custom", "key": "query", "value": compact_json(ALL_TRAFFIC_QUERY),
                 "indexRefName": FILTER_REF},
        "query": ALL_TRAFFIC_QUERY,
        "$state": {"store": "appState"},
    }


def _family(*families: str) -> Query:
    return Query((match("metric.family", *families),))


def _model_controls(view: dv.DataView) -> tuple[OptionsList, ...]:
    return (OptionsList("mlmon.model.name", "Model", view.id),
            OptionsList("mlmon.model.version", "Model version", view.id))


METRIC_CONTROLS = (*_model_controls(dv.METRICS),
                   OptionsList("metric.segment.field", "Segment field", dv.METRICS.id),
                   OptionsList("metric.segment.value", "Segment", dv.METRICS.id))

TIME = lens.date_histogram("@timestamp", "Time")
WINDOW_END = lens.date_histogram("@timestamp", "Window end")
EVENTS = lens.count()


def _overview() -> Dashboard:
    p = dv.PREDICTIONS.id
    p50 = lens.percentile("mlmon.prediction.latency_ms", 50, "p50 latency (ms)")
    p95 = lens.percentile("mlmon.prediction.latency_ms", 95, "p95 latency (ms)")
    p99 = lens.percentile("mlmon.prediction.latency_ms", 99, "p99 latency (ms)")
    dead = lens.count(label="Dead letters")
    score_bins = lens.Column("histogram:score", {
        "label": "Score", "customLabel": True, "dataType": "number", "operationType": "range",
        "sourceField": "mlmon.prediction.score", "isBucketed": True, "scale": "interval",
        "params": {"type": "histogram", "ranges": [{"from": 0, "to": 1000, "label": ""}], "maxBars": "auto",
                   "includeEmptyRows": True},
    })
    return Dashboard(
        "mlmon-dashboard-overview", "mlmon: model overview",
        "Traffic, latency, what the model predicts and what could not be stored. "
        "Dead letters are not filtered by the model controls when they carry no model name.",
        rows=(
            Row(6, (
                (12, LensChart("predictions", "Predictions", p, lens.Metric(lens.count(label="Predictions")))),
                (12, LensChart("p95", "p95 latency (ms)", p, lens.Metric(p95))),
                (12, LensChart("feedback", "Ground-truth labels received", dv.FEEDBACK.id,
                               lens.Metric(lens.count(label="Labels")))),
                (12, LensChart("deadletters", "Dead letters", dv.DEAD_LETTERS.id, lens.Metric(dead))),
            )),
            Row(12, (
                (24, LensChart("volume", "Prediction volume by model version", p, lens.XY(
                    TIME, (EVENTS,), lens.terms("mlmon.model.version", "Model version", 10, EVENTS),
                    series="bar_stacked"))),
                (24, LensChart("latency", "Latency percentiles (ms)", p, lens.XY(TIME, (p50, p95, p99)))),
            )),
            Row(12, (
                (24, LensChart("classes", "Predicted class over time", p, lens.XY(
                    TIME, (EVENTS,), lens.terms("mlmon.prediction.label", "Predicted class", 10, EVENTS),
                    series="bar_stacked"))),
                (24, LensChart("scores", "Score distribution", p, lens.XY(score_bins, (EVENTS,), series="bar"))),
            )),
            Row(12, (
                (24, LensChart("deadletter-time", "Dead letters by reason", dv.DEAD_LETTERS.id, lens.XY(
                    TIME, (dead,), lens.terms("error.type", "Reason", 10, dead), series="bar_stacked"))),
                (24, LensChart("deadletter-table", "Dead letters: top reasons", dv.DEAD_LETTERS.id, lens.Table(
                    (lens.terms("error.type", "Reason", 20, dead),), (dead,), sort_by=dead))),
            )),
        ),
        controls=_model_controls(dv.PREDICTIONS),
        time_from="now-24h",
    )


def _status_heatmap(chart_id: str, title: str, family: str) -> LensChart:
    """Features × time, each cell coloured by the worst status of the family's metrics there."""
    # metric.severity orders the statuses, so max() colours a cell by its worst status.
    not_ok = lens.numeric("max", "metric.severity", "Worst status (0 ok, 1 insufficient data, 2 warning, 3 alert)",
                          key="severity")
    return LensChart(chart_id, title, dv.METRICS.id, lens.Heatmap(
        WINDOW_END, lens.terms("metric.feature", "Feature", 20, not_ok, other_bucket=False), not_ok), _family(family))


def _drift() -> Dashboard:
    m = dv.METRICS.id
    worst = lens.numeric("max", "metric.value", "Worst value", key="worst")
    feature_metric = lens.terms("metric.feature", "Feature › statistic", 10, worst, secondary=("metric.name",))
    return Dashboard(
        "mlmon-dashboard-drift", "mlmon: data drift",
        "Per-feature drift statistics per window (the value is the worst over the windows in a time bucket).",
        rows=(
            Row(14, ((48, LensChart("drift-time", "Drift per feature over time", m, lens.XY(
                WINDOW_END, (worst,), feature_metric), _family("drift"))),)),
            Row(14, (
                (24, LensChart("worst-features", "Worst-drifting features", m, lens.Table(
                    (lens.terms("metric.feature", "Feature › statistic", 20, worst, secondary=("metric.name",),
                                other_bucket=False),),
                    (worst, lens.last_value("metric.value", "Latest value", "number"),
                     lens.last_value("metric.status", "Latest status", "string"),
                     lens.numeric("max", "metric.threshold.alert", "Alert threshold", key="threshold")),
                    sort_by=worst), _family("drift"))),
                (24, _status_heatmap("status-heatmap", "Drift status by feature × time", "drift")),
            )),
            Row(10, (
                (24, LensChart("prediction-drift", "Prediction drift", m, lens.XY(
                    WINDOW_END, (worst,), lens.terms("metric.name", "Statistic", 10, worst)),
                    _family("prediction_drift"))),
                (24, LensChart("data-quality", "Data quality (missing, out of range, unseen categories)", m, lens.XY(
                    WINDOW_END, (worst,), feature_metric), _family("data_quality"))),
            )),
        ),
        controls=METRIC_CONTROLS,
        all_traffic_pill=True,
    )


def _performance() -> Dashboard:
    m = dv.METRICS.id
    mean = lens.numeric("average", "metric.value", "Value", key="mean")
    return Dashboard(
        "mlmon-dashboard-performance", "mlmon: performance",
        "Realised performance per window, provisional until the window's labels have matured, then final; "
        "estimated performance where labels have not arrived; label coverage.",
        rows=(
            Row(14, ((48, LensChart("perf-time", "Performance over time (provisional / final)", m, lens.XY(
                WINDOW_END, (mean,), lens.terms("metric.name", "Metric › class › maturity", 12, mean,
                                                secondary=("metric.class", "metric.maturity"))),
                _family("performance"))),)),
            Row(14, (
                (24, LensChart("per-class", "Per-class metrics (rows: class, columns: metric)", m, lens.Table(
                    (lens.terms("metric.class", "Class", 20, mean, other_bucket=False),), (mean,),
                    pivot=lens.terms("metric.name", "Metric", 10, other_bucket=False)),
                    _family("performance"))),
                (24, LensChart("estimated", "Estimated performance (labels not yet arrived)", m, lens.XY(
                    WINDOW_END, (mean,), lens.terms("metric.name", "Metric", 10, mean)),
                    _family("estimated_performance"))),
            )),
            Row(10, ((48, LensChart("label-coverage", "Label coverage (share of predictions with ground truth)", m,
                                    lens.XY(WINDOW_END, (mean,), lens.terms("metric.name", "Metric", 5, mean)),
                                    _family("label_coverage"))),)),
        ),
        controls=METRIC_CONTROLS,
        all_traffic_pill=True,
    )


def _explainability() -> Dashboard:
    m = dv.METRICS.id
    mean = lens.numeric("average", "metric.value", "Value", key="mean")
    by_feature = lens.terms("metric.feature", "Feature › metric", 10, mean, secondary=("metric.name",))
    return Dashboard(
        "mlmon-dashboard-explainability", "mlmon: explainability",
        "Global feature importance from the logged attributions, its changes and attribution drift.",
        rows=(
            Row(14, ((48, LensChart("importance-time", "Top features over time", m, lens.XY(
                WINDOW_END, (mean,), by_feature), _family("explainability"))),)),
            Row(14, (
                (24, LensChart("rank-changes", "Rank and importance changes over the period", m, lens.Table(
                    (lens.terms("metric.feature", "Feature › metric", 20, mean, secondary=("metric.name",),
                                other_bucket=False),),
                    (lens.numeric("min", "metric.value", "Lowest", key="low"),
                     lens.numeric("max", "metric.value", "Highest", key="high"),
                     lens.last_value("metric.value", "Latest", "number"), mean)), _family("explainability"))),
                (24, _status_heatmap("explain-status", "Explainability status by feature × time", "explainability")),
            )),
        ),
        controls=METRIC_CONTROLS,
        all_traffic_pill=True,
    )


def _fairness() -> Dashboard:
    m = dv.METRICS.id
    worst = lens.numeric("max", "metric.value", "Gap", key="gap")
    mean = lens.numeric("average", "metric.value", "Value", key="mean")
    return Dashboard(
        "mlmon-dashboard-fairness", "mlmon: fairness",
        "Fairness gaps between the groups of each sensitive attribute (metric.segment.field), per window.",
        rows=(
            Row(14, ((48, LensChart("gaps-time", "Fairness gaps over time per attribute", m, lens.XY(
                WINDOW_END, (worst,), lens.terms("metric.segment.field", "Attribute › metric", 12, worst,
                                                 secondary=("metric.name",))), _family("fairness"))),)),
            Row(14, ((48, LensChart("groups", "Per group (rows: attribute › group, columns: metric)", m, lens.Table(
                (lens.terms("metric.segment.field", "Attribute › group", 30, mean, secondary=("metric.segment.value",),
                            other_bucket=False),), (mean,),
                pivot=lens.terms("metric.name", "Metric", 10, other_bucket=False)), _family("fairness"))),)),
        ),
        # No "All traffic" pill: fairness metrics are per attribute by nature.
        controls=METRIC_CONTROLS,
    )


def all_dashboards() -> tuple[Dashboard, ...]:
    return (_overview(), _drift(), _performance(), _explainability(), _fairness())
