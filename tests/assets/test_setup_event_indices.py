"""``mlmon setup`` and the time-routed event indices, at the HTTP edge.

Event indices are regular indices named by month (``logs-mlmon.<kind>-<namespace>-yyyy.MM.01``,
see :mod:`mlmon.stack.elasticsearch_assets`); they never roll over, so a template change
reaches the existing ones through a mapping update, like the document indices (the rule
is in :mod:`mlmon.stack.installer`). Past months are made here as Logstash makes them: by
its first write (:meth:`FakeElasticsearch.write_document`, an auto-create from the template).
"""

from __future__ import annotations

import _thread
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mlmon.cli.main import main
from mlmon.stack.installer import TEMPLATE_FINGERPRINT_KEY
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_elastic import FakeElasticsearch
from tests.support.fake_http import FakeServer, Reply, Request, es_error

#: Elasticsearch's built-in template for logs-*-*: a first write before setup makes a data stream.
BUILTIN_LOGS = {"index_patterns": ["logs-*-*"], "data_stream": {}, "priority": 100, "composed_of": []}
MODEL_KINDS = ("prediction", "feedback", "explanation")
ALL_KINDS = ("deadletter", "emitter", "explanation", "feedback", "prediction", "prediction_error")


Cluster = tuple[FakeServer, FakeElasticsearch]


def _this_month() -> str:
    return datetime.now(timezone.utc).strftime("%Y.%m.01")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    state = FakeElasticsearch(licence="trial")
    with FakeServer(state) as server:
        yield server, state


def _setup(server: FakeServer, assets: Path, *extra: str, namespace: str = "prod") -> int:
    return main(["setup", "--es", server.url, "--assets", str(assets), "--namespace", namespace, *extra])


def _add_field(assets: Path, component: str) -> None:
    """An upgrade that maps a new field in ``component`` (what a release adding a contract field does)."""
    path = assets / "elasticsearch" / "component_templates" / f"{component}.json"
    body = json.loads(path.read_text())
    body["template"].setdefault("mappings", {}).setdefault("properties", {})["deployment"] = {
        "properties": {"stage": {"type": "keyword", "ignore_above": 1024}}}
    path.write_text(json.dumps(body, indent=2))


def _logstash_writes(state: FakeElasticsearch, index: str) -> None:
    status, result = state.write_document(index, f"id-{len(state.documents)}", {"@timestamp": "2025-01-15T00:00:00Z"},
                                          "create")
    assert status == 201, result


def _writes(server: FakeServer, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in server.requests[since:] if r.method not in ("GET", "HEAD")]


def _fingerprint(state: FakeElasticsearch, template: str) -> str:
    found = state.index_templates[template]["template"]["mappings"]["_meta"][TEMPLATE_FINGERPRINT_KEY]
    assert isinstance(found, str) and found
    return found


def test_first_install_makes_this_months_indices_on_the_current_templates(assets: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    month = _this_month()
    made = sorted(i for i in state.indices if i.startswith("logs-mlmon."))
    assert made == [f"logs-mlmon.{k}-prod-{month}" for k in ALL_KINDS]
    assert state.data_streams == set()
    for index in made:
        template = state.matching_template(index)
        assert template is not None and "data_stream" not in state.index_templates[template]
        assert state.index_mappings[index]["_meta"][TEMPLATE_FINGERPRINT_KEY] == _fingerprint(state, template)
    assert not any(r.path.endswith("/_rollover") or r.path.startswith("/_data_stream/") and r.method == "PUT"
                   for r in server.requests)


def test_an_unchanged_rerun_costs_a_fixed_number_of_reads_whatever_the_months(assets: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    for month in ("2024.11.01", "2024.12.01", "2025.01.01"):
        for kind in ALL_KINDS:
            _logstash_writes(state, f"logs-mlmon.{kind}-prod-{month}")
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert _writes(server, before) == []
    patterns = ",".join(sorted(p for f in (assets / "elasticsearch/index_templates").glob("*.json")
                               for p in json.loads(f.read_text())["index_patterns"]))
    assert "logs-mlmon.prediction-*-*" in patterns and "mlmon-metrics*" in patterns
    wildcard = [(r.method, r.path) for r in server.requests[before:] if "*" in r.path]
    assert wildcard == [("GET", f"/_cat/indices/{patterns}"), ("GET", f"/{patterns}/_mapping"),
                        ("GET", "/_data_stream/logs-mlmon.*-*")]
    assert "nothing to change" in capsys.readouterr().out


def test_a_changed_component_updates_the_mappings_of_exactly_the_indices_composed_of_it(
        assets: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    assert _setup(server, assets, namespace="staging") == 0
    for kind in ALL_KINDS:
        _logstash_writes(state, f"logs-mlmon.{kind}-prod-2025.01.01")
    _add_field(assets, "mlmon-model@mappings")  # in the prediction, feedback and explanation templates only
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets) == 0
    writes = _writes(server, before)
    assert writes[:4] == [("PUT", "/_component_template/mlmon-model@mappings")] + [
        ("PUT", f"/_index_template/logs-mlmon.{k}") for k in sorted(MODEL_KINDS)]
    updated = sorted(p.split("/")[1] for m, p in writes[4:] if p.endswith("/_mapping"))
    assert updated == sorted(f"logs-mlmon.{k}-{ns}-{month}" for k in MODEL_KINDS
                             for ns, month in (("prod", "2025.01.01"), ("prod", _this_month()),
                                               ("staging", _this_month())))
    assert not any(p.endswith("/_rollover") for _, p in writes)
    for index in updated:
        properties = state.index_mappings[index]["properties"]
        assert properties["deployment"]["properties"]["stage"]["type"] == "keyword"
    # Done: the next run finds every fingerprint current.
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert _writes(server, before) == []
    assert len(re.findall(r"updated\s+index mapping logs-mlmon\.", capsys.readouterr().out)) == len(updated)


def test_a_settings_change_reaches_next_months_indices_and_updates_no_mapping(assets: Path, cluster: Cluster) -> None:
    server, _ = cluster
    assert _setup(server, assets) == 0
    path = assets / "elasticsearch/component_templates/mlmon-events@settings.json"
    body = json.loads(path.read_text())
    body["template"]["settings"]["index"]["refresh_interval"] = "5s"
    path.write_text(json.dumps(body))
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert _writes(server, before) == [("PUT", "/_component_template/mlmon-events@settings")]


def test_run_interrupted_after_the_template_update_is_completed_by_the_next_run(assets: Path) -> None:
    state = FakeElasticsearch(licence="trial")
    interrupted: list[Request] = []

    def handler(req: Request) -> Reply:
        if req.method == "PUT" and req.path.endswith("/_mapping") and not interrupted:
            interrupted.append(req)
            _thread.interrupt_main()  # Ctrl-C while setup sends its first mapping update
            return es_error(503, "node_closed_exception", "node closed")
        return state(req)

    with FakeServer(handler) as server:
        assert _setup(server, assets) == 0
        _add_field(assets, "mlmon-ecs@mappings")
        assert _setup(server, assets) == 130
        before = len(server.requests)
        assert _setup(server, assets) == 0
        writes = _writes(server, before)
    assert not any("template" in p and m == "PUT" for m, p in writes)  # templates were installed already
    assert sorted(p for _, p in writes if p.endswith("/_mapping")) == sorted(
        f"/logs-mlmon.{k}-prod-{_this_month()}/_mapping" for k in ALL_KINDS if k != "deadletter")


def test_former_layout_streams_are_kept_readable_and_named_in_a_warning(assets: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """An upgrade: the data streams of the former layout exist; the new templates must not orphan them."""
    server, state = cluster
    state.index_templates["logs"] = BUILTIN_LOGS
    for kind in ("prediction", "feedback"):
        _logstash_writes(state, f"logs-mlmon.{kind}-prod")  # a data stream, from the built-in template
    assert state.data_streams == {"logs-mlmon.prediction-prod", "logs-mlmon.feedback-prod"}
    assert _setup(server, assets) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "warning" in line]
    assert len(warnings) == 2 and all("former layout" in w and "POST _reindex" in w for w in warnings)
    assert "data stream logs-mlmon.feedback-prod" in warnings[0]
    # Still data streams, still matched by the read patterns (logs-mlmon.prediction-*).
    assert state.matching_template("logs-mlmon.prediction-prod") == "logs"


def test_a_dated_stream_made_before_setup_is_a_clear_refusal(assets: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """Logstash wrote before the first setup: the built-in logs template made a data stream of a dated name."""
    server, state = cluster
    state.index_templates["logs"] = BUILTIN_LOGS
    _logstash_writes(state, "logs-mlmon.prediction-prod-2025.01.01")
    assert _setup(server, assets) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "logs-mlmon.prediction.json" in err[0] and "logs-mlmon.prediction-prod-2025.01.01" in err[0]
    assert "would cause data streams" in err[0]


def test_dry_run_says_which_mappings_would_change_and_sends_nothing(assets: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    server, _ = cluster
    assert _setup(server, assets) == 0
    _add_field(assets, "mlmon-prediction@mappings")
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets, "--dry-run") == 0
    assert _writes(server, before) == []
    out = capsys.readouterr().out
    assert re.search(r"would update\s+index template logs-mlmon.prediction\b", out)
    assert re.findall(r"would update\s+index mapping (\S+)", out) == [f"logs-mlmon.prediction-prod-{_this_month()}"]


def test_bodies_sent_on_a_template_change_typecheck(assets: Path, cluster: Cluster) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    _logstash_writes(state, "logs-mlmon.emitter-prod-2024.12.01")
    _add_field(assets, "mlmon-ecs@mappings")
    before = len(server.requests)
    assert _setup(server, assets) == 0
    apis: dict[str, Callable[[str], bool]] = {
        "cluster.put_component_template": lambda p: p.startswith("/_component_template/"),
        "indices.put_index_template": lambda p: p.startswith("/_index_template/") and "_simulate" not in p,
        "indices.put_mapping": lambda p: p.endswith("/_mapping")}
    items: list[tuple[str, Any, str]] = []
    for r in server.requests[before:]:
        if r.method in ("GET", "HEAD") or "_simulate_index" in r.path:
            assert r.raw_body == b"", f"{r.method} {r.path} sends a body the type check does not cover"
            continue
        api = next(a for a, test in apis.items() if test(r.path))
        items.append((api, r.json, f"{r.method} {r.path}"))
    assert sum(1 for api, *_ in items if api == "indices.put_mapping") == 5 + 1  # this month's, and December's
    assert_bodies_typecheck(items)
