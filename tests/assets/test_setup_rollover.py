"""``mlmon setup`` brings existing data streams onto the current templates with lazy rollovers, at the HTTP edge.

The rule (see :mod:`mlmon.stack.installer`): a stream on one of our index templates whose
write index does not carry the template's current composed fingerprint in its mapping
``_meta`` is marked to roll over at its next write, whatever this run changed.

The fake below adds to :class:`FakeElasticsearch` what these tests need, with the
response shapes of Elastic's documentation and REST tests (9.x):

- Data streams have backing indices (``.ds-<stream>-<date>-<generation>``, the write index
  last); each is created from the index template that matches the stream *then*, and its
  mapping ``_meta`` is what Elasticsearch composes: the ``_meta`` of the component
  templates' mappings in ``composed_of`` order, then the index template's, later keys winning
  (``Mapping.merge`` with ``MergeReason.INDEX_TEMPLATE``).
- ``GET /_data_stream/<names>``: comma-separated names and wildcards; a wildcard
  matching nothing is an empty list, a missing concrete name a 404. Each stream's
  ``template`` is the index template that matches it *now* (highest priority,
  Elasticsearch's built-in ``logs`` template at 100 included), as Elasticsearch computes it.
- ``GET /<targets>/_mapping``: data streams (names or wildcards) resolve to their backing
  indices; ``filter_path`` keeps the named path and drops what is left empty.
- ``POST /<stream>/_rollover?lazy=true``: marks the stream (``rollover_on_write``) and
  answers like ``LazyRolloverDataStreamIT``: ``rolled_over: false, lazy: true``,
  ``old_index`` / ``new_index`` the current and next backing index. The stream rolls over
  at its next write (:meth:`FakeElasticsearchWithStreams.write`).
"""

from __future__ import annotations

import _thread
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlmon.cli.main import main
from mlmon.stack.installer import TEMPLATE_FINGERPRINT_KEY
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_elastic import FakeElasticsearch, merge_deep
from tests.support.fake_http import FakeServer, Reply, Request, es_error, es_reply

#: Elasticsearch's built-in template for logs-*-* (what a stream gets when Logstash writes before setup ran).
BUILTIN_LOGS = {"index_patterns": ["logs-*-*"], "data_stream": {}, "priority": 100, "composed_of": []}
MODEL_KINDS = ("prediction", "feedback", "explanation")
ALL_KINDS = (*MODEL_KINDS, "emitter", "deadletter")
DOCUMENT_KINDS = ("metrics", "alerts", "references", "checkpoints")  # regular indices, not data streams


class FakeElasticsearchWithStreams(FakeElasticsearch):
    def __init__(self) -> None:
        super().__init__(licence="trial")
        self.backing: dict[str, list[str]] = {}          # stream -> backing indices, the write index last
        self.mapping_meta: dict[str, dict[str, Any]] = {}  # backing index -> its mapping _meta
        self.rollover_on_write: set[str] = set()

    def __call__(self, req: Request) -> Reply:
        if match := re.fullmatch(r"/_data_stream/([^/]+)", req.path):
            if req.method == "GET":
                return self._get_data_streams(match[1].split(","))
            reply = super().__call__(req)
            if req.method == "PUT" and reply.status == 200:
                self._new_backing_index(match[1])
            return reply
        if match := re.fullmatch(r"/([^/_][^/]*)/_rollover", req.path):
            return self._rollover(req, match[1])
        if req.method == "GET" and (match := re.fullmatch(r"/([^/_][^/]*)/_mapping", req.path)):
            return self._get_mapping(req, match[1].split(","))
        return super().__call__(req)

    # --- what happens in the cluster besides mlmon setup ---

    def add_stream(self, name: str) -> None:
        """A stream created by a first write (Logstash's), from whichever template matches it now."""
        self.data_streams.add(name)
        self._new_backing_index(name)

    def write(self, stream: str) -> None:
        """A document arrives: a stream marked for a lazy rollover rolls over first."""
        if stream in self.rollover_on_write:
            self.rollover_on_write.discard(stream)
            self._new_backing_index(stream)

    def ilm_rollover(self, stream: str) -> None:
        """ILM's own rollover (max age / size reached): a new write index from the current template."""
        self.rollover_on_write.discard(stream)
        self._new_backing_index(stream)

    def write_index(self, stream: str) -> str:
        return self.backing[stream][-1]

    def template_of(self, stream: str) -> str | None:
        """The matching index template of highest priority, as Elasticsearch resolves it."""
        templates = {"logs": BUILTIN_LOGS, **self.index_templates}
        matching = [(int(body.get("priority", 0)), name) for name, body in templates.items()
                    if "data_stream" in body and any(fnmatch.fnmatchcase(stream, p) for p in body["index_patterns"])]
        return max(matching)[1] if matching else None

    def _new_backing_index(self, stream: str) -> str:
        generation = len(self.backing.get(stream, [])) + 1
        index = f".ds-{stream}-2025.01.01-{generation:06d}"
        self.backing.setdefault(stream, []).append(index)
        name = self.template_of(stream)
        body = {"logs": BUILTIN_LOGS, **self.index_templates}[name] if name else {}
        meta: dict[str, Any] = {}
        for part in [self.component_templates[c] for c in body.get("composed_of", [])] + [body]:
            meta = merge_deep(meta, part.get("template", {}).get("mappings", {}).get("_meta", {}))
        self.mapping_meta[index] = meta
        return index

    # --- the APIs ---

    def _stream_doc(self, name: str) -> dict[str, Any]:
        indices = [{"index_name": index, "index_uuid": f"u{n}", "prefer_ilm": True,
                    "managed_by": "Index Lifecycle Management"} for n, index in enumerate(self.backing[name])]
        return {"name": name, "timestamp_field": {"name": "@timestamp"}, "indices": indices,
                "generation": len(indices), "status": "GREEN", "template": self.template_of(name), "hidden": False,
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

    def mappings_of(self, target: str) -> dict[str, dict[str, Any]]:
        """Data streams resolve to their backing indices (mapping: the ``_meta`` they were made with)."""
        streams = sorted(s for s in self.data_streams if fnmatch.fnmatchcase(s, target))
        backing = [i for s in streams for i in self.backing[s]] or [i for i in self.mapping_meta if i == target]
        found = {i: {"_meta": self.mapping_meta[i]} if self.mapping_meta[i] else {} for i in backing}
        return {**found, **super().mappings_of(target)}

    def _rollover(self, req: Request, stream: str) -> Reply:
        if req.method != "POST":
            return es_error(405, "method_not_allowed", f"{req.method} not allowed")
        if stream not in self.data_streams:
            return es_error(404, "index_not_found_exception", f"no such index [{stream}]")
        if req.query != {"lazy": ["true"]}:
            return es_error(400, "illegal_argument_exception", f"this fake only does lazy rollovers, got {req.query}")
        self.rollover_on_write.add(stream)
        old = self.write_index(stream)
        new = f"{old[:-6]}{int(old[-6:]) + 1:06d}"
        return es_reply({"acknowledged": True, "shards_acknowledged": False, "old_index": old, "new_index": new,
                         "rolled_over": False, "dry_run": False, "lazy": True, "conditions": {}})


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


def _streams(kinds: tuple[str, ...], namespaces: tuple[str, ...] = ("prod",)) -> list[str]:
    return sorted(f"logs-mlmon.{k}-{ns}" for k in kinds for ns in namespaces)


def _template_fingerprint(state: FakeElasticsearchWithStreams, template: str) -> str:
    found = state.index_templates[template]["template"]["mappings"]["_meta"][TEMPLATE_FINGERPRINT_KEY]
    assert isinstance(found, str) and found
    return found


def test_first_install_and_unchanged_reruns_request_no_rollover(assets: Path, cluster, capsys) -> None:
    server, state = cluster
    before = _installed_twice(server, assets)
    assert len(state.data_streams) == 10
    # Streams created by setup start on the current templates: their write index says so.
    for stream in state.data_streams:
        template = state.template_of(stream)
        assert template is not None and template.startswith("logs-mlmon.")
        assert state.mapping_meta[state.write_index(stream)] == {
            TEMPLATE_FINGERPRINT_KEY: _template_fingerprint(state, template)}
    assert _setup(server, assets) == 0
    assert _rollovers(server) == []
    # The check costs two reads a run, whatever the number of streams: the data streams
    # of our templates' patterns, then the fingerprints in their indices' mappings.
    patterns = ",".join(sorted(f"logs-mlmon.{k}-*" for k in ALL_KINDS))
    checks = [(r.method, r.path) for r in server.requests[before:] if "*" in r.path]
    assert checks == [("GET", f"/_data_stream/{patterns}"), ("GET", f"/{patterns}/_mapping")]
    mapping = next(r for r in server.requests[before:] if r.path.endswith("/_mapping"))
    assert mapping.query["filter_path"] == [f"*.mappings._meta.{TEMPLATE_FINGERPRINT_KEY}"]
    assert all(r.method in ("GET", "HEAD") for r in server.requests[before:])
    assert "nothing to change" in capsys.readouterr().out


def test_composed_fingerprint_is_in_the_mappings_of_every_index_template(assets: Path, cluster) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    names = [f"logs-mlmon.{k}" for k in ALL_KINDS] + [f"mlmon-{d}" for d in DOCUMENT_KINDS]
    fingerprints = {name: _template_fingerprint(state, name) for name in names}
    assert len(set(fingerprints.values())) == len(names)  # each template composes differently
    # A document index made from its template records it, like a backing index does.
    for kind in DOCUMENT_KINDS:
        index = f"mlmon-{kind}"
        assert state.index_mappings[index]["_meta"][TEMPLATE_FINGERPRINT_KEY] == fingerprints[index]


def test_changed_component_rolls_over_exactly_the_streams_of_templates_composed_of_it(
        assets: Path, cluster, capsys) -> None:
    server, state = cluster
    before = _installed_twice(server, assets)
    old = {k: _template_fingerprint(state, f"logs-mlmon.{k}") for k in ALL_KINDS}
    capsys.readouterr()
    _add_field(assets, "mlmon-model@mappings")  # in the prediction, feedback and explanation templates only
    assert _setup(server, assets) == 0
    writes = [(r.method, r.path, r.query, r.raw_body) for r in server.requests[before:] if r.method not in ("GET", "HEAD")]
    expected_streams = _streams(MODEL_KINDS, ("prod", "staging"))
    # The index templates composed of it are re-installed with their new composed fingerprint
    # (so the backing indices made by the rollovers carry it), then the streams are marked.
    assert [w[:2] for w in writes[:4]] == [("PUT", "/_component_template/mlmon-model@mappings")] + [
        ("PUT", f"/_index_template/logs-mlmon.{k}") for k in sorted(MODEL_KINDS)]
    assert sorted(writes[4:]) == [("POST", f"/{s}/_rollover", {"lazy": ["true"]}, b"") for s in expected_streams]
    assert state.rollover_on_write == set(expected_streams)
    new = {k: _template_fingerprint(state, f"logs-mlmon.{k}") for k in ALL_KINDS}
    assert [k for k in ALL_KINDS if new[k] != old[k]] == list(MODEL_KINDS)
    out = capsys.readouterr().out
    for stream in expected_streams:
        assert re.search(rf"marked\s+data stream {re.escape(stream)} \(rolls over onto the new template at its next write\)",
                         out), out
    assert len(re.findall(r"^\s*marked\s", out, re.M)) == len(expected_streams)

    # Marked but not written to yet: nothing to send again, and the run says they are pending.
    again = len(server.requests)
    assert _setup(server, assets) == 0
    assert all(r.method in ("GET", "HEAD") for r in server.requests[again:])
    out = capsys.readouterr().out
    assert len(re.findall(r"unchanged\s+data stream \S+ \(already marked: rolls over", out)) == len(expected_streams)
    assert "nothing to change" in out

    # The next write rolls each over onto an index made from the new template: nothing left to do.
    for stream in expected_streams:
        state.write(stream)
        assert state.mapping_meta[state.write_index(stream)][TEMPLATE_FINGERPRINT_KEY] == new[stream.split(".")[1].split("-")[0]]
    again = len(server.requests)
    assert _setup(server, assets) == 0
    assert all(r.method in ("GET", "HEAD") for r in server.requests[again:])
    assert "already marked" not in capsys.readouterr().out


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
    assert sorted(r.path for r in _rollovers(server, before)) == [f"/{s}/_rollover" for s in _streams(kinds)]


def test_settings_of_regular_indices_change_no_index(assets: Path, cluster) -> None:
    """mlmon-metrics & co. are regular indices: nothing rolls over, and a settings change has no mapping to update."""
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


def test_absent_streams_and_streams_on_another_template_are_left_alone(assets: Path, cluster) -> None:
    server, state = cluster
    assert _setup(server, assets) == 0
    # The feedback stream was deleted; a user's own template of higher priority owns a prediction stream.
    state.data_streams.discard("logs-mlmon.feedback-prod")
    state.index_templates["acme-special"] = {"index_patterns": ["logs-mlmon.prediction-special*"], "data_stream": {},
                                             "priority": 300, "composed_of": []}
    state.add_stream("logs-mlmon.prediction-special")  # no fingerprint: but not ours to roll over
    _add_field(assets, "mlmon-model@mappings")
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert sorted(r.path for r in _rollovers(server, before)) == [
        "/logs-mlmon.explanation-prod/_rollover", "/logs-mlmon.prediction-prod/_rollover"]


def test_overlapping_patterns_give_each_stream_one_request_from_the_template_it_uses(assets: Path, cluster) -> None:
    """A catch-all template of ours (lower priority) overlaps the per-kind ones: each stream has one owner."""
    server, state = cluster
    catch_all = {"index_patterns": ["logs-mlmon.*-*"], "data_stream": {}, "priority": 150,
                 "composed_of": ["mlmon-ecs@mappings", "mlmon-events@settings"]}
    (assets / "elasticsearch/index_templates/logs-mlmon.any.json").write_text(json.dumps(catch_all))
    assert _setup(server, assets) == 0
    state.add_stream("logs-mlmon.custom-prod")
    assert state.template_of("logs-mlmon.custom-prod") == "logs-mlmon.any"
    assert state.template_of("logs-mlmon.prediction-prod") == "logs-mlmon.prediction"
    _add_field(assets, "mlmon-ecs@mappings")  # in the catch-all and in every per-kind event template
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert sorted(r.path for r in _rollovers(server, before)) == [
        f"/{s}/_rollover" for s in sorted([*_streams(ALL_KINDS[:4]), "logs-mlmon.custom-prod"])]
    for stream in sorted(state.rollover_on_write):
        state.write(stream)
    again = len(server.requests)
    assert _setup(server, assets) == 0
    assert _rollovers(server, again) == []


def test_stream_created_before_setup_moves_onto_the_new_template(assets: Path, cluster, capsys) -> None:
    """Logstash wrote before the first setup: the stream was made from the built-in logs template, no fingerprint."""
    server, state = cluster
    state.add_stream("logs-mlmon.prediction-prod")
    assert state.template_of("logs-mlmon.prediction-prod") == "logs"
    assert state.mapping_meta[state.write_index("logs-mlmon.prediction-prod")] == {}
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


def test_a_stream_missing_its_fingerprint_is_marked_even_when_no_template_changed(assets: Path, cluster) -> None:
    """A write index without the fingerprint (made before this rule, or by hand) is not on the current template."""
    server, state = cluster
    assert _setup(server, assets) == 0
    state.mapping_meta[state.write_index("logs-mlmon.emitter-prod")] = {"managed_by": "someone else"}
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert [r.path for r in server.requests[before:] if r.method not in ("GET", "HEAD")] == [
        "/logs-mlmon.emitter-prod/_rollover"]


def _interrupt_at_first_rollover(state: FakeElasticsearchWithStreams) -> Callable[[Request], Reply]:
    """Ctrl-C while setup sends its first rollover, which Elasticsearch never processes."""
    interrupted: list[Request] = []

    def handler(req: Request) -> Reply:
        if req.path.endswith("/_rollover") and not interrupted:
            interrupted.append(req)
            _thread.interrupt_main()  # SIGINT in the main thread, as at a terminal
            return es_error(503, "node_closed_exception", "node closed")
        return state(req)

    return handler


def test_run_interrupted_after_the_template_update_is_completed_by_the_next_run(assets: Path, capsys) -> None:
    state = FakeElasticsearchWithStreams()
    with FakeServer(_interrupt_at_first_rollover(state)) as server:
        assert _setup(server, assets) == 0
        _add_field(assets, "mlmon-model@mappings")
        assert _setup(server, assets) == 130  # Ctrl-C: the templates are updated, no stream is marked
        assert state.rollover_on_write == set()
        capsys.readouterr()
        before = len(server.requests)
        assert _setup(server, assets) == 0
    # Every template is unchanged on this run; the streams are marked all the same.
    assert not any(r.method == "PUT" and "template" in r.path for r in server.requests[before:])
    assert sorted(r.path for r in _rollovers(server, before)) == [f"/{s}/_rollover" for s in _streams(MODEL_KINDS)]
    assert state.rollover_on_write == set(_streams(MODEL_KINDS))
    assert re.search(r"unchanged\s+component template mlmon-model@mappings", capsys.readouterr().out)


def test_stream_already_on_the_current_template_gets_no_request(assets: Path, capsys) -> None:
    """Between the interrupted run and the next, ILM rolled the prediction stream over onto the new template."""
    state = FakeElasticsearchWithStreams()
    with FakeServer(_interrupt_at_first_rollover(state)) as server:
        assert _setup(server, assets) == 0
        _add_field(assets, "mlmon-model@mappings")
        assert _setup(server, assets) == 130
        state.ilm_rollover("logs-mlmon.prediction-prod")
        before = len(server.requests)
        assert _setup(server, assets) == 0
    assert sorted(r.path for r in _rollovers(server, before)) == [
        "/logs-mlmon.explanation-prod/_rollover", "/logs-mlmon.feedback-prod/_rollover"]
    assert "logs-mlmon.prediction-prod" not in state.rollover_on_write


def test_stream_marked_already_gets_no_new_request(assets: Path, cluster, capsys) -> None:
    """rollover_on_write: an operator (or an earlier run) marked it; asking again changes nothing."""
    server, state = cluster
    assert _setup(server, assets) == 0
    state.rollover_on_write.add("logs-mlmon.feedback-prod")  # e.g. POST logs-mlmon.feedback-prod/_rollover?lazy
    _add_field(assets, "mlmon-model@mappings")
    capsys.readouterr()
    before = len(server.requests)
    assert _setup(server, assets) == 0
    assert sorted(r.path for r in _rollovers(server, before)) == [
        "/logs-mlmon.explanation-prod/_rollover", "/logs-mlmon.prediction-prod/_rollover"]
    assert re.search(r"unchanged\s+data stream logs-mlmon.feedback-prod \(already marked: rolls over onto the new "
                     r"template at its next write\)", capsys.readouterr().out)


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
    assert re.search(r"would update\s+index template logs-mlmon.prediction\b", out)
    assert re.search(r"would mark\s+data stream logs-mlmon.prediction-prod \(rolls over onto the new template", out)
    assert "feedback-prod (rolls over" not in out


def test_dry_run_of_a_first_install_counts_streams_the_new_template_will_take(assets: Path, cluster, capsys) -> None:
    server, state = cluster
    state.add_stream("logs-mlmon.emitter-prod")  # from the built-in logs template
    assert _setup(server, assets, "--dry-run") == 0
    assert server.writes() == []
    assert re.search(r"would mark\s+data stream logs-mlmon.emitter-prod", capsys.readouterr().out)


def test_refused_rollover_is_a_warning_setup_completes_and_the_next_run_asks_again(assets: Path, capsys) -> None:
    state = FakeElasticsearchWithStreams()
    refuse = [True]

    def handler(req: Request) -> Reply:
        # What an Elasticsearch older than 8.13 answers to ?lazy.
        if req.path == "/logs-mlmon.feedback-prod/_rollover" and refuse[0]:
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
        assert "the next mlmon setup asks again" in warning

        # The cluster is upgraded; no template changes, yet the next run asks for that stream only.
        refuse[0] = False
        before = len(server.requests)
        assert _setup(server, assets) == 0
    assert [r.path for r in _rollovers(server, before)] == ["/logs-mlmon.feedback-prod/_rollover"]
    assert "logs-mlmon.feedback-prod" in state.rollover_on_write


def test_bodies_sent_on_a_template_change_typecheck(assets: Path, cluster) -> None:
    """The re-installed index templates, composed fingerprint included, are valid put_index_template bodies."""
    server, _ = cluster
    assert _setup(server, assets) == 0
    _add_field(assets, "mlmon-ecs@mappings")
    before = len(server.requests)
    assert _setup(server, assets) == 0
    apis = {"_component_template": "cluster.put_component_template", "_index_template": "indices.put_index_template"}
    items = []
    for r in server.requests[before:]:
        if r.method in ("GET", "HEAD") or r.path.endswith("/_rollover"):
            assert r.raw_body == b"", f"{r.method} {r.path} sends a body the type check does not cover"
            continue
        items.append((apis[r.path.split("/")[1]], r.json, f"{r.method} {r.path}"))
    assert sorted(label for *_, label in items) == ["PUT /_component_template/mlmon-ecs@mappings"] + [
        f"PUT /_index_template/logs-mlmon.{k}" for k in sorted(ALL_KINDS[:4])]
    assert all(TEMPLATE_FINGERPRINT_KEY in body["template"]["mappings"]["_meta"]
               for api, body, _ in items if api == "indices.put_index_template")
    assert_bodies_typecheck(items)
