"""Connect to Elasticsearch: the official client, credentials from flags or environment, retries with backoff.

Everything in mlmon that talks to Elasticsearch gets its client from :func:`connect`,
so authentication, TLS and the retry policy live in this one place::

    from mlmon.stores.elasticsearch.client import connect, check_connection
    es = connect("https://localhost:9200")          # MLMON_ES_API_KEY etc. from the environment
    info = check_connection(es)                       # clear error if unreachable / unauthorised

Retry policy. elastic-transport already retries connection errors (and, when
asked, timeouts) with jittered exponential backoff, and retries HTTP 429/502/503/504
— but it retries those *statuses* immediately, with no pause, which turns a
cluster pushing back (429: search/write queue full) into a burst of identical
requests. :class:`BackoffTransport` adds the missing pause for retried statuses
(honouring ``Retry-After`` when the server or a proxy sends one) and leaves the
rest to elastic-transport.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import elastic_transport
import elasticsearch
from elastic_transport import Transport, TransportApiResponse
from elastic_transport.client_utils import DEFAULT, DefaultType

from mlmon.stores.elasticsearch.versions import SUPPORTED_MAJOR

_log = logging.getLogger(__name__)

ENV_API_KEY = "MLMON_ES_API_KEY"
ENV_USERNAME = "MLMON_ES_USERNAME"
ENV_PASSWORD = "MLMON_ES_PASSWORD"
ENV_CA_CERTS = "MLMON_ES_CA_CERTS"

#: HTTP statuses worth retrying: overloaded (429) or a proxy/node in trouble.
RETRY_STATUSES: tuple[int, ...] = (429, 502, 503, 504)
MAX_RETRIES = 5
#: Backoff: jittered exponential from BASE seconds, never more than CAP per pause.
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


class ElasticsearchSetupError(RuntimeError):
    """Elasticsearch cannot be used as configured; the message says what to fix."""


def _resolve(value: Any, default: Any) -> Any:
    return default if value is DEFAULT else value


def _retry_after(headers: Mapping[str, str], cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), capped; None if absent or unparseable."""
    raw = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return None if raw is None else min(max(float(raw), 0.0), cap)
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


class BackoffTransport(Transport):
    """elastic-transport's Transport plus a backoff pause before retrying a retryable *status*.

    Connection errors and timeouts are retried by the parent (with its own backoff);
    statuses are handled here: the parent is called with ``retry_on_status=()`` and
    this loop retries up to ``max_retries`` times with jittered exponential backoff.
    """

    #: Indirection so tests can observe pauses without sleeping.
    sleep = staticmethod(time.sleep)

    def perform_request(
        self,
        method: str,
        target: str,
        *,
        max_retries: int | DefaultType = DEFAULT,
        retry_on_status: Collection[int] | DefaultType = DEFAULT,
        retry_backoff_base: float | DefaultType = DEFAULT,
        retry_backoff_cap: float | DefaultType = DEFAULT,
        **kwargs: Any,
    ) -> TransportApiResponse:
        retries: int = _resolve(max_retries, self.max_retries)
        statuses: Collection[int] = _resolve(retry_on_status, self.retry_on_status)
        base: float = _resolve(retry_backoff_base, self.retry_backoff_base)
        cap: float = _resolve(retry_backoff_cap, self.retry_backoff_cap)
        attempt = 0
        while True:
            response = super().perform_request(
                method, target, max_retries=retries, retry_on_status=(),
                retry_backoff_base=base, retry_backoff_cap=cap, **kwargs)
            if response.meta.status not in statuses or attempt >= retries:
                return response
            attempt += 1
            pause = _retry_after(response.meta.headers, cap)
            if pause is None:
                pause = elastic_transport._transport.backoff_time(attempt, base, cap)
            _log.warning("Elasticsearch answered %s to %s %s; retry %d of %d in %.1fs",
                         response.meta.status, method, target, attempt, retries, pause)
            self.sleep(pause)


def connect(
    url: str,
    *,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
    verify_certs: bool = True,
    request_timeout: float = 30.0,
    max_retries: int = MAX_RETRIES,
) -> elasticsearch.Elasticsearch:
    """Build the official client for ``url``.

    Credentials not given fall back to ``MLMON_ES_API_KEY``, ``MLMON_ES_USERNAME``,
    ``MLMON_ES_PASSWORD`` and ``MLMON_ES_CA_CERTS``. An API key wins over basic
    auth when both are configured by the environment; passing both explicitly is
    an error. No request is made: call :func:`check_connection` to verify.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ElasticsearchSetupError(f"Elasticsearch URL must look like https://host:9200, got {url!r}")
    if parts.username or parts.password:
        raise ElasticsearchSetupError(
            "do not put credentials in the Elasticsearch URL (they end up in logs); "
            f"use --api-key / --username, or {ENV_API_KEY} / {ENV_USERNAME} + {ENV_PASSWORD}")
    if api_key and (username or password):
        raise ElasticsearchSetupError("give either an API key or a username/password, not both")
    if not (username or password):
        api_key = api_key or os.environ.get(ENV_API_KEY) or None
    if not api_key:
        username = username or os.environ.get(ENV_USERNAME) or None
        password = password or os.environ.get(ENV_PASSWORD) or None
        if bool(username) != bool(password):
            raise ElasticsearchSetupError(
                f"basic auth needs both a username and a password ({ENV_USERNAME}, {ENV_PASSWORD})")
    ca_certs = ca_certs or os.environ.get(ENV_CA_CERTS) or None
    if ca_certs is not None and not Path(ca_certs).is_file():
        raise ElasticsearchSetupError(f"CA certificate file {ca_certs!r} does not exist")
    if parts.scheme == "http" and (api_key or username):
        _log.warning("sending Elasticsearch credentials over plain http to %s", parts.hostname)

    options: dict[str, Any] = {
        "request_timeout": request_timeout,
        "max_retries": max_retries,
        "retry_on_status": RETRY_STATUSES,
        "retry_on_timeout": True,
        "retry_backoff_base": BACKOFF_BASE_S,
        "retry_backoff_cap": BACKOFF_CAP_S,
        "transport_class": BackoffTransport,
    }
    if api_key:
        options["api_key"] = api_key
    elif username and password:
        options["basic_auth"] = (username, password)
    if parts.scheme == "https":
        options["verify_certs"] = verify_certs
        if ca_certs:
            options["ca_certs"] = ca_certs
        if not verify_certs:
            options["ssl_show_warn"] = False
            _log.warning("TLS certificate verification is OFF for %s", url)
    return elasticsearch.Elasticsearch(url, **options)


@dataclass(frozen=True)
class ClusterInfo:
    cluster_name: str
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def error_reason(exc: elasticsearch.ApiError) -> str:
    """``type: reason`` from an Elasticsearch error body (``exc.message`` alone is only the type)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', exc.message)}: {error.get('reason', '')}".rstrip(": ")
    return str(error or exc.message)


def check_connection(es: elasticsearch.Elasticsearch) -> ClusterInfo:
    """``GET /``; turns the usual failures into one :class:`ElasticsearchSetupError` saying what to fix."""
    try:
        info = es.info()
    except elasticsearch.AuthenticationException as exc:
        raise ElasticsearchSetupError(
            f"Elasticsearch rejected the credentials (401): set {ENV_API_KEY}, or "
            f"{ENV_USERNAME} and {ENV_PASSWORD}") from exc
    except elasticsearch.AuthorizationException as exc:
        raise ElasticsearchSetupError(f"the Elasticsearch user may not read cluster info (403): {error_reason(exc)}") from exc
    except elastic_transport.TlsError as exc:
        raise ElasticsearchSetupError(
            f"TLS handshake with Elasticsearch failed ({exc.message}); pass the cluster's CA with "
            f"--ca-certs or {ENV_CA_CERTS}") from exc
    except elastic_transport.ConnectionError as exc:
        raise ElasticsearchSetupError(f"cannot reach Elasticsearch: {exc.message}") from exc
    except elasticsearch.ApiError as exc:
        raise ElasticsearchSetupError(f"Elasticsearch answered {exc.meta.status} to GET /: {error_reason(exc)}") from exc
    version = str(info["version"]["number"])
    found = ClusterInfo(str(info.get("cluster_name", "")), version)
    if found.major < SUPPORTED_MAJOR:
        raise ElasticsearchSetupError(f"mlmon needs Elasticsearch {SUPPORTED_MAJOR}.x, found {version}")
    return found
