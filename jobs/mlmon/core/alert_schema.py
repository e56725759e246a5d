"""Alert documents as stored: field names and types, in one place.

The ``mlmon-alerts*`` index template and the embedded store's ``alerts`` table
both derive from :data:`ALERT_FIELDS`, the way the metrics index derives from
:data:`mlmon.core.documents.METRIC_FIELDS`. Fields an alert shares with the metric
it is about keep the metric's names (``metric.*``, ``window.*``,
``mlmon.model.*``) so one Kibana filter works on both indices.

Three writers produce alert documents: the jobs' rule engine
(``alert.source: mlmon-jobs``), Kibana rules through the index connector
(``kibana``) and Watcher watches through the index action (``watcher``). The
Kibana and Watcher documents only fill the ``alert.*`` fields they know
(rule, action, reason, group) and ``@timestamp``.
"""

from __future__ import annotations

from mlmon.core.documents import METRIC_FIELDS

ALERTS_TABLE = "alerts"

#: Values of ``alert.action``: what happened to the (rule, series) pair.
ACTIONS: tuple[str, ...] = ("fired", "escalated", "renotified", "recovered")

_SHARED_WITH_METRICS: tuple[str, ...] = (
    "mlmon.model.name",
    "mlmon.model.version",
    "metric.id",
    "metric.family",
    "metric.name",
    "metric.feature",
    "metric.class",
    "metric.segment.field",
    "metric.segment.value",
    "metric.value",
    "metric.maturity",
    "metric.threshold.warning",
    "metric.threshold.alert",
    "metric.threshold.direction",
    "window.start",
    "window.end",
)

#: Field name -> Elasticsearch type of a stored alert document.
ALERT_FIELDS: dict[str, str] = {
    # When the alerting condition was observed: the end of the window that tripped it.
    "@timestamp": "date",
    "alert.id": "keyword",
    # Hash of (rule, series): the newest document per value is the engine's memory.
    "alert.series_id": "keyword",
    "alert.source": "keyword",
    "alert.action": "keyword",
    "alert.rule.id": "keyword",
    "alert.rule.name": "keyword",
    "alert.status.previous": "keyword",
    "alert.status.new": "keyword",
    # Wall-clock time the engine (or Kibana / Watcher) decided to notify.
    "alert.fired_at": "date",
    "alert.reason": "text",
    # Kibana / Watcher group key (e.g. "churn,age"); empty for the jobs' engine.
    "alert.group": "keyword",
    # Evidence of an "N of the last M windows" rule: bad windows among those considered.
    "alert.windows.bad": "long",
    "alert.windows.considered": "long",
    **{name: METRIC_FIELDS[name] for name in _SHARED_WITH_METRICS},
}


#: The outbox: delivery state per alert and channel (DuckDB table; Elasticsearch index, not under
#: ``mlmon-alerts*`` so that alert counts in Kibana never include deliveries).
OUTBOX_TABLE = "alert_outbox"
OUTBOX_INDEX = "mlmon-outbox"
#: The body a channel sends, stored as is (DuckDB JSON; Elasticsearch: kept, not indexed).
OUTBOX_PAYLOAD = "delivery.payload"

#: Field name -> Elasticsearch type of an outbox entry (:class:`mlmon.core.alerts.Delivery`), payload aside.
OUTBOX_FIELDS: dict[str, str] = {
    # The alert's id: also the Idempotency-Key the receiver sees, the same on every attempt.
    "delivery.alert_id": "keyword",
    "delivery.channel": "keyword",
    "delivery.model": "keyword",
    "delivery.series_id": "keyword",
    # End of the alert's window: a series' alerts are sent in window order.
    "delivery.window_end": "date",
    "delivery.state": "keyword",
    "delivery.attempts": "long",
    "delivery.created_at": "date",
    "delivery.expires_at": "date",
    # Due time of the next try; a round that takes entries moves it past its own deadline (a lease).
    "delivery.next_attempt_at": "date",
    "delivery.delivered_at": "date",
    "delivery.last_error": "keyword",
}
