"""mlmon.stores.elasticsearch.client against a local fake Elasticsearch: credentials, retries with backoff, clear errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from mlmon.stores.elasticsearch.client import (BACKOFF_CAP_S, BackoffTransport, ElasticsearchSetupError, check_connection,
                             connect)
from tests.support.fake_http import FakeServer, Reply, Request, es_error, es_reply

INFO = {"name": "es01", "cluster_name": "docker-cluster", "cluster_uuid": "x",
        "version": {"number": "9.2.1", "build_flavor": "default", "lucene_version": "10.3.1"},
        "tagline": "You Know, for Search"}


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    slept: list[float] = []
    monkeypatch.setattr(BackoffTransport, "sleep", staticmethod(slept.append))
    yield slept


def _info_handler(req: Request) -> Reply:
    return es_reply(INFO)


def test_api_key_from_environment_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMON_ES_API_KEY", "a2V5OnNlY3JldA==")
    with FakeServer(_info_handler) as server:
        info = check_connection(connect(server.url))
    assert (info.version, info.major, info.cluster_name) == ("9.2.1", 9, "docker-cluster")
    assert server.requests[0].headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="


def test_explicit_basic_auth_beats_environment_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMON_ES_API_KEY", "ignored")
    with FakeServer(_info_handler) as server:
        check_connection(connect(server.url, username="elastic", password="pw"))
    expected = "Basic " + base64.b64encode(b"elastic:pw").decode()
    assert server.requests[0].headers["authorization"] == expected


@pytest.mark.parametrize("kwargs, message", [
    ({"api_key": "k", "username": "u", "password": "p"}, "not both"),
    ({"username": "u"}, "needs both a username and a password"),
    ({"ca_certs": "/nonexistent/ca.crt"}, "does not exist"),
])
def test_inconsistent_credentials_are_refused_before_any_request(kwargs: dict, message: str) -> None:
    with pytest.raises(ElasticsearchSetupError, match=message):
        connect("https://localhost:9200", **kwargs)


@pytest.mark.parametrize("url", ["localhost:9200", "ftp://host", "https://user:pw@host:9200"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ElasticsearchSetupError):
        connect(url)


def test_429_is_retried_with_growing_backoff_then_succeeds(pauses: list[float]) -> None:
    answers = [es_error(429, "es_rejected_execution_exception", "queue full")] * 3 + [es_reply(INFO)]
    with FakeServer(lambda req: answers.pop(0)) as server:
        check_connection(connect(server.url))
    assert len(server.requests) == 4
    assert len(pauses) == 3
    # Equal-jitter exponential backoff from 0.5 s: attempt n pauses in [base*2^(n-1)/2, base*2^(n-1)].
    for n, pause in enumerate(pauses, start=1):
        ceiling = min(BACKOFF_CAP_S, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 <= pause <= ceiling


def test_retry_after_header_is_honoured(pauses: list[float]) -> None:
    answers = [es_reply({"error": "busy"}, 503, {"Retry-After": "7"}), es_reply(INFO)]
    with FakeServer(lambda req: answers.pop(0)) as server:
        check_connection(connect(server.url))
    assert pauses == [7.0]


def test_retries_are_bounded_and_the_last_error_is_clear(pauses: list[float]) -> None:
    with FakeServer(lambda req: es_error(503, "unavailable_shards_exception", "primary shard is not active")) as server:
        with pytest.raises(ElasticsearchSetupError, match="503.*primary shard is not active"):
            check_connection(connect(server.url, max_retries=2))
    assert len(server.requests) == 3
    assert len(pauses) == 2


def test_client_errors_are_not_retried(pauses: list[float]) -> None:
    with FakeServer(lambda req: es_error(401, "security_exception", "unable to authenticate")) as server:
        with pytest.raises(ElasticsearchSetupError, match="rejected the credentials"):
            check_connection(connect(server.url, api_key="bad"))
    assert len(server.requests) == 1
    assert pauses == []


def test_unreachable_cluster_gives_a_clear_error(pauses: list[float]) -> None:
    with FakeServer(_info_handler) as server:
        url = server.url  # the port is closed once the server stops
    with pytest.raises(ElasticsearchSetupError, match="cannot reach Elasticsearch"):
        check_connection(connect(url, max_retries=1, request_timeout=2))


def test_pre_9_clusters_are_refused() -> None:
    old = {**INFO, "version": {"number": "8.17.0"}}
    with FakeServer(lambda req: es_reply(old)) as server:
        with pytest.raises(ElasticsearchSetupError, match="needs Elasticsearch 9"):
            check_connection(connect(server.url))
