"""Local alerting after a job round: the same rules, evaluated by the jobs themselves.

Used in embedded mode (and by the jobs against Elasticsearch too, which is how
alert documents reach ``mlmon-alerts`` on a Basic licence). The round's new
metric documents select the series to look at; the store gives the status of
their last windows (one query per model version, bounded by family and by the
window ends on both sides) and the engine's memory. New alerts are written
together with their outbox entries; :mod:`mlmon.alerts.outbox` sends those
after the round, with the store closed.

Cost: O(rules x series x M) per round, not O(history): only the windows an
"N of M" rule can look at are read, and a metric document is built only for a
window that raises an alert and was not computed in this round.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from operator import attrgetter

from mlmon.alerts.channels.webhook import CHANNEL as WEBHOOK
from mlmon.alerts.engine import Decision, judge, latest_per_window
from mlmon.config.alerts import AlertsConfig, Rule
from mlmon.core.alerts import Alert, Delivery, SeriesKey, SeriesWindow, series_id
from mlmon.core.documents import MetricDocument
from mlmon.stores.protocols import AlertStore

log = logging.getLogger(__name__)

#: A document's series fields (SeriesKey's, in its order), read in one C call: a round keys ~10^5 documents.
_SERIES_FIELDS = attrgetter("model", "model_version", "family", "metric", "feature", "class_label",
                            "segment_field", "segment_value")


@dataclass
class AlertRoundReport:
    written: list[Alert] = field(default_factory=list)
    #: Outbox entries queued for the channels (sent by :func:`mlmon.alerts.outbox.deliver_outbox`).
    queued: int = 0


def alert_round(store: AlertStore, new_metrics: Sequence[MetricDocument], configs: Mapping[str, AlertsConfig],
                *, now: datetime | None = None) -> AlertRoundReport:
    """Evaluate the alert rules for every series touched by ``new_metrics``; store new alerts and queue them.

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
        alerts = _evaluate_version(store, model, version, docs, config, fired_at)
        deliveries = _deliveries(alerts, config, fired_at)
        written = store.write_alerts_and_outbox(alerts, deliveries)
        report.written += written
        fresh = {a.id for a in written}
        report.queued += sum(d.alert_id in fresh for d in deliveries)
    for alert in report.written:
        log.warning("alert %s", alert.reason)
    return report


def _deliveries(alerts: Sequence[Alert], config: AlertsConfig, created_at: datetime) -> list[Delivery]:
    """The outbox entries of ``alerts``: one per channel configured (a muted recovery gets none)."""
    if config.webhook is None:
        return []
    notify_recovery = {r.id: r.notify_recovery for r in config.rules}
    expires_at = created_at + config.webhook.expire_after
    return [Delivery.of(a, WEBHOOK, created_at=created_at, expires_at=expires_at) for a in alerts
            if a.action != "recovered" or notify_recovery.get(a.rule_id, True)]


def _evaluate_version(store: AlertStore, model: str, version: str, docs: Sequence[MetricDocument],
                      config: AlertsConfig, fired_at: datetime) -> list[Alert]:
    keys: dict[tuple[str, ...], SeriesKey] = {}  # one key object per series: a round holds ~10^4 documents

    def key_of(d: MetricDocument) -> SeriesKey:
        fields = _SERIES_FIELDS(d)
        found = keys.get(fields)
        if found is None:
            found = keys[fields] = SeriesKey(*fields)
        return found

    keyed = [(key_of(d), d) for d in docs]
    found = {s: config.rule_for(s) for s in {key for key, _ in keyed}}
    rules = {s: r for s, r in found.items() if r is not None}
    if not rules:
        return []
    # Enough context for the widest "N of M": M windows of the longest window length seen, before the
    # earliest window of the round; nothing after its latest (later windows are judged in their own round).
    longest = max(d.window_end - d.window_start for d in docs)
    widest_m = max(r.m for r in rules.values())
    since = min(d.window_start for d in docs) - widest_m * max(longest, timedelta(seconds=1))
    until = max(d.window_end for d in docs)
    families = sorted({s.family for s in rules})
    history: dict[SeriesKey, list[SeriesWindow | MetricDocument]] = defaultdict(list)
    known = {d.id: d for d in docs}
    # The round's own documents are just stored: the store returns the rest (what they do not replace).
    for row in store.series_windows(model, version, families, since, until, skip=known.keys()):
        if row.series in rules:
            history[row.series].append(row)
    for key, d in keyed:
        if key in rules:
            history[key].append(d)  # the engine reads a document as it reads a stored window: no copy of each
    memory = store.last_notifications(series_id(r.id, s) for s, r in rules.items())

    judged: list[tuple[Rule, SeriesKey, str, Decision]] = []  # (rule, series, metric document id, verdict)
    for key, rule in sorted(rules.items()):
        windows = latest_per_window(history[key])
        judged += [(rule, key, _metric_id(windows[d.index]), d)
                   for d in judge(windows, rule, memory.get(series_id(rule.id, key)))]
    # A metric document is built only for a window that raises an alert: this round's own, else read by id.
    missing = {w for _, _, w, _ in judged if w not in known}
    if missing:
        known.update({d.id: d for d in store.metric_documents(missing)})
    gone = [w for _, _, w, _ in judged if w not in known]
    if gone:  # deleted between two queries of this round: judged again next round
        log.warning("%d alerts of %s v%s not raised: their metric documents vanished meanwhile (first: %s)",
                    len(gone), model, version, gone[0])
    return [d.alert(rule, key, known[w], fired_at) for rule, key, w, d in judged if w in known]


def _metric_id(window: SeriesWindow | MetricDocument) -> str:
    return window.metric_id if isinstance(window, SeriesWindow) else window.id
