"""The dashboards: model service, data drift, performance, fairness and explainability, jobs.

Prometheus answers "how is it now and lately" (the model service's request metrics, the
jobs' newest window per metric); the Elasticsearch datasource answers "what did each
window say", from the metric documents, recomputed as labels arrive.

Severity panels use the documents' scale (jobs/mlmon/core/documents.py SEVERITY):
0 ok (or no threshold), 1 insufficient data, 2 warning, 3 alert.
"""

from __future__ import annotations

from mlmon.stack.grafana import promql as q
from mlmon.stack.grafana.layout import Dashboard, Row, Section, Variable
from mlmon.stack.grafana.panels import (
    EsQuery, Panel, PromQuery, heatmap, override, severity_mappings, stat, state_timeline, table, timeseries,
)


def _model_variables(series: str) -> tuple[Variable, ...]:
    return (Variable("model", "Model", series),
            Variable("model_version", "Model version", f'{series}{{model=~"$model"}}', multi=True))


def service() -> Dashboard:
    predictions = f"sum(rate({q.selector(q.PREDICTIONS)}[{q.RATE}]))"
    errors = f"sum(rate({q.selector(q.PREDICTION_ERRORS)}[{q.RATE}]))"
    return Dashboard(
        "mlmon-service", "mlmon: model service",
        "Request-level metrics of the model service (prometheus_client, fed by log_prediction): traffic, "
        "errors, latency, scores, predicted classes, labels received and what the event emitter dropped.",
        sections=(
            Section("Traffic", (
                Row(4, (
                    (6, stat("Predictions per second", PromQuery(predictions), unit="reqps", graph=True)),
                    (6, stat("Error ratio", PromQuery(f"({errors}) / ({predictions})"), unit="percentunit",
                             steps=((0.01, "yellow"), (0.05, "red")),
                             description="Failed predictions / all predictions, over the rate interval.")),
                    (6, stat("p95 latency", PromQuery(q.quantile(0.95, q.PREDICTION_DURATION)), unit="s", graph=True)),
                    (6, stat("Events dropped (time range)",
                             PromQuery(f"sum(increase({q.selector(q.EVENTS_DROPPED)}[$__range]))"),
                             steps=((1, "red"),), description="Prediction events the emitter could not "
                             "deliver (queue full, sink gone, ...): their predictions are missing from the "
                             "metric documents.")),
                )),
                Row(8, (
                    (12, timeseries("Predictions per second by version", PromQuery(
                        f"sum by (model_version) (rate({q.selector(q.PREDICTIONS)}[{q.RATE}]))", "{{model_version}}"),
                        unit="reqps", stack="normal")),
                    (12, timeseries("Errors per second by version", PromQuery(
                        f"sum by (model_version) (rate({q.selector(q.PREDICTION_ERRORS)}[{q.RATE}]))",
                        "{{model_version}}"), unit="reqps")),
                )),
            )),
            Section("Latency and predictions", (
                Row(8, (
                    (12, timeseries("Latency percentiles",
                                    PromQuery(q.quantile(0.5, q.PREDICTION_DURATION), "p50"),
                                    PromQuery(q.quantile(0.95, q.PREDICTION_DURATION), "p95"),
                                    PromQuery(q.quantile(0.99, q.PREDICTION_DURATION), "p99"), unit="s")),
                    (12, heatmap("Score distribution", PromQuery(
                        f"sum by (le) (increase({q.selector(q.PREDICTION_SCORE + '_bucket')}[$__interval]))",
                        "{{le}}", format="heatmap"),
                        description="Predictions per score bucket and time step (the score histogram's buckets).")),
                )),
                Row(8, (
                    (12, timeseries("Predicted classes (share)", PromQuery(
                        f"sum by (class) (rate({q.selector(q.PREDICTIONS_BY_CLASS)}[{q.RATE}]))", "{{class}}"),
                        unit="reqps", stack="percent")),
                    (12, timeseries("Ground-truth labels per second", PromQuery(
                        f"sum by (model_version) (rate({q.selector(q.FEEDBACK)}[{q.RATE}]))", "{{model_version}}"),
                        unit="reqps")),
                )),
            )),
            Section("Event emitter", (
                Row(8, (
                    (12, timeseries("Events not shipped per second",
                                    PromQuery(f"sum by (reason) (rate({q.selector(q.EVENTS_DROPPED)}[{q.RATE}]))",
                                              "dropped: {{reason}}"),
                                    PromQuery(f"sum(rate({q.selector(q.EVENTS_SAMPLED_OUT)}[{q.RATE}]))",
                                              "sampled out (by configuration)"), unit="short",
                                    description="Dropped events are lost; sampled-out events were never meant "
                                                "to be shipped.")),
                    (12, timeseries("Emitter queue", PromQuery(
                        f"max by (model_version) ({q.selector(q.EMITTER_QUEUE)})", "{{model_version}}"),
                        unit="short", description="Events waiting to be shipped; a queue that stays full drops.")),
                )),
            )),
        ),
        variables=_model_variables(q.PREDICTIONS),
    )


def _count_features_at(level: int, family: str) -> str:
    worst = f"max by (feature) ({q.all_traffic(q.SEVERITY, family)})"
    return f"count({worst} == {level}) or vector(0)"


def drift() -> Dashboard:
    severity = q.all_traffic(q.SEVERITY, "drift")
    return Dashboard(
        "mlmon-drift", "mlmon: data drift",
        "Drift of each feature in the newest window (all traffic), from the jobs' exporter: status over time, "
        "the statistics, and which features are in warning or alert now.",
        sections=(
            Section("Now", (
                Row(4, (
                    (6, stat("Features in alert", PromQuery(_count_features_at(3, "drift")), steps=((1, "red"),))),
                    (6, stat("Features in warning", PromQuery(_count_features_at(2, "drift")),
                             steps=((1, "yellow"),))),
                    (6, stat("Prediction drift", PromQuery(f"max({q.all_traffic(q.SEVERITY, 'prediction_drift')})"),
                             steps=((1, "blue"), (2, "yellow"), (3, "red")), mappings=severity_mappings(),
                             description="Worst status of the prediction drift metrics in the newest window.")),
                    (6, stat("Age of the newest drift window", PromQuery(
                        f"time() - max({q.all_traffic(q.WINDOW_END, 'drift')})"), unit="s",
                        description="Time since the end of the newest window the drift job evaluated.")),
                )),
                Row(9, (
                    (8, table("Features in warning or alert", PromQuery(
                        f"max by (feature, metric) ({severity}) >= 2", instant=True, format="table"),
                        overrides=(override("Value", displayName="Status", mappings=severity_mappings(),
                                            custom__cellOptions={"type": "color-background"}),),
                        sort_by="Status")),
                    (16, timeseries("Drift statistic per feature", PromQuery(
                        f"max by (feature, metric) ({q.all_traffic(q.DRIFT_STATISTIC, 'drift')})",
                        "{{feature}} · {{metric}}"), step_lines=True)),
                )),
            )),
            Section("History", (
                Row(10, ((24, state_timeline("Drift status per feature", PromQuery(
                    f"max by (feature) ({severity})", "{{feature}}"))),)),
                Row(8, (
                    (12, timeseries("Prediction drift statistic", PromQuery(
                        f"max by (metric) ({q.all_traffic(q.DRIFT_STATISTIC, 'prediction_drift')})", "{{metric}}"),
                        step_lines=True)),
                    (12, state_timeline("Data quality status per feature", PromQuery(
                        f"max by (feature) ({q.all_traffic(q.SEVERITY, 'data_quality')})", "{{feature}}"),
                        description="Missing values, values out of the reference range, unseen categories.")),
                )),
            )),
        ),
        variables=_model_variables(q.SEVERITY),
    )


#: Lucene clauses of the Elasticsearch queries (fields of METRIC_FIELDS; variables formatted by Grafana).
_ES_MODEL = "mlmon.model.name:$model AND mlmon.model.version:$model_version"
#: All traffic: an empty segment field. `?*` needs one character, so NOT matches "" (and a missing field).
_ES_ALL_TRAFFIC = "NOT metric.segment.field:?*"
#: Averages and not-per-class metrics; per-class values are in the table of the newest final window.
_ES_OVERALL = "(metric.class:macro OR NOT metric.class:?*)"


def _terms(agg_id: str, field: str, size: int = 10) -> dict[str, object]:
    return {"id": agg_id, "type": "terms", "field": field,
            "settings": {"size": str(size), "order": "asc", "orderBy": "_term", "min_doc_count": "1"}}


_BY_WINDOW_END = {"id": "9", "type": "date_histogram", "field": "@timestamp",
                  "settings": {"interval": "auto", "min_doc_count": "0", "trimEdges": "0"}}


def _es_history(title: str, family: str, *split: str, description: str, value: str = "avg",
                extra: str = "") -> Panel:
    clauses = [_ES_MODEL, f"metric.family:{family}", *([extra] if extra else [])]
    # Versions first: several selected versions are drawn apart, never averaged together.
    split = ("mlmon.model.version", *split)
    query = EsQuery(" AND ".join(clauses), ({"id": "1", "type": value, "field": "metric.value"},),
                    tuple(_terms(str(i + 2), f) for i, f in enumerate(split)) + (_BY_WINDOW_END,))
    panel = timeseries(title, query, description=description, step_lines=False)
    # One point per window: draw the points, so a window recomputed later stays visible as such.
    return Panel(panel.title, panel.type, panel.queries, panel.options, panel.description, panel.defaults,
                 {**(panel.custom or {}), "showPoints": "always", "pointSize": 5})


_HISTORY_COLUMNS = ("window.start", "window.end", "metric.family", "metric.name", "metric.class", "metric.maturity",
                    "metric.value", "metric.status", "n.current", "job.computed_at")


def performance() -> Dashboard:
    realised = q.selector(q.PERFORMANCE_RATIO, 'estimated="false"', 'segment=""', 'class=~"|macro"')
    newest = q.selector(q.PERFORMANCE_RATIO, f'window="{q.LATEST}"', 'segment=""', 'class=~"|macro"')
    coverage = q.selector(q.LABEL_COVERAGE, 'segment=""')
    per_class = q.selector(q.PERFORMANCE_RATIO, 'estimated="false"', f'window="{q.LATEST_FINAL}"', 'segment=""')
    history_table = table(
        "Window history (metric documents)",
        EsQuery(f"{_ES_MODEL} AND metric.family:(performance OR estimated_performance OR label_coverage) "
                f"AND {_ES_ALL_TRAFFIC}", ({"id": "1", "type": "raw_data", "settings": {"size": "500"}},)),
        description="One row per metric and window: a provisional value is replaced by its final one when the "
                    "window's labels have matured (same document id).", hide=())
    history_table = Panel(history_table.title, history_table.type, history_table.queries, history_table.options,
                          history_table.description, history_table.defaults, history_table.custom,
                          transformations=({"id": "filterFieldsByName",
                                            "options": {"include": {"names": list(_HISTORY_COLUMNS)}}},))
    return Dashboard(
        "mlmon-performance", "mlmon: performance",
        "Realised performance once labels arrive (newest window, and newest window whose labels have matured), "
        "estimated performance before they do, label coverage; per-window history from the metric documents.",
        sections=(
            Section("Newest windows", (
                Row(8, (
                    (12, timeseries("Realised: latest vs latest_final", PromQuery(
                        f"max by (model_version, metric, window) ({realised})", "{{model_version}} {{metric}} · {{window}}"), step_lines=True,
                        description="latest: the newest window (provisional while labels arrive); latest_final: "
                                    "the newest window whose labels have matured.")),
                    (12, timeseries("Estimated vs realised (newest window)", PromQuery(
                        f"max by (model_version, metric, estimated) ({newest})",
                        "{{model_version}} {{metric}} · estimated={{estimated}}"), step_lines=True)),
                )),
                Row(8, (
                    (12, timeseries("Label coverage", PromQuery(
                        f"max by (model_version, window) ({coverage})", "{{model_version}} · {{window}}"),
                        unit="percentunit", min_value=0, max_value=1, step_lines=True,
                        description="Share of the window's predictions with ground truth.")),
                    (12, table("Per class (newest final window)", PromQuery(
                        f"max by (model_version, metric, class) ({per_class})",
                        instant=True, format="table"), sort_by="class")),
                )),
            )),
            Section("Per-window history (Elasticsearch)", (
                Row(9, (
                    (12, _es_history("Realised performance per window", "performance", "metric.name", "metric.maturity",
                                     extra=f"{_ES_ALL_TRAFFIC} AND {_ES_OVERALL}",
                                     description="Each window's value, provisional until its labels matured.")),
                    (12, _es_history("Estimated performance per window", "estimated_performance", "metric.name",
                                     extra=f"{_ES_ALL_TRAFFIC} AND {_ES_OVERALL}",
                                     description="Estimated where labels have not arrived yet.")),
                )),
                Row(10, ((24, history_table),)),
            )),
        ),
        variables=_model_variables(q.SEVERITY),
        time_from="now-7d",
    )


def fairness_explainability() -> Dashboard:
    gaps = q.selector(q.FAIRNESS_GAP, f'window="{q.LATEST}"')
    status = q.selector(q.SEVERITY, 'family="fairness"', f'window="{q.LATEST}"')
    return Dashboard(
        "mlmon-fairness-explainability", "mlmon: fairness and explainability",
        "Fairness gaps between the groups of each sensitive attribute; attribution drift and explainability "
        "status per feature.",
        sections=(
            Section("Fairness", (
                Row(8, (
                    (12, timeseries("Fairness gap per attribute", PromQuery(
                        f"max by (segment, metric) ({gaps})",
                        "{{segment}} · {{metric}}"), step_lines=True)),
                    (12, state_timeline("Fairness status per attribute", PromQuery(
                        f"max by (segment) ({status})",
                        "{{segment}}"))),
                )),
                Row(8, ((24, _es_history("Fairness gaps per window (history)", "fairness", "metric.segment.field",
                                         "metric.name", value="max",
                                         description="The largest gap per attribute and metric in each window.")),)),
            )),
            Section("Explainability", (
                Row(8, (
                    (12, timeseries("Attribution drift per feature", PromQuery(
                        f"max by (feature, metric) ({q.all_traffic(q.ATTRIBUTION_DRIFT, 'explainability')})",
                        "{{feature}} · {{metric}}"), step_lines=True)),
                    (12, state_timeline("Explainability status per feature", PromQuery(
                        f"max by (feature) ({q.all_traffic(q.SEVERITY, 'explainability')})", "{{feature}}"))),
                )),
            )),
        ),
        variables=_model_variables(q.SEVERITY),
        time_from="now-7d",
    )


def jobs() -> Dashboard:
    model = 'model=~"$model"'
    last_success = f"{q.JOB_LAST_SUCCESS}{{{model}}}"
    duration = f"{q.JOB_DURATION}{{{model}}}"
    window_end = f'{q.WINDOW_END}{{{model}, window="{q.LATEST}"}}'
    # A job runs every few minutes: three missed runs is a warning, an hour without one an alert.
    stale = ((900, "yellow"), (3600, "red"))
    return Dashboard(
        "mlmon-jobs", "mlmon: jobs",
        "Are the jobs running: time since each job's last successful run, the age of the newest evaluated "
        "window, how long runs take, and series the exporter had to drop.",
        sections=(
            Section("Freshness", (
                Row(4, (
                    (8, stat("Oldest last success", PromQuery(f"time() - min({last_success})"), unit="s",
                             steps=stale, description="The job that succeeded longest ago, over the selected models.")),
                    (8, stat("Slowest last run", PromQuery(f"max({duration})"), unit="s")),
                    (8, stat("Exporter series dropped (time range)", PromQuery(
                        f"sum(increase({q.EXPORTER_SERIES_DROPPED}[$__range]))"), steps=((1, "red"),),
                        description="Series mlmon serve-metrics left out (series limit): some metrics are "
                                    "missing from these dashboards.")),
                )),
                Row(8, (
                    (12, table("Since last success, per model and job", PromQuery(
                        f"time() - max by (model, family) ({last_success})", instant=True, format="table"),
                        unit="s", overrides=(override("Value", displayName="Since last success",
                                                      custom__cellOptions={"type": "color-text"},
                                                      color={"mode": "thresholds"},
                                                      thresholds={"mode": "absolute", "steps": [
                                                          {"color": "green", "value": None},
                                                          {"color": "yellow", "value": 900},
                                                          {"color": "red", "value": 3600}]}),),
                        sort_by="Since last success")),
                    (12, timeseries("Age of the newest window per job", PromQuery(
                        f"time() - max by (model, family) ({window_end})",
                        "{{model}} · {{family}}"), unit="s",
                        description="Grows between windows; a saw-tooth is healthy, a ramp is a job that stopped.")),
                )),
            )),
            Section("Runs", (
                Row(8, (
                    (12, timeseries("Job duration (last run)", PromQuery(
                        f"max by (model, family) ({duration})", "{{model}} · {{family}}"), unit="s",
                        step_lines=True)),
                    (12, timeseries("Exporter series dropped per second", PromQuery(
                        f"sum(rate({q.EXPORTER_SERIES_DROPPED}[{q.RATE}]))", "dropped"))),
                )),
            )),
        ),
        variables=(Variable("model", "Model", q.JOB_LAST_SUCCESS, multi=True),),
        time_from="now-24h",
    )


def all_dashboards() -> tuple[Dashboard, ...]:
    return (service(), drift(), performance(), fairness_explainability(), jobs())
