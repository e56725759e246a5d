"""``mlmon setup`` brings existing document indices (mlmon-metrics & co.) onto their templates' current mappings.

They are regular indices with ``dynamic: false``: without this, a field a new release maps
would stay unsearchable in an index made by an older one. At the HTTP edge, against
:class:`FakeElasticsearch` (which composes mappings from templates, answers
``_simulate_index`` and merges mapping updates as Elasticsearch does, see its docstring).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlmon.cli.main import main
from mlmon.stack.installer import TEMPLATE_FINGERPRINT_KEY
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_elastic import FakeElasticsearch
from tests.support.fake_http import FakeServer, Reply, Request, es_error

DOCUMENT_INDICES = ("mlmon-metrics", "mlmon-alerts", "mlmon-references", "mlmon-checkpoints")


def _setup(server: FakeServer, assets: Path, *extra: str) -> int:
    return main(["setup", "--es", server.url, "--assets", str(assets), "--namespace", "prod", *extra])


def _component(assets: Path, name: str) -> tuple[Path, dict[str, Any]]:
    path = assets / "elasticsearch" / "component_templates" / f"{name}.json"
    return path, json.loads(path.read_text())


def _map_field(assets: Path, component: str, name: str, mapping: dict[str, Any]) -> None:
    """A release that maps a field in ``component`` (e.g. a new metric detail)."""
    path, body = _component(assets, component)
    body["template"]["mappings"]["properties"][name] = mapping
    path.write_text(json.dumps(body, indent=2))


def _writes(server: FakeServer, since: int) -> list[Request]:
    return [r for r in server.requests[since:] if r.method not in ("GET", "HEAD")]


def _fingerprint_of(state: FakeElasticsearch, template: str) -> str:
    return state.index_templates[template]["template"]["mappings"]["_meta"][TEMPLATE_FINGERPRINT_KEY]


def test_a_new_field_reaches_the_existing_index_of_its_template_only(assets: Path, trial_es, capsys) -> None:
    server, state = trial_es
    assert _setup(server, assets) == 0
    _map_field(assets, "mlmon-metrics@mappings", "deployment_stage", {"type": "keyword", "ignore_above": 1024})
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets) == 0
    writes = [(r.method, r.path) for r in _writes(server, before)]
    # The templates first, then the metrics index alone: Elasticsearch composes its mapping
    # (simulate), and the update carries the field and the template's new fingerprint.
    assert writes == [("PUT", "/_component_template/mlmon-metrics@mappings"),
                      ("PUT", "/_index_template/mlmon-metrics"),
                      ("POST", "/_index_template/_simulate_index/mlmon-metrics"),
                      ("PUT", "/mlmon-metrics/_mapping")]
    update = _writes(server, before)[-1].json
    assert update["properties"]["deployment_stage"] == {"type": "keyword", "ignore_above": 1024}
    assert update["dynamic"] is False  # the template's, resent as it is
    mapping = state.index_mappings["mlmon-metrics"]
    assert mapping["properties"]["deployment_stage"]["type"] == "keyword"
    assert mapping["_meta"][TEMPLATE_FINGERPRINT_KEY] == _fingerprint_of(state, "mlmon-metrics")
    assert re.search(r"updated\s+index mapping mlmon-metrics \(onto its current template\)", capsys.readouterr().out)
    # The check is one read for every index of our templates (by their patterns), and the next run has nothing to do.
    reads = [r for r in server.requests[before:] if r.path.endswith("/_mapping") and r.method == "GET"]
    assert len(reads) == 1 and all(f"{i}*" in reads[0].path.split("/")[1].split(",") for i in DOCUMENT_INDICES)
    assert reads[0].query["filter_path"] == [f"*.mappings._meta.{TEMPLATE_FINGERPRINT_KEY}"]
    again = len(server.requests)
    assert _setup(server, assets) == 0
    assert _writes(server, again) == []
    assert "nothing to change" in capsys.readouterr().out


def test_an_index_made_before_fingerprints_is_brought_up_to_date(assets: Path, trial_es) -> None:
    """E.g. a job's first write created mlmon-alerts before any setup, or an older mlmon made it."""
    server, state = trial_es
    assert _setup(server, assets) == 0
    state.index_mappings["mlmon-alerts"] = {"dynamic": False, "properties": {"rule": {"type": "keyword"}}}
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert [r.path for r in _writes(server, before)] == ["/_index_template/_simulate_index/mlmon-alerts",
                                                         "/mlmon-alerts/_mapping"]
    assert state.index_mappings["mlmon-alerts"]["_meta"][TEMPLATE_FINGERPRINT_KEY] == _fingerprint_of(
        state, "mlmon-alerts")
    composed = state.composed_mappings("mlmon-alerts")["properties"]
    # Every field of the template is mapped now; a mapping update removes none (``rule`` stays).
    assert state.index_mappings["mlmon-alerts"]["properties"] == {"rule": {"type": "keyword"}, **composed}


def test_a_type_change_the_index_cannot_take_is_a_warning_and_is_asked_again(assets: Path, trial_es, capsys) -> None:
    server, state = trial_es
    assert _setup(server, assets) == 0
    path, body = _component(assets, "mlmon-references@mappings")
    body["template"]["mappings"]["properties"]["reference"]["properties"]["source"] = {"type": "long"}
    path.write_text(json.dumps(body))
    old = state.index_mappings["mlmon-references"]
    capsys.readouterr()
    assert _setup(server, assets) == 0  # the templates are installed; only the live index keeps its mapping
    assert state.index_mappings["mlmon-references"] == old
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if "warning" in line)
    assert "index mapping mlmon-references" in warning
    assert "mapper [reference.source] cannot be changed from type [keyword] to [long]" in warning and "reindex" in warning
    before = len(server.requests)
    assert _setup(server, assets) == 0  # still stale: asked again, refused again
    assert [r.path for r in _writes(server, before)] == ["/_index_template/_simulate_index/mlmon-references",
                                                         "/mlmon-references/_mapping"]


def test_an_index_a_users_template_owns_is_left_alone(assets: Path, trial_es, capsys) -> None:
    server, state = trial_es
    assert _setup(server, assets) == 0
    state.index_templates["acme-metrics"] = {"index_patterns": ["mlmon-metrics"], "priority": 500,
                                             "template": {"mappings": {"properties": {"x": {"type": "keyword"}}}}}
    _map_field(assets, "mlmon-metrics@mappings", "deployment_stage", {"type": "keyword"})
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert not any(r.path == "/mlmon-metrics/_mapping" for r in _writes(server, before))
    assert re.search(r"skipped\s+index mapping mlmon-metrics \(an index template not of mlmon applies to it\)",
                     capsys.readouterr().out)


def test_dry_run_says_which_mappings_would_change_and_sends_nothing(assets: Path, trial_es, capsys) -> None:
    server, state = trial_es
    assert _setup(server, assets) == 0
    _map_field(assets, "mlmon-checkpoints@mappings", "owner", {"type": "keyword"})
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets, "--dry-run") == 0
    assert _writes(server, before) == []
    out = capsys.readouterr().out
    assert re.search(r"would update\s+index mapping mlmon-checkpoints", out)
    assert len(re.findall(r"index mapping", out)) == 1


def _refusing_put_mapping(state: FakeElasticsearch):
    def handler(req: Request) -> Reply:
        if req.method == "PUT" and req.path.endswith("/_mapping"):
            return es_error(403, "security_exception", "action [indices:admin/mapping/put] is unauthorized")
        return state(req)
    return handler


def test_a_refused_update_does_not_stop_the_rest_of_setup(assets: Path, capsys) -> None:
    state = FakeElasticsearch(licence="trial")
    with FakeServer(_refusing_put_mapping(state)) as server:
        assert _setup(server, assets) == 0
        for index in DOCUMENT_INDICES:
            state.index_mappings[index] = {}
        path = assets / "elasticsearch" / "watcher" / "mlmon-volume-drop.json"
        watch = json.loads(path.read_text())
        watch["metadata"]["edited"] = True
        path.write_text(json.dumps(watch))
        capsys.readouterr()
        assert _setup(server, assets) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"warning\s+index mapping", out)) == len(DOCUMENT_INDICES)
    assert re.search(r"updated\s+watch mlmon-volume-drop", out)  # installed after the refusals


def test_mapping_update_bodies_typecheck(assets: Path, trial_es) -> None:
    server, state = trial_es
    assert _setup(server, assets) == 0
    _map_field(assets, "mlmon-metrics@mappings", "deployment_stage", {"type": "keyword", "ignore_above": 1024})
    for index in DOCUMENT_INDICES[1:]:
        state.index_mappings[index] = {}
    before = len(server.requests)
    assert _setup(server, assets) == 0
    updates = [r for r in _writes(server, before) if r.path.endswith("/_mapping")]
    assert sorted(r.path for r in updates) == sorted(f"/{i}/_mapping" for i in DOCUMENT_INDICES)
    simulations = [r for r in _writes(server, before) if "_simulate_index" in r.path]
    assert len(simulations) == len(DOCUMENT_INDICES) and all(r.raw_body == b"" for r in simulations)
    assert_bodies_typecheck([("indices.put_mapping", r.json, r.path) for r in updates])
