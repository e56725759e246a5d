"""Webhook delivery against real HTTP servers on 127.0.0.1: payload, in-round retries, total deadlines."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

from mlmon.alerts.channels.webhook import post_deliveries
from mlmon.alerts.engine import evaluate
from mlmon.config.alerts import Rule, WebhookConfig
from mlmon.core.alerts import Delivery
from tests.alerts.conftest import T0, Receiver, Trickler, series

RULE = Rule("drift", ("drift",), n=1, m=1, renotify_every=None)
ALERTS = evaluate(series(["alert", "ok"]), [RULE], {}, now=T0 + timedelta(days=5))
NOW = T0 + timedelta(days=5)
DELIVERIES = [Delivery.of(a, "webhook", created_at=NOW, expires_at=NOW + timedelta(days=1)) for a in ALERTS]


def test_each_alert_is_posted_as_json_with_an_idempotency_key(receiver: Receiver) -> None:
    config = WebhookConfig(url=receiver.url, headers={"Authorization": "Bearer s3cret"})
    outcomes = post_deliveries(DELIVERIES, config)
    assert [o.delivered for o in outcomes] == [True, True]
    (h1, b1), (_, b2) = receiver.requests
    assert h1["content-type"] == "application/json" and h1["authorization"] == "Bearer s3cret"
    assert h1["idempotency-key"] == ALERTS[0].id == b1["alert"]["alert"]["id"]
    assert b1["text"].startswith("fired: churn v3 drift/psi feature=age is alert")
    assert [b1["alert"]["alert"]["action"], b2["alert"]["alert"]["action"]] == ["fired", "recovered"]


def test_transient_errors_are_retried_within_the_round(receiver: Receiver) -> None:
    receiver.statuses = [503, 429]
    config = WebhookConfig(url=receiver.url, max_attempts=3)
    [outcome] = post_deliveries(DELIVERIES[:1], config, backoff=0.01)
    assert outcome.delivered
    assert len(receiver.requests) == 3
    assert {h["idempotency-key"] for h, _ in receiver.requests} == {ALERTS[0].id}


def test_a_failed_alert_holds_back_the_later_alerts_of_its_series(receiver: Receiver) -> None:
    receiver.statuses = [500, 500]
    config = WebhookConfig(url=receiver.url, max_attempts=2)
    fired, recovered = post_deliveries(DELIVERIES, config, backoff=0.01)
    # the recovery must not reach the receiver before the alert it recovers from
    assert (fired.delivered, fired.transient, fired.error[:8]) == (False, True, "HTTP 500")
    assert (recovered.delivered, recovered.skipped) == (False, True)
    assert len(receiver.requests) == 2


def test_a_refusal_is_not_retried_within_the_round(receiver: Receiver) -> None:
    receiver.statuses = [400]
    config = WebhookConfig(url=receiver.url, max_attempts=4)
    [outcome] = post_deliveries(DELIVERIES[:1], config, backoff=0.01)
    assert (outcome.delivered, outcome.transient) == (False, False) and "HTTP 400" in outcome.error
    assert len(receiver.requests) == 1


def test_unreachable_receiver_never_raises() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = WebhookConfig(url=f"http://127.0.0.1:{port}/hook", max_attempts=2, timeout_seconds=1)
    [outcome] = post_deliveries(DELIVERIES[:1], config, backoff=0.01)
    assert not outcome.delivered and outcome.transient and "Connect" in outcome.error


def test_a_trickling_receiver_is_cut_off_at_the_total_timeout(trickler: Trickler) -> None:
    # One byte a second keeps every single read under any per-read timeout: only a total deadline ends it.
    config = WebhookConfig(url=trickler.url, timeout_seconds=1, max_attempts=1, round_timeout_seconds=30)
    started = time.monotonic()
    [outcome] = post_deliveries(DELIVERIES[:1], config)
    took = time.monotonic() - started
    assert not outcome.delivered and "no complete answer within 1 s" in outcome.error
    assert took < 2.5, f"one POST took {took:.1f} s with timeout_seconds=1"
    assert trickler.connections == 1


def test_the_round_deadline_bounds_all_the_posts_of_a_round(trickler: Trickler) -> None:
    config = WebhookConfig(url=trickler.url, timeout_seconds=1, max_attempts=3, round_timeout_seconds=2)
    started = time.monotonic()
    outcomes = post_deliveries(_other_series(6), config, backoff=0.01)
    took = time.monotonic() - started
    assert took < 3.5, f"a round took {took:.1f} s with round_timeout_seconds=2"
    assert not any(o.delivered for o in outcomes)
    assert 1 <= trickler.connections <= 3  # about round / timeout POSTs, then the round is over
    assert [o.skipped and "ran out" in o.error for o in outcomes][-3:] == [True] * 3


def _other_series(n: int) -> list[Delivery]:
    out = []
    for i in range(n):
        [alert] = evaluate(series(["alert"], feature=f"f{i}"), [RULE], {}, now=NOW)
        out.append(Delivery.of(alert, "webhook", created_at=NOW, expires_at=NOW + timedelta(days=1)))
    return out
