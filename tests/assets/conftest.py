"""Fixtures for the Elasticsearch asset, client and `mlmon setup` tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmon.stores.elasticsearch.client import ENV_API_KEY, ENV_CA_CERTS, ENV_PASSWORD, ENV_USERNAME
from mlmon.core.assets import ELASTICSEARCH
from tests.support.fake_elastic import FakeElasticsearch
from tests.support.fake_http import FakeServer


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests decide the credentials; a developer's exported MLMON_ES_* must not leak in."""
    for name in (ENV_API_KEY, ENV_USERNAME, ENV_PASSWORD, ENV_CA_CERTS, "MLMON_KIBANA_URL"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    """A directory holding a copy of the real elasticsearch/ assets, for ``mlmon setup --assets``."""
    shutil.copytree(ELASTICSEARCH, tmp_path / "elasticsearch")
    return tmp_path


@pytest.fixture
def trial_es() -> Iterator[tuple[FakeServer, FakeElasticsearch]]:
    """A fake Elasticsearch on a trial licence (Watcher allowed), served over HTTP."""
    state = FakeElasticsearch(licence="trial")
    with FakeServer(state) as server:
        yield server, state
