"""Send the outbox: take the due deliveries, send them with the store closed, record what became of them.

At least once, never lost: an alert's outbox entry is written with the alert
(:func:`mlmon.alerts.local.alert_round`) and leaves the ``pending`` state only when
a channel accepted it (``delivered``) or it is older than ``expire_after``
(``expired``: logged as an error and counted). A failure waits ``retry_backoff``,
doubling up to ``max_retry_backoff``, for a later round. The idempotency key is
the alert id on every attempt, so a receiver can drop the duplicate a crash after
sending but before recording causes.

The store is open only to take the due entries and to record outcomes: the embedded
store is a file one process holds at a time, and a slow receiver must not keep
other commands waiting for it. Taken entries are leased (their next try moved past
this round's deadline), so an overlapping round does not send them too, and a
round killed mid-way leaves them to the next round once the lease has passed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from mlmon.alerts.channels.webhook import CHANNEL as WEBHOOK, Outcome, post_deliveries
from mlmon.config.alerts import AlertsConfig, WebhookConfig
from mlmon.core.alerts import Delivery
from mlmon.stores.protocols import AlertStore, Store

log = logging.getLogger(__name__)

#: Deliveries taken per round; more wait for the next round.
BATCH = 1000
#: Lease margin beyond the round's sending deadlines: time to reopen the store and record.
LEASE_MARGIN = timedelta(seconds=5)
#: When a model has no webhook configured any more, its pending alerts are looked at again this much later.
UNCONFIGURED_RETRY = timedelta(hours=1)

Sender = Callable[[Sequence[Delivery], WebhookConfig], list[Outcome]]
AlertStoreOpener = Callable[[], AbstractContextManager[AlertStore]]


@dataclass
class DeliveryReport:
    delivered: int = 0
    #: Still pending: failed this round, or not tried before the round's deadline.
    retrying: int = 0
    expired: int = 0

    def line(self) -> str:
        return (f"alert deliveries: {self.delivered} delivered, {self.retrying} to retry on a later round, "
                f"{self.expired} expired")

    @property
    def any(self) -> bool:
        return bool(self.delivered or self.retrying or self.expired)


def alert_store_of(open_store: Callable[[], Store]) -> AlertStoreOpener:
    """Open the store for one step and close it after: the opener :func:`deliver_outbox` takes."""
    @contextmanager
    def opened() -> Iterator[AlertStore]:
        store = open_store()
        try:
            yield store.alert_store()
        finally:
            store.close()
    return opened


def deliver_outbox(open_alerts: AlertStoreOpener, configs: Mapping[str, AlertsConfig], *,
                   clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                   send: Sender = post_deliveries) -> DeliveryReport:
    """One delivery round: every due outbox entry gets a try (within each webhook's round deadline)."""
    webhooks = {m: c.webhook for m, c in configs.items() if c.enabled and c.webhook is not None}
    report = DeliveryReport()
    if not webhooks:
        return report
    now = clock()
    lease = sum((timedelta(seconds=w.round_timeout_seconds) for w in webhooks.values()), LEASE_MARGIN)
    with open_alerts() as store:
        due = store.claim_deliveries(now, now + lease, BATCH)
    if not due:
        return report
    by_model: dict[str, list[Delivery]] = defaultdict(list)
    for d in due:
        by_model[d.model].append(d)
    outcomes: list[Delivery] = []
    for model, entries in by_model.items():
        outcomes += _deliver_model(model, entries, webhooks.get(model), now, clock, send)
    with open_alerts() as store:
        store.record_deliveries(outcomes)
    for d in outcomes:
        if d.state == "delivered":
            report.delivered += 1
        elif d.state == "expired":
            report.expired += 1
        else:
            report.retrying += 1
    return report


def _deliver_model(model: str, entries: Sequence[Delivery], webhook: WebhookConfig | None, now: datetime,
                   clock: Callable[[], datetime], send: Sender) -> list[Delivery]:
    out: list[Delivery] = []
    live: list[Delivery] = []
    for d in entries:
        if d.expires_at <= now:
            out.append(_expire(d, "not delivered before it expired"))
        elif d.channel != WEBHOOK or webhook is None:
            # The config changed since the alert was queued: kept until the channel is back or it expires.
            log.warning("alert %s of model %s waits: no %s configured for the model", d.alert_id, model, d.channel)
            out.append(replace(d, next_attempt_at=now + UNCONFIGURED_RETRY,
                               last_error=f"no {d.channel} configured for model {model}"))
        else:
            live.append(d)
    if not live or webhook is None:
        return out
    # Outcomes come oldest first: a failure is seen before the later alerts of its series it held back,
    # which then wait as long as it does, so a "recovered" never overtakes its "fired" on a later round.
    retry_of: dict[str, datetime] = {}
    for outcome in send(live, webhook):
        d = outcome.delivery
        done = clock()
        if outcome.delivered:
            out.append(d.delivered(done))
        elif outcome.skipped:  # not tried (held behind its series, or the round's deadline): no attempt counted
            out.append(replace(d, next_attempt_at=retry_of.get(d.series_id, now), last_error=outcome.error))
        else:
            retry_at = done + _backoff(d.attempts, webhook, outcome.retry_after)
            retry_of[d.series_id] = retry_at
            failed = d.failed(outcome.error, retry_at)
            if failed.state == "expired":
                out.append(_expire(failed, outcome.error))
            else:
                log.warning("webhook delivery of alert %s failed (%s, try %d); next try at %s",
                            d.alert_id, outcome.error, failed.attempts, retry_at.isoformat())
                out.append(failed)
    return out


def _backoff(attempts_before: int, webhook: WebhookConfig, retry_after: float | None) -> timedelta:
    wait = min(webhook.retry_backoff * (2 ** min(attempts_before, 30)), webhook.max_retry_backoff)
    return max(wait, timedelta(seconds=retry_after or 0.0))


def _expire(d: Delivery, error: str) -> Delivery:
    reason = d.payload.get("text", "")
    log.error("alert %s given up on %s after %d tries (expired %s; last error: %s): %s",
              d.alert_id, d.channel, d.attempts, d.expires_at.isoformat(), error or d.last_error or "none", reason)
    return d.expired(error)
