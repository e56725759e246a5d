"""The outbox on a real embedded store and a real receiver: retries with backoff, expiry, leases, no lock held."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlmon.alerts.channels.webhook import Outcome, post_deliveries
from mlmon.alerts.local import alert_round
from mlmon.alerts.outbox import LEASE_MARGIN, deliver_outbox
from mlmon.config.alerts import AlertsConfig, Rule, WebhookConfig
from mlmon.core.alerts import Delivery
from mlmon.stores.duckdb.alerts import DuckDBAlertStore
from mlmon.stores.duckdb.store import DuckDBStore
from tests.alerts.conftest import T0, Receiver, make_metric

NOW = T0 + timedelta(days=2)
RULE = Rule("drift", ("drift",), renotify_every=None)


class Opener:
    """Opens the store file for each step and closes it after, as the commands do; knows whether it is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_open = False

    @contextmanager
    def store(self) -> Iterator[DuckDBStore]:
        store = DuckDBStore(self.path)
        self.is_open = True
        try:
            yield store
        finally:
            store.close()
            self.is_open = False

    @contextmanager
    def __call__(self) -> Iterator[DuckDBAlertStore]:
        with self.store() as store:
            yield DuckDBAlertStore(store.con)

    def fire(self, configs: dict[str, AlertsConfig], features: Sequence[str] = ("age",)) -> None:
        """A job round: one bad drift window per feature, stored, then the alert round."""
        docs = [make_metric(0, "alert", feature=f) for f in features]
        with self.store() as store:
            store.write_metrics(docs)
            alert_round(DuckDBAlertStore(store.con), docs, configs, now=NOW)

    def deliveries(self) -> list[Delivery]:
        with self() as store:
            return store.deliveries()


@pytest.fixture
def opener(tmp_path: Path) -> Opener:
    return Opener(tmp_path / "mlmon.duckdb")


def configs(url: str, **kwargs: Any) -> dict[str, AlertsConfig]:
    hook = WebhookConfig(url=url, max_attempts=1, retry_backoff=timedelta(minutes=1),
                         max_retry_backoff=timedelta(minutes=3), **kwargs)
    return {"churn": AlertsConfig(rules=(RULE,), webhook=hook)}


def at(t: datetime) -> Callable[[], datetime]:
    return lambda: t


def test_a_failed_delivery_is_retried_on_later_rounds_with_backoff_under_the_same_key(
        opener: Opener, receiver: Receiver) -> None:
    cfg = configs(receiver.url)
    opener.fire(cfg)
    receiver.statuses = [503, 500]
    first = deliver_outbox(opener, cfg, clock=at(NOW))
    too_soon = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(seconds=59)))
    second = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=1)))
    # after two failed rounds the wait doubled: 2 minutes
    early = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=2)))
    third = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=3)))
    assert [(r.delivered, r.retrying) for r in (first, too_soon, second, early, third)] == [
        (0, 1), (0, 0), (0, 1), (0, 0), (1, 0)]
    assert len(set(receiver.keys())) == 1 and len(receiver.requests) == 3
    assert receiver.requests[0][1] == receiver.requests[2][1]  # the same body on every attempt
    [done] = opener.deliveries()
    assert (done.state, done.attempts, done.delivered_at) == ("delivered", 3, NOW + timedelta(minutes=3))


def test_a_receiver_s_retry_after_is_honoured_over_the_backoff(opener: Opener, receiver: Receiver) -> None:
    cfg = configs(receiver.url)
    opener.fire(cfg)
    receiver.statuses, receiver.retry_after = [429], ["600"]  # come back in 10 minutes
    deliver_outbox(opener, cfg, clock=at(NOW))
    [waiting] = opener.deliveries()
    assert waiting.next_attempt_at == NOW + timedelta(minutes=10)  # not the 1 minute backoff
    assert deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=9))).delivered == 0
    assert deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=10))).delivered == 1


def test_an_alert_never_accepted_expires_loudly_and_is_not_sent_again(
        opener: Opener, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    cfg = configs(receiver.url, expire_after=timedelta(minutes=2))
    opener.fire(cfg)
    receiver.statuses = [500] * 10
    with caplog.at_level(logging.ERROR, logger="mlmon.alerts.outbox"):
        reports = [deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=m))) for m in range(6)]
    # minute 0 fails (next try at 1), minute 1 fails and the next try (3) is past the expiry (2): given up
    assert [(r.retrying, r.expired) for r in reports] == [(1, 0), (0, 1), (0, 0), (0, 0), (0, 0), (0, 0)]
    assert len(receiver.requests) == 2
    [gone] = opener.deliveries()
    assert gone.state == "expired" and "HTTP 500" in gone.last_error
    assert f"alert {gone.alert_id} given up on webhook after 2 tries" in caplog.text
    assert "fired: churn v3 drift/psi feature=age" in caplog.text  # the log says what was lost


def test_deliveries_are_sent_with_the_store_closed(opener: Opener, receiver: Receiver) -> None:
    cfg = configs(receiver.url)
    opener.fire(cfg, features=("age", "income"))
    seen_open: list[bool] = []

    def send(deliveries: Sequence[Delivery], webhook: WebhookConfig) -> list[Outcome]:
        seen_open.append(opener.is_open)
        return post_deliveries(deliveries, webhook)

    report = deliver_outbox(opener, cfg, clock=at(NOW), send=send)
    assert report.delivered == 2 and seen_open == [False]
    assert {d.state for d in opener.deliveries()} == {"delivered"}


def test_a_round_in_flight_holds_its_deliveries_until_its_lease_ends(opener: Opener, receiver: Receiver) -> None:
    cfg = configs(receiver.url, round_timeout_seconds=10)
    opener.fire(cfg)
    with opener() as store:  # a round took them and died before recording anything (kill -9)
        [taken] = store.claim_deliveries(NOW, NOW + timedelta(seconds=10) + LEASE_MARGIN, 100)
    during = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(seconds=14)))
    after = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(seconds=15)))
    assert (during.delivered, after.delivered) == (0, 1)
    assert receiver.keys() == [taken.alert_id]


def test_alerts_of_a_model_whose_webhook_was_removed_wait_instead_of_vanishing(
        opener: Opener, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    cfg = configs(receiver.url)
    opener.fire(cfg)
    other_model = {"fraud": cfg["churn"]}  # churn's webhook is gone from the config; another model has one
    with caplog.at_level(logging.WARNING, logger="mlmon.alerts.outbox"):
        waiting = deliver_outbox(opener, other_model, clock=at(NOW))
    assert (waiting.delivered, waiting.retrying) == (0, 1) and receiver.requests == []
    assert "no webhook configured for the model" in caplog.text
    [pending] = opener.deliveries()
    assert pending.state == "pending" and pending.attempts == 0
    back = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(hours=1)))
    assert back.delivered == 1


def test_no_webhook_anywhere_never_opens_the_store(opener: Opener) -> None:
    def refuse() -> object:
        raise AssertionError("the store was opened")

    assert not deliver_outbox(refuse, {"churn": AlertsConfig()}).any  # type: ignore[arg-type]


def test_a_recovery_held_behind_its_failed_firing_waits_as_long_as_it(opener: Opener, receiver: Receiver) -> None:
    """Within a round a failure holds back the later alerts of its series; they must not then be due
    earlier than it, or a later round sends "recovered" before the "fired" it follows."""
    cfg = configs(receiver.url)
    docs = [make_metric(0, "alert"), make_metric(1, "ok")]
    with opener.store() as store:
        store.write_metrics(docs)
        written = alert_round(DuckDBAlertStore(store.con), docs, cfg, now=NOW).written
    assert [a.action for a in written] == ["fired", "recovered"]
    receiver.statuses = [503]
    deliver_outbox(opener, cfg, clock=at(NOW))
    early = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(seconds=10)))
    later = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=1)))
    assert (early.delivered, later.delivered) == (0, 2)
    actions = [body["alert"]["alert"]["action"] for _, body in receiver.requests]
    assert actions == ["fired", "fired", "recovered"]


def test_a_later_rounds_recovery_waits_behind_its_firing_in_backoff(opener: Opener, receiver: Receiver) -> None:
    """The firing failed in one round and waits in backoff; the recovery, raised by a later round, was due at
    once and went out alone: the receiver saw "recovered" before the "fired" it follows."""
    cfg = configs(receiver.url)
    opener.fire(cfg)  # day 0 bad: fired
    receiver.statuses = [503]
    deliver_outbox(opener, cfg, clock=at(NOW))  # the firing fails: next try a minute later
    with opener.store() as store:  # a later round: day 1 ok recovers the series
        docs = [make_metric(1, "ok")]
        store.write_metrics(docs)
        written = alert_round(DuckDBAlertStore(store.con), docs, cfg, now=NOW + timedelta(seconds=5)).written
    assert [a.action for a in written] == ["recovered"]
    early = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(seconds=10)))
    later = deliver_outbox(opener, cfg, clock=at(NOW + timedelta(minutes=1)))
    assert (early.delivered, later.delivered) == (0, 2)
    actions = [body["alert"]["alert"]["action"] for _, body in receiver.requests]
    assert actions == ["fired", "fired", "recovered"]
