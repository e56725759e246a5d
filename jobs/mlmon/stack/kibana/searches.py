"""Saved Discover searches: the rows behind the dashboards, one click away."""

from __future__ import annotations

from dataclasses import dataclass

from mlmon.stack.kibana import data_views as dv
from mlmon.stack.kibana.kql import EMPTY, Query, match
from mlmon.stack.kibana.saved_objects import Reference, SavedObject, compact_json

INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


@dataclass(frozen=True)
class Search:
    id: str
    title: str
    description: str
    data_view: dv.DataView
    columns: tuple[str, ...]
    query: Query = EMPTY
    #: Discover's histogram is split by this field's values.
    breakdown: str | None = None

    def saved_object(self) -> SavedObject:
        source = {"query": self.query.to_json(), "filter": [], "indexRefName": INDEX_REF}
        attrs: dict[str, object] = {
            "title": self.title,
            "description": self.description,
            "columns": list(self.columns),
            "sort": [[self.data_view.time_field, "desc"]],
            "grid": {},
            "hideChart": False,
            "isTextBasedQuery": False,
            "timeRestore": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": compact_json(source)},
        }
        if self.breakdown:
            attrs["breakdownField"] = self.breakdown
        return SavedObject("search", self.id, attrs, (Reference(INDEX_REF, "index-pattern", self.data_view.id),))


MODEL_COLUMNS = ("mlmon.model.name", "mlmon.model.version")

PREDICTIONS = Search(
    "mlmon-search-predictions", "mlmon: predictions of one model",
    "Predictions, newest first. Pick the model in the query bar (mlmon.model.name : \"churn\") "
    "or from the histogram's breakdown by model.",
    dv.PREDICTIONS,
    (*MODEL_COLUMNS, "mlmon.prediction.id", "mlmon.prediction.label", "mlmon.prediction.value",
     "mlmon.prediction.score", "mlmon.prediction.latency_ms", "service.name"),
    breakdown="mlmon.model.name",
)
DEAD_LETTERS = Search(
    "mlmon-search-deadletters", "mlmon: dead-lettered events with reasons",
    "Events Logstash / mlmon ingest could not store, with the reason and the original line.",
    dv.DEAD_LETTERS, ("error.type", "error.message", "event.original"),
    breakdown="error.type",
)
ALERTS = Search(
    "mlmon-search-alerts", "mlmon: alerts raised",
    "Status changes the alert rules raised (and recoveries), newest first.",
    dv.ALERTS,
    (*MODEL_COLUMNS, "alert.action", "alert.status.previous", "alert.status.new", "metric.family", "metric.name",
     "metric.feature", "metric.value", "alert.reason", "alert.rule.name", "alert.source"),
    breakdown="alert.action",
)
METRICS_IN_ALERT = Search(
    "mlmon-search-metrics-in-alert", "mlmon: metrics in alert state",
    "Metric windows whose status is alert; @timestamp is the end of the window.",
    dv.METRICS,
    (*MODEL_COLUMNS, "metric.family", "metric.name", "metric.feature", "metric.class", "metric.segment.field",
     "metric.segment.value", "metric.value", "metric.threshold.alert", "window.start"),
    query=Query((match("metric.status", "alert"),)),
    breakdown="metric.family",
)

ALL: tuple[Search, ...] = (PREDICTIONS, DEAD_LETTERS, ALERTS, METRICS_IN_ALERT)
