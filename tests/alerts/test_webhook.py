"""Webhook delivery against a real HTTP server on 127.0.0.1: payload, retries, failures that never raise."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest

from mlmon.alerts.engine import evaluate
from mlmon.config.alerts import Rule, WebhookConfig
from mlmon.alerts.channels.webhook import make_session, post_alerts
from tests.alerts.conftest import T0, Receiver, series

RULE = Rule("drift", ("drift",), n=1, m=1, renotify_every=None)
ALERTS = evaluate(series(["alert", "ok"]), [RULE], {}, now=T0 + timedelta(days=5))


def fast(config: WebhookConfig) -> object:
    return make_session(config, backoff_factor=0.01)


def test_each_alert_is_posted_as_json_with_an_idempotency_key(receiver: Receiver) -> None:
    config = WebhookConfig(url=receiver.url, headers={"Authorization": "Bearer s3cret"})
    report = post_alerts(ALERTS, config)
    assert (report.delivered, report.failed) == (2, 0)
    (h1, b1), (_, b2) = receiver.requests
    assert h1["content-type"] == "application/json" and h1["authorization"] == "Bearer s3cret"
    assert h1["idempotency-key"] == ALERTS[0].id == b1["alert"]["alert"]["id"]
    assert b1["text"].startswith("fired: churn v3 drift/psi feature=age is alert")
    assert [b1["alert"]["alert"]["action"], b2["alert"]["alert"]["action"]] == ["fired", "recovered"]


def test_transient_errors_are_retried_with_backoff(receiver: Receiver) -> None:
    receiver.statuses = [503, 429]
    config = WebhookConfig(url=receiver.url, max_attempts=3)
    report = post_alerts(ALERTS[:1], config, session=fast(config))  # type: ignore[arg-type]
    assert (report.delivered, report.failed) == (1, 0)
    assert len(receiver.requests) == 3
    assert {h["idempotency-key"] for h, _ in receiver.requests} == {ALERTS[0].id}


def test_a_receiver_that_keeps_failing_is_logged_and_the_next_alert_still_goes(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [500, 500, 400]
    config = WebhookConfig(url=receiver.url, max_attempts=2)
    with caplog.at_level(logging.ERROR, logger="mlmon.alerts.channels.webhook"):
        report = post_alerts(ALERTS, config, session=fast(config))  # type: ignore[arg-type]
    # alert 1: 500, 500 -> gives up; alert 2: 400 is not retried
    assert (report.delivered, report.failed) == (0, 2)
    assert len(receiver.requests) == 3
    assert ALERTS[0].id in caplog.text and "HTTP 500" in caplog.text and "HTTP 400" in caplog.text


def test_unreachable_receiver_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = WebhookConfig(url=f"http://127.0.0.1:{port}/hook", max_attempts=2, timeout_seconds=1)
    with caplog.at_level(logging.ERROR, logger="mlmon.alerts.channels.webhook"):
        report = post_alerts(ALERTS[:1], config, session=fast(config))  # type: ignore[arg-type]
    assert (report.delivered, report.failed) == (0, 1)
    assert "webhook delivery failed after 2 attempts" in caplog.text
