"""POST alerts to a webhook: retried with backoff, failures logged, never raised.

One JSON request per alert: ``{"text": <one-line reason>, "alert": <alert document>}``.
``text`` makes Slack / Mattermost / Teams-style incoming webhooks readable as is;
``alert`` carries the full document for anything smarter. The ``Idempotency-Key``
header is the alert id, so a receiver can drop a retry it already handled.

Retries use urllib3's ``Retry`` (exponential backoff, honours ``Retry-After``)
instead of a hand-written loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mlmon.core.alerts import Alert
from mlmon.config.alerts import WebhookConfig

log = logging.getLogger(__name__)

#: Statuses worth retrying: rate limiting and transient server / proxy errors.
RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int


def make_session(config: WebhookConfig, backoff_factor: float = 0.5) -> requests.Session:
    retry = Retry(
        total=config.max_attempts - 1,
        connect=config.max_attempts - 1,
        read=config.max_attempts - 1,
        status=config.max_attempts - 1,
        backoff_factor=backoff_factor,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # POST too: the Idempotency-Key makes a retry safe for the receiver
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": "mlmon-alerts", **config.headers})
    return session


def post_alerts(alerts: Sequence[Alert], config: WebhookConfig, *,
                session: requests.Session | None = None) -> DeliveryReport:
    """Deliver each alert; a failure is logged with the alert id and the others still go out."""
    if not alerts:
        return DeliveryReport(0, 0)
    own = session is None
    http = session or make_session(config)
    delivered = failed = 0
    try:
        for alert in alerts:
            if _post_one(http, alert, config):
                delivered += 1
            else:
                failed += 1
    finally:
        if own:
            http.close()
    return DeliveryReport(delivered, failed)


def _post_one(http: requests.Session, alert: Alert, config: WebhookConfig) -> bool:
    try:
        response = http.post(config.url, json={"text": alert.reason, "alert": alert.to_source()},
                             headers={"Idempotency-Key": alert.id}, timeout=config.timeout_seconds)
    except requests.RequestException as exc:
        log.error("webhook delivery failed after %d attempts: alert %s (%s): %s",
                  config.max_attempts, alert.id, alert.reason, exc)
        return False
    if response.status_code >= 300:
        log.error("webhook answered HTTP %d for alert %s (%s): %s",
                  response.status_code, alert.id, alert.reason, response.text[:500])
        return False
    return True
