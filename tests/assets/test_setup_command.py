"""``mlmon setup`` at the HTTP edge: the requests it makes, idempotency, licence awareness, Kibana."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmon.cli.main import main
from mlmon.stack.installer import FINGERPRINT_KEY, TEMPLATE_FINGERPRINT_KEY
from mlmon.core.assets import ELASTICSEARCH
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_elastic import FakeElasticsearch, FakeKibana
from tests.support.fake_http import FakeServer, Request, es_error

RULE = {"id": "mlmon-drift-alert", "name": "mlmon drift alert", "rule_type_id": ".es-query", "consumer": "stackAlerts",
        "schedule": {"interval": "5m"}, "tags": ["mlmon"],
        "params": {"searchType": "esQuery", "index": ["mlmon-metrics*"], "timeField": "@timestamp",
                   "esQuery": "{\"query\":{\"term\":{\"metric.status\":\"alert\"}}}", "size": 10,
                   "threshold": [0], "thresholdComparator": ">", "timeWindowSize": 5, "timeWindowUnit": "m"},
        "actions": []}
DATA_VIEW = {"type": "index-pattern", "id": "mlmon-metrics", "attributes": {"title": "mlmon-metrics*",
                                                                           "timeFieldName": "@timestamp"},
             "references": []}


@pytest.fixture
def assets(assets: Path) -> Path:
    """The real elasticsearch/ assets (watches included) and a small kibana/ of our own."""
    (assets / "kibana" / "rules").mkdir(parents=True)
    (assets / "kibana" / "mlmon.ndjson").write_text(json.dumps(DATA_VIEW) + "\n")
    (assets / "kibana" / "rules" / "drift.json").write_text(json.dumps(RULE))
    return assets


@pytest.fixture
def kibana() -> Iterator[tuple[FakeServer, FakeKibana]]:
    state = FakeKibana()
    with FakeServer(state) as server:
        yield server, state


def _setup(es: FakeServer, assets: Path, *extra: str, kibana: FakeServer | None = None) -> int:
    args = ["setup", "--es", es.url, "--assets", str(assets), "--namespace", "prod", *extra]
    if kibana is not None:
        args += ["--kibana", kibana.url]
    return main(args)


def _files(assets: Path, directory: str) -> list[str]:
    return sorted(p.stem for p in (assets / "elasticsearch" / directory).glob("*.json"))


def test_first_run_installs_everything_in_dependency_order(assets: Path, trial_es, kibana, capsys) -> None:
    es, state = trial_es
    assert _setup(es, assets, kibana=kibana[0]) == 0
    month = datetime.now(timezone.utc).strftime("%Y.%m.01")  # this month's event indices
    writes = [(r.method, r.path) for r in es.writes()]
    expected = (
        [("PUT", f"/_ilm/policy/{n}") for n in _files(assets, "ilm")]
        + [("PUT", f"/_component_template/{n}") for n in _files(assets, "component_templates")]
        + [("PUT", f"/_index_template/{n}") for n in _files(assets, "index_templates")]
        + [("PUT", f"/_security/role/{n}") for n in _files(assets, "roles")]
        + [("PUT", f"/logs-mlmon.{k}-prod-{month}")
           for k in ("prediction", "feedback", "explanation", "emitter", "prediction_error", "deadletter")]
        + [("PUT", f"/{i}") for i in ("mlmon-metrics", "mlmon-alerts", "mlmon-references", "mlmon-checkpoints",
                                                   "mlmon-outbox")]
        + [("PUT", f"/_watcher/watch/{n}") for n in _files(assets, "watcher")]
    )
    assert writes == expected
    assert _files(assets, "watcher"), "the watcher helper's watches should be there to install"
    # Each body is the file, plus the fingerprint in the API's metadata field.
    sent = {r.path: r.json for r in es.writes()}
    on_disk = json.loads((assets / "elasticsearch/index_templates/logs-mlmon.prediction.json").read_text())
    body = sent["/_index_template/logs-mlmon.prediction"]
    assert body["_meta"].pop(FINGERPRINT_KEY)
    # An index template also carries its composed fingerprint, for the mappings of the indices made from it.
    mappings = body["template"].pop("mappings")
    assert set(mappings) == {"_meta"} and set(mappings["_meta"]) == {TEMPLATE_FINGERPRINT_KEY}
    assert re.fullmatch(r"[0-9a-f]{20}", mappings["_meta"][TEMPLATE_FINGERPRINT_KEY])
    assert body == on_disk
    assert sent["/_security/role/mlmon_viewer"]["metadata"][FINGERPRINT_KEY]
    assert sent["/_ilm/policy/mlmon-events"]["policy"]["_meta"][FINGERPRINT_KEY]
    assert "created" in capsys.readouterr().out


def test_second_run_writes_nothing_and_says_so(assets: Path, trial_es, kibana, capsys) -> None:
    es, _ = trial_es
    kb, _ = kibana
    assert _setup(es, assets, kibana=kb) == 0
    first_es, first_kb = len(es.requests), len(kb.requests)
    capsys.readouterr()
    assert _setup(es, assets, kibana=kb) == 0
    assert [r for r in es.writes()[len(es.writes()):]] == []
    assert all(r.method in ("GET", "HEAD") for r in es.requests[first_es:])
    # The saved-objects export is a POST that reads; nothing else but reads reaches Kibana.
    assert [(r.method, r.path) for r in kb.requests[first_kb:] if r.method != "GET"] == [
        ("POST", "/api/saved_objects/_export")]
    assert "nothing to change" in capsys.readouterr().out


def test_a_changed_retention_updates_only_that_policy(assets: Path, trial_es) -> None:
    es, state = trial_es
    assert _setup(es, assets) == 0
    before = len(es.requests)
    assert _setup(es, assets, "--retention", "events=400d") == 0
    writes = [(r.method, r.path, r.json) for r in es.requests[before:] if r.method not in ("GET", "HEAD")]
    assert [(m, p) for m, p, _ in writes] == [("PUT", "/_ilm/policy/mlmon-events")]
    # Every event kept 400 days: its month's index goes 400 + 31 days after the month's first day.
    assert writes[0][2]["policy"]["phases"]["delete"]["min_age"] == "431d"
    assert writes[0][2]["policy"]["_meta"]["retention"] == "400d"


def test_hand_edited_template_in_the_cluster_is_restored(assets: Path, trial_es) -> None:
    es, state = trial_es
    assert _setup(es, assets) == 0
    state.component_templates["mlmon-ecs@mappings"]["_meta"][FINGERPRINT_KEY] = "edited-by-hand"
    before = len(es.requests)
    assert _setup(es, assets) == 0
    assert [(r.method, r.path) for r in es.requests[before:] if r.method == "PUT"] == [
        ("PUT", "/_component_template/mlmon-ecs@mappings")]


def test_basic_licence_skips_watches_with_a_clear_message(assets: Path, capsys) -> None:
    state = FakeElasticsearch(licence="basic")
    with FakeServer(state) as es:
        assert _setup(es, assets) == 0
    assert not any("/_watcher/" in r.path for r in es.requests)
    out = capsys.readouterr().out
    assert re.search(r"skipped\s+watch .*Gold, Platinum or Enterprise", out)


def test_dry_run_reads_but_never_writes(assets: Path, trial_es, capsys) -> None:
    es, _ = trial_es
    assert _setup(es, assets, "--dry-run") == 0
    assert es.writes() == []
    assert "would create" in capsys.readouterr().out


def test_refused_asset_fails_naming_the_file(assets: Path, capsys) -> None:
    state = FakeElasticsearch()

    def handler(req: Request):
        if req.method == "PUT" and req.path == "/_index_template/mlmon-metrics":
            return es_error(400, "illegal_argument_exception", "composable template [mlmon-metrics] has conflicts")
        return state(req)

    with FakeServer(handler) as es:
        assert _setup(es, assets) == 1
    err = capsys.readouterr().err
    assert "index template mlmon-metrics" in err and "mlmon-metrics.json" in err and "has conflicts" in err


def test_bad_arguments_exit_2(assets: Path, capsys) -> None:
    assert main(["setup", "--es", "http://127.0.0.1:9", "--namespace", "Prod-1"]) == 2
    assert main(["setup", "--es", "http://127.0.0.1:9", "--retention", "events=forever"]) == 2
    assert main(["setup", "--es", "http://127.0.0.1:9", "--retention", "nosuch=3d"]) == 2
    err = capsys.readouterr().err
    assert "--namespace" in err and "POLICY=AGE" in err and "unknown policy" in err


def test_kibana_import_and_rules(assets: Path, trial_es, kibana) -> None:
    es, _ = trial_es
    kb, state = kibana
    assert _setup(es, assets, kibana=kb) == 0
    imports = [r for r in kb.requests if r.path == "/api/saved_objects/_import"]
    assert len(imports) == 1
    assert imports[0].query == {"overwrite": ["true"]}
    assert imports[0].headers["kbn-xsrf"]
    assert imports[0].headers["content-type"].startswith("multipart/form-data")
    assert state.objects[("index-pattern", "mlmon-metrics")]["attributes"]["title"] == "mlmon-metrics*"
    create = [r for r in kb.requests if r.method == "POST" and r.path == "/api/alerting/rule/mlmon-drift-alert"]
    assert len(create) == 1 and "id" not in create[0].json and create[0].json["rule_type_id"] == ".es-query"

    # A changed threshold is an update (PUT without the fields fixed at creation).
    changed = {**RULE, "params": {**RULE["params"], "threshold": [2]}}
    (assets / "kibana/rules/drift.json").write_text(json.dumps(changed))
    before = len(kb.requests)
    assert _setup(es, assets, kibana=kb) == 0
    puts = [r for r in kb.requests[before:] if r.method == "PUT"]
    assert [r.path for r in puts] == ["/api/alerting/rule/mlmon-drift-alert"]
    assert "rule_type_id" not in puts[0].json and puts[0].json["params"]["threshold"] == [2]


def test_every_body_under_elasticsearch_and_every_body_setup_sends_typechecks(assets: Path, trial_es) -> None:
    es, _ = trial_es
    assert _setup(es, assets, "--retention", "deadletter=14d") == 0
    apis = [(r"/_ilm/policy/[^/]+", "ilm.put_lifecycle"),
            (r"/_component_template/[^/]+", "cluster.put_component_template"),
            (r"/_index_template/[^/]+", "indices.put_index_template"),
            (r"/_security/role/[^/]+", "security.put_role"),
            (r"/_watcher/watch/[^/]+", "watcher.put_watch")]
    items = []
    for r in es.writes():
        api = next((a for pattern, a in apis if re.fullmatch(pattern, r.path)), None)
        if api is None:
            assert r.raw_body == b"", f"{r.method} {r.path} sends a body the type check does not cover"
            continue
        items.append((api, r.json, f"{r.method} {r.path}"))
    # The first run sends every file under elasticsearch/ (watches too: trial licence).
    sent = {r.path.rsplit("/", 1)[-1] for r in es.writes()}
    on_disk = {p.stem for p in (assets / "elasticsearch").glob("*/*.json")}
    assert on_disk <= sent and len(items) >= 30
    from tools import golden_stack

    items += [("search", golden_stack.ids_search(["a", "b"]), "golden_stack ids search"),
              ("count", golden_stack.count_body(), "golden_stack count"),
              ("search", golden_stack.duplicates_body(), "golden_stack duplicates"),
              ("count", golden_stack.demo_body("churn"), "golden_stack demo count")]
    assert_bodies_typecheck(items)


def test_committed_rules_and_connectors_install_then_stay_unchanged(tmp_path: Path, trial_es, kibana) -> None:
    """The files `python -m mlmon.stack.alert_assets` writes ({"id", "body"}) install as they are, connectors first."""
    from mlmon.core.assets import KIBANA

    shutil.copytree(ELASTICSEARCH, tmp_path / "elasticsearch")
    shutil.copytree(KIBANA, tmp_path / "kibana")
    es, _ = trial_es
    kb, state = kibana
    assert _setup(es, tmp_path, kibana=kb) == 0
    rule_files = sorted((KIBANA / "rules").glob("*.json"))
    connector_files = sorted((KIBANA / "rules" / "connectors").glob("*.json"))
    assert rule_files and connector_files
    assert set(state.rules) == {json.loads(p.read_text())["id"] for p in rule_files}
    assert set(state.connectors) == {json.loads(p.read_text())["id"] for p in connector_files}
    posts = [r.path for r in kb.requests if r.method == "POST" and "/api/" in r.path and "_import" not in r.path]
    assert max(i for i, p in enumerate(posts) if "/connector/" in p) < min(i for i, p in enumerate(posts) if "/rule/" in p)
    before = len(kb.requests)
    assert _setup(es, tmp_path, kibana=kb) == 0
    assert [r.path for r in kb.requests[before:] if r.method in ("PUT", "POST") and "/saved_objects/" not in r.path] == []
