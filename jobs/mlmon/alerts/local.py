"""Local alerting after a job round: the same rules, evaluated by the jobs themselves.

Used in embedded mode (and by the jobs against Elasticsearch too, which is how
alert documents reach ``mlmon-alerts`` on a Basic licence). The round's new
metric documents select the series to look at; their recent history and the
engine's memory come from the store; new alerts are written, then (optionally)
POSTed to the model's webhook. A webhook failure is logged and never fails the
round: the alert documents are already stored.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from mlmon.alerts.engine import evaluate
from mlmon.core.alerts import Alert, SeriesKey, series_id
from mlmon.config.alerts import AlertsConfig, WebhookConfig
from mlmon.stores.protocols import AlertStore
from mlmon.alerts.channels.webhook import DeliveryReport, post_alerts
from mlmon.core.documents import MetricDocument

log = logging.getLogger(__name__)

Poster = Callable[[Sequence[Alert], WebhookConfig], DeliveryReport]


@dataclass
class AlertRoundReport:
    written: list[Alert] = field(default_factory=list)
    delivered: int = 0
    failed_deliveries: int = 0


def alert_round(store: AlertStore, new_metrics: Sequence[MetricDocument], configs: Mapping[str, AlertsConfig],
                *, now: datetime | None = None, post: Poster = post_alerts) -> AlertRoundReport:
    """Evaluate the alert rules for every series touched by ``new_metrics``.

    ``configs`` maps a model name to its parsed ``alerts:`` section; a model
    without one gets the defaults.
    """
    fired_at = now or datetime.now(timezone.utc)
    report = AlertRoundReport()
    by_version: dict[tuple[str, str], list[MetricDocument]] = defaultdict(list)
    for doc in new_metrics:
        by_version[(doc.model, doc.model_version)].append(doc)
    for (model, version), docs in sorted(by_version.items()):
        config = configs.get(model, AlertsConfig())
        if not config.enabled:
            continue
        written = store.write_alerts(_evaluate_version(store, model, version, docs, config, fired_at))
        report.written += written
        notify_recovery = {r.id: r.notify_recovery for r in config.rules}
        to_send = [a for a in written if a.action != "recovered" or notify_recovery.get(a.rule_id, True)]
        if config.webhook is not None and to_send:
            delivery = post(to_send, config.webhook)
            report.delivered += delivery.delivered
            report.failed_deliveries += delivery.failed
    for alert in report.written:
        log.warning("alert %s", alert.reason)
    return report


def _evaluate_version(store: AlertStore, model: str, version: str, docs: Sequence[MetricDocument],
                      config: AlertsConfig, fired_at: datetime) -> list[Alert]:
    touched = {SeriesKey.of(d) for d in docs}
    found = {s: config.rule_for(s) for s in touched}
    rules = {s: r for s, r in found.items() if r is not None}
    if not rules:
        return []
    # Enough history for the widest "N of M" window: M windows of the longest window length seen.
    longest = max(d.window_end - d.window_start for d in docs)
    widest_m = max(r.m for r in rules.values())
    since = min(d.window_start for d in docs) - widest_m * max(longest, timedelta(seconds=1))
    history: dict[SeriesKey, list[MetricDocument]] = defaultdict(list)
    for doc in [*store.metric_history(model, version, since), *docs]:
        key = SeriesKey.of(doc)
        if key in rules:
            history[key].append(doc)
    memory = store.last_notifications(series_id(r.id, s) for s, r in rules.items())
    alerts: list[Alert] = []
    for key, rule in sorted(rules.items()):
        sid = series_id(rule.id, key)
        last = {rule.id: memory[sid]} if sid in memory else {}
        alerts += evaluate(history[key], config.rules, last, now=fired_at)
    return alerts
