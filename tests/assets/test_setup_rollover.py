"""``mlmon setup`` after a template change: existing data streams get a lazy rollover, at the HTTP edge.

The fake below adds to :class:`FakeElasticsearch` what these tests need, with the
response shapes of Elastic's documentation and REST tests (9.x):

- ``GET /_data_stream/<names>``: comma-separated names and wildcards; a wildcard
  matching nothing is an empty list, a missing concrete name a 404. Each stream's
  ``template`` is the index template that matches it *now* (highest priority,
  Elasticsearch's built-in ``logs`` template at 100 included), as Elasticsearch computes it.
- ``POST /<stream>/_rollover?lazy=true``: marks the stream (``rollover_on_write``) and
  answers like ``LazyRolloverDataStreamIT``: ``rolled_over: false, lazy: true``,
  ``old_index`` / ``new_index`` the current and next backing index.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlmon.cli import main
from mlmon.paths import ELASTICSEARCH
from tests.support.fake_elastic import FakeElasticsearch
from tests.support.fake_http import FakeServer, Reply, Request, es_error, es_reply

#: Elasticsearch's built-in template for logs-*-* (what a stream gets when Logstash writes before setup ran).
BUILTIN_LOGS = {"index_patterns": ["logs-*-*"], "data_stream": {}, "priority": 100, "composed_of": []}
MODEL_KINDS = ("prediction", "feedback", "explanation")
ALL_KINDS = (*MODEL_KINDS, "emitter", "deadletter")


class FakeElasticsearchWithStreams(FakeElasticsearch):
    def __init__(self) -> None:
        super().__init__(licence="trial")
        self.rollover_on_write: set[str] = set()

    def __call__(self, req: Request) -> Reply:
        if req.method == "GET" and (match := re.fullmatch(r"/_data_stream/([^/]+)", req.path)):
            return self._get_data_streams(match[1].split(","))
        if match := re.fullmatch(r"/([^/_][^/]*)/_rollover", req.path):
            return self._rollover(req, match[1])
        return super().__call__(req)

    def template_of(self, stream: str) -> str | None:
        """The matching index template of highest priority, as Elasticsearch resolves it."""
        templates = {"logs": BUILTIN_LOGS, **self.index_templates}
        matching = [(int(body.get("priority", 0)), name) for name, body in templates.items()
                    if "data_stream" in body and any(fnmatch.fnmatchcase(stream, p) for p in body["index_patterns"])]
        return max(matching)[1] if matching else None

    def _stream_doc(self, name: str) -> dict[str, Any]:
        return {"name": name, "timestamp_field": {"name": "@timestamp"},
                "indices": [{"index_name": f".ds-{name}-2025.01.01-000001", "index_uuid": "u1"}],
                "generation": 1, "status": "GREEN", "template": self.template_of(name), "hidden": False,
                "system": False, "allow_custom_routing": False, "replicated": False,
                "rollover_on_write": name in self.rollover_on_write}

    def _get_data_streams(self, names: list[str]) -> Reply:
        found: list[str] = []
        for name in names:
            hits = sorted(s for s in self.data_streams if fnmatch.fnmatchcase(s, name))
            if not hits and "*" not in name:
                return es_error(404, "index_not_found_exception", f"no such index [{name}]")
            found += [h for h in hits if h not in found]
        return es_reply({"data_streams": [self._stream_doc(s) for s in found]})

    def _rollover(self, req: Request, stream: str) -> Reply:
        if req.method != "POST":
            return es_error(405, "method_not_allowed", f"{req.method} not allowed")
        if stream not in self.data_streams:
            return es_error(404, "index_not_found_exception", f"no such index [{stream}]")
        if req.query != {"lazy": ["true"]}:
            return es_error(400, "illegal_argument_exception", f"this fake only does lazy rollovers, got {req.query}")
        self.rollover_on_write.add(stream)
        return es_reply({"acknowledged": True, "shards_acknowledged": False,
                         "old_index": f".ds-{stream}-2025.01.01-000001", "new_index": f".ds-{stream}-2025.01.01-000002",
                         "rolled_over": False, "dry_run": False, "lazy": True, "conditions": {}})


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    shutil.copytree(ELASTICSEARCH, tmp_path / "elasticsearch")
    return tmp_path


@pytest.fixture
def cluster() -> Iterator[tuple[FakeServer, FakeElasticsearchWithStreams]]:
    state = FakeElasticsearchWithStreams()
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


def _rollovers(server: FakeServer, since: int = 0) -> list[Request]:
    return [r for r in server.requests[since:] if r.path.endswith("/_rollover")]


def _installed_twice(server: FakeServer, assets: Path) -> int:
    """Setup for namespaces prod and staging (streams of every kind in both); the request count after."""
    assert _setup(server, assets) == 0
    assert _setup(server, assets, namespace="staging") == 0
    return len(server.requests)


def test_first_install_and_unchanged_reruns_request_no_rollover(assets: Path, cluster, capsys) -> None:
    server, state = cluster
    before = _installed_twice(server, assets)
    assert len(state.data_streams) == 10
    assert _setup(server, assets) == 0
    assert _rollovers(server) == []
    # Nothing changed on the third run: not even a look at the data streams' templates.
    assert not any(r.path.startswith("/_data_stream/") and "*" in r.path for r in server.requests[before:])
    assert "nothing to change" in capsys.readouterr().out


def test_changed_component_rolls_over_exactly_the_streams_of_templates_composed_of_it(
        assets: Path, cluster, capsys) -> None:
    server, state = cluster
    before = _installed_twice(server, assets)
    capsys.readouterr()
    _add_field(assets, "mlmon-model@mappings")  # in the prediction, feedback and explanation templates only
    assert _setup(server, assets) == 0
    writes = [(r.method, r.path, r.query, r.raw_body) for r in server.requests[before:] if r.method not in ("GET", "HEAD")]
    expected_streams = sorted(f"logs-mlmon.{k}-{ns}" for k in MODEL_KINDS for ns in ("prod", "staging"))
    assert writes[0][:2] == ("PUT", "/_component_template/mlmon-model@mappings")
    assert sorted(writes[1:]) == [("POST", f"/{s}/_rollover", {"lazy": ["true"]}, b"") for s in expected_streams]
    assert state.rollover_on_write == set(expected_streams)
    out = capsys.readouterr().out
    for stream in expected_streams:
        assert re.search(rf"marked\s+data stream {re.escape(stream)} \(rolls over onto the new template at its next write\)",
                         out), out
    assert len(re.findall(r"^\s*marked\s", out, re.M)) == len(expected_streams)

    # The change is installed: the next run is a no-op again.
    again = len(server.requests)
    assert _setup(server, assets) == 0
    assert all(r.method in ("GET", "HEAD") for r in server.requests[again:])


@pytest.mark.parametrize("change, kinds", [
    ("index template", ("deadletter",)),            # the index template itself
    ("settings component", MODEL_KINDS),            # mlmon-events@settings: a setting, no mapping
    ("shared component", ALL_KINDS[:4]),            # mlmon-ecs@mappings: every event kind, not dead letters
])
def test_each_kind_of_template_change_reaches_the_streams_it_composes(
        assets: Path, cluster, change: str, kinds: tuple[str, ...]) -> None:
    server, _ = cluster
    assert _setup(server, assets) == 0
    if change == "index template":
        path = assets / "elasticsearch/index_templates/logs-mlmon.deadletter.json"
        body = json.loads(path.read_text())
        body["template"] = {"settings": {"index": {"mapping": {"total_fields": {"limit": 2000}}}}}
        path.write_text(json.dumps(body))
    elif change == "settings component":
        path = assets / "elasticsearch/component_templates/mlmon-events@settings.json"
        body = json.loads(path.read_text())
        body["template"]["settings"]["index"]["refresh_interval"] = "5s"
        path.write_text(json.dumps(body))
    else:
        _add_field(assets, "mlmon-ecs@mappings")
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert sorted(r.path for r in _rollovers(server, before)) == sorted(f"/logs-mlmon.{k}-prod/_rollover" for k in kinds)


def test_templates_of_regular_indices_need_no_rollover(assets: Path, cluster) -> None:
    """mlmon-metrics & co. are regular indices: no data stream to look up, nothing to roll over."""
    server, _ = cluster
    assert _setup(server, assets) == 0
    path = assets / "elasticsearch/component_templates/mlmon-documents@settings.json"
    body = json.loads(path.read_text())
    body["template"]["settings"]["index"]["refresh_interval"] = "5s"
    path.write_text(json.dumps(body))
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert [r.path for r in server.requests[before:] if r.method not in ("GET", "HEAD")] == [
        "/_component_template/mlmon-documents@settings"]
    assert not any("*" in r.path for r in server.requests[before:])


def test_absent_streams_and_streams_on_another_template_are_left_alone(assets: Path, cluster) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    # The feedback stream was deleted; a user's own template of higher priority owns a prediction stream.
    state.data_streams.discard("logs-mlmon.feedback-prod")
    state.index_templates["acme-special"] = {"index_patterns": ["logs-mlmon.prediction-special*"], "data_stream": {},
                                             "priority": 300, "composed_of": []}
    state.data_streams.add("logs-mlmon.prediction-special")
    _add_field(assets, "mlmon-model@mappings")
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert sorted(r.path for r in _rollovers(server, before)) == [
        "/logs-mlmon.explanation-prod/_rollover", "/logs-mlmon.prediction-prod/_rollover"]


def test_stream_created_before_setup_moves_onto_the_new_template(assets: Path, cluster, capsys) -> None:
    """Logstash wrote before the first setup: the stream was made from the built-in logs template."""
    server, state = cluster
    state.data_streams.add("logs-mlmon.prediction-prod")
    assert state.template_of("logs-mlmon.prediction-prod") == "logs"
    assert _setup(server, assets) == 0
    rollovers = _rollovers(server)
    assert [(r.method, r.path, r.query) for r in rollovers] == [
        ("POST", "/logs-mlmon.prediction-prod/_rollover", {"lazy": ["true"]})]
    # Requested after every template is in place, before setup creates the other streams.
    paths = [r.path for r in server.writes()]
    at = paths.index("/logs-mlmon.prediction-prod/_rollover")
    assert max(i for i, p in enumerate(paths) if p.startswith("/_index_template/")) < at
    assert min(i for i, p in enumerate(paths) if p.startswith("/_data_stream/")) > at
    assert "marked  data stream logs-mlmon.prediction-prod" in capsys.readouterr().out


def test_dry_run_says_which_streams_would_roll_over_and_sends_nothing(assets: Path, cluster, capsys) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    _add_field(assets, "mlmon-prediction@mappings")
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets, "--dry-run") == 0
    assert [r for r in server.requests[before:] if r.method not in ("GET", "HEAD")] == []
    assert state.rollover_on_write == set()
    out = capsys.readouterr().out
    assert re.search(r"would update\s+component template mlmon-prediction@mappings", out)
    assert re.search(r"would mark\s+data stream logs-mlmon.prediction-prod \(rolls over onto the new template", out)
    assert "feedback-prod (rolls over" not in out


def test_dry_run_of_a_first_install_counts_streams_the_new_template_will_take(assets: Path, cluster, capsys) -> None:
    server, state = cluster
    state.data_streams.add("logs-mlmon.emitter-prod")  # from the built-in logs template
    assert _setup(server, assets, "--dry-run") == 0
    assert server.writes() == []
    assert re.search(r"would mark\s+data stream logs-mlmon.emitter-prod", capsys.readouterr().out)


def test_refused_rollover_is_a_warning_and_setup_completes(assets: Path, capsys) -> None:
    state = FakeElasticsearchWithStreams()

    def handler(req: Request) -> Reply:
        # What an Elasticsearch older than 8.13 answers to ?lazy.
        if req.path == "/logs-mlmon.feedback-prod/_rollover":
            return es_error(400, "illegal_argument_exception",
                            "request [/logs-mlmon.feedback-prod/_rollover] contains unrecognized parameter: [lazy]")
        return state(req)

    with FakeServer(handler) as server:
        assert _setup(server, assets) == 0
        _add_field(assets, "mlmon-model@mappings")
        capsys.readouterr()
        before = len(server.requests)
        # A new namespace in the same run: its streams are still created after the refusal.
        assert _setup(server, assets, namespace="staging") == 0
    writes = [(r.method, r.path) for r in server.requests[before:] if r.method not in ("GET", "HEAD")]
    assert ("POST", "/logs-mlmon.feedback-prod/_rollover") in writes
    assert state.rollover_on_write == {"logs-mlmon.prediction-prod", "logs-mlmon.explanation-prod"}
    assert [p for m, p in writes if p.startswith("/_data_stream/")] == [
        f"/_data_stream/logs-mlmon.{k}-staging" for k in ALL_KINDS]
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if "warning" in line)
    assert "data stream logs-mlmon.feedback-prod" in warning
    assert "unrecognized parameter: [lazy]" in warning and "POST logs-mlmon.feedback-prod/_rollover" in warning
