"""``mlmon setup`` against a Kibana that migrates what it imports: a second run imports nothing.

From 9.2 Kibana migrates imported ``search`` objects (Discover sessions: the root attributes
move into a backfilled tab), so an export never equals the file; the "nothing to change"
check must compare what survives the migration. The fake migrates as 9.4 does
(:func:`tests.support.fake_elastic.migrate_saved_object`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlmon.cli.main import main
from mlmon.core.assets import ELASTICSEARCH, KIBANA
from mlmon.stack.kibana_setup import read_ndjson
from tests.support.fake_elastic import FakeElasticsearch, FakeKibana, migrate_saved_object
from tests.support.fake_http import FakeServer

Servers = tuple[FakeServer, FakeServer, FakeKibana]


@pytest.fixture
def servers() -> Iterator[Servers]:
    kibana = FakeKibana()
    with FakeServer(FakeElasticsearch(licence="trial")) as es, FakeServer(kibana) as kb:
        yield es, kb, kibana


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    shutil.copytree(ELASTICSEARCH, tmp_path / "elasticsearch")
    shutil.copytree(KIBANA, tmp_path / "kibana")
    return tmp_path


def _setup(servers: Servers, assets: Path) -> int:
    es, kb, _ = servers
    return main(["setup", "--es", es.url, "--kibana", kb.url, "--assets", str(assets), "--namespace", "prod"])


def _imports(kb: FakeServer, since: int = 0) -> int:
    return sum(1 for r in kb.requests[since:] if r.path == "/api/saved_objects/_import")


def test_the_fake_migrates_searches_as_kibana_9_4_does() -> None:
    search = next(o for o in read_ndjson(KIBANA / "mlmon.ndjson") if o["type"] == "search")
    migrated = migrate_saved_object(search)
    assert set(migrated["attributes"]) == {"title", "description", "tabs"}
    (tab,) = migrated["attributes"]["tabs"]
    assert tab["label"] == "Untitled" and tab["attributes"]["columns"] == search["attributes"]["columns"]
    assert tab["attributes"]["hideTable"] is False  # a schema default the file does not set
    assert migrate_saved_object(search)["attributes"]["tabs"][0]["id"] == tab["id"]  # deterministic (uuidv5)


def test_a_second_setup_imports_nothing_though_kibana_migrated_the_searches(
        servers: Servers, assets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, kb, kibana = servers
    assert _setup(servers, assets) == 0
    assert _imports(kb) == 1
    assert any("tabs" in o["attributes"] for (t, _), o in kibana.objects.items() if t == "search")
    capsys.readouterr()
    before = len(kb.requests)
    assert _setup(servers, assets) == 0
    assert _imports(kb, before) == 0
    assert "nothing to change" in capsys.readouterr().out


def _edit_search(assets: Path, change: dict[str, Any]) -> None:
    path = assets / "kibana" / "mlmon.ndjson"
    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    search = next(o for o in objects if o["type"] == "search")
    search["attributes"].update(change)
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))


@pytest.mark.parametrize("change", [{"columns": ["service.name"]}, {"title": "renamed"}, {"breakdownField": None}])
def test_a_changed_search_is_imported_again(servers: Servers, assets: Path, change: dict[str, Any]) -> None:
    _, kb, _ = servers
    assert _setup(servers, assets) == 0
    _edit_search(assets, change)
    before = len(kb.requests)
    assert _setup(servers, assets) == 0
    assert _imports(kb, before) == 1
