"""Fixtures for the Elasticsearch asset, client and `mlmon setup` tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlmon.es_client import ENV_API_KEY, ENV_CA_CERTS, ENV_PASSWORD, ENV_USERNAME


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests decide the credentials; a developer's exported MLMON_ES_* must not leak in."""
    for name in (ENV_API_KEY, ENV_USERNAME, ENV_PASSWORD, ENV_CA_CERTS, "MLMON_KIBANA_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
