"""POST alerts to a webhook within deadlines: one POST, and all of a round's POSTs.

One JSON request per alert: ``{"text": <one-line reason>, "alert": <alert document>}``.
``text`` makes Slack / Mattermost / Teams-style incoming webhooks readable as is;
``alert`` carries the full document for anything smarter. The ``Idempotency-Key``
header is the alert id, the same on every attempt of every round, so a receiver
can drop a retry it already handled.

Deadlines are total, not per socket read: a receiver answering one byte a second
would otherwise keep a round for ever (``requests``/``urllib3`` timeouts apply to each
read). httpx in asyncio under ``asyncio.timeout`` cancels the whole exchange at the
deadline and closes the connection. Nothing here touches the store: the caller
sends outside the store's lock and records the outcomes afterwards.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

from mlmon.config.alerts import WebhookConfig
from mlmon.core.alerts import Delivery

log = logging.getLogger(__name__)

CHANNEL = "webhook"
#: Statuses worth a second POST within the round: rate limiting and transient server / proxy errors.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: First pause between two POSTs of one alert within a round (doubles), in seconds.
IN_ROUND_BACKOFF = 0.5


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery this round."""

    delivery: Delivery
    delivered: bool
    #: Not tried: the round's deadline came first, or an earlier alert of its series failed.
    skipped: bool = False
    error: str = ""
    #: Worth another POST soon (rate limited, 5xx, timeout, no connection), unlike e.g. a 400.
    transient: bool = False
    #: Seconds the receiver asked to wait (``Retry-After``), if it did.
    retry_after: float | None = None


def post_deliveries(deliveries: Sequence[Delivery], config: WebhookConfig, *,
                    backoff: float = IN_ROUND_BACKOFF) -> list[Outcome]:
    """POST each delivery in order (oldest first) within ``config.round_timeout_seconds`` in all.

    Returns one outcome per delivery, never raises for a receiver's failure. A series' alerts keep
    their order: after one fails, the later ones of that series wait for a later round.
    """
    if not deliveries:
        return []
    return asyncio.run(_post_all(deliveries, config, backoff))


async def _post_all(deliveries: Sequence[Delivery], config: WebhookConfig, backoff: float) -> list[Outcome]:
    outcomes: dict[str, Outcome] = {}
    held: set[str] = set()  # series with a failed alert this round
    round_end = time.monotonic() + config.round_timeout_seconds
    headers = {"User-Agent": "mlmon-alerts", **config.headers}
    async with httpx.AsyncClient(headers=headers, follow_redirects=False) as client:
        for delivery in deliveries:
            if time.monotonic() >= round_end:
                break
            if delivery.series_id in held:
                outcomes[delivery.key] = Outcome(delivery, False, skipped=True,
                                                 error="held back: an earlier alert of its series failed")
                continue
            outcome = await _post_with_retries(client, delivery, config, round_end, backoff)
            outcomes[delivery.key] = outcome
            if not outcome.delivered:
                held.add(delivery.series_id)
    late = f"not tried: the round's {config.round_timeout_seconds:g} s for this webhook ran out"
    return [outcomes.get(d.key) or Outcome(d, False, skipped=True, error=late) for d in deliveries]


async def _post_with_retries(client: httpx.AsyncClient, delivery: Delivery, config: WebhookConfig,
                             round_end: float, backoff: float) -> Outcome:
    pause, attempt = backoff, 1
    while True:
        outcome = await _post_once(client, delivery, config, round_end)
        if outcome.delivered or not outcome.transient or attempt >= config.max_attempts:
            return outcome
        wait = max(pause, outcome.retry_after or 0.0)
        if time.monotonic() + wait >= round_end:
            return outcome  # no time left this round: a later round tries again
        await asyncio.sleep(wait)
        pause, attempt = pause * 2, attempt + 1


async def _post_once(client: httpx.AsyncClient, delivery: Delivery, config: WebhookConfig,
                     round_end: float) -> Outcome:
    budget = min(config.timeout_seconds, round_end - time.monotonic())
    if budget <= 0:
        return Outcome(delivery, False, skipped=True, error="not tried: the round's deadline passed")
    try:
        async with asyncio.timeout(budget):
            response = await client.post(str(config.url), json=dict(delivery.payload),
                                         headers={"Idempotency-Key": delivery.alert_id}, timeout=budget)
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(delivery, False, error=f"no complete answer within {budget:.3g} s", transient=True)
    except httpx.HTTPError as exc:
        return Outcome(delivery, False, error=f"{type(exc).__name__}: {exc}", transient=True)
    if response.is_success:
        return Outcome(delivery, True)
    transient = response.status_code in RETRY_STATUSES
    return Outcome(delivery, False, error=f"HTTP {response.status_code}: {response.text[:300]}",
                   transient=transient, retry_after=_retry_after(response) if transient else None)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
