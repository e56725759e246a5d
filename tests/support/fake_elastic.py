"""Stateful fakes of the Elasticsearch and Kibana APIs ``mlmon setup`` uses, for :class:`FakeServer`.

They keep what was PUT and answer GETs with the response shapes of Elastic's API
documentation (9.x): ``{"component_templates": [{"name", "component_template"}]}``,
``{"<policy>": {"version", "modified_date", "policy"}}``, 404 error bodies, etc.
Elasticsearch normalises stored settings (numbers come back as strings); the fake
does too, so code that compares bodies naively would see a difference.

Regular indices get their mapping from the matching index template of highest
priority when created, composed as Elasticsearch does (the component templates'
mappings in ``composed_of`` order, then the template's own, later keys winning);
``POST /_index_template/_simulate_index/<name>`` answers that composition for any
name, existing or not (Elasticsearch removes the existing index from the state it
simulates in); ``PUT /<index>/_mapping`` merges like a mapping update: new fields
are added, a field's ``type`` cannot change (400 ``illegal_argument_exception``),
root parameters such as ``_meta`` and ``dynamic`` are replaced.

Searches (``/<index>/_search``, or ``/_search`` in a point in time) run over
:attr:`FakeElasticsearch.documents` (index -> id -> source): ``bool.filter`` of
``term``/``terms``/``range``, ``sort`` (with ``search_after``), ``from``/``size`` and
``track_total_hits``. Dates compare as the ISO strings mlmon writes (one format), not as
epoch milliseconds.

The fake refuses what a 9.4 cluster refuses (:func:`search_refusal`, shared with the other
fakes): ``from + size`` above ``index.max_result_window``, more buckets than
``search.max_buckets``, a ``terms`` query longer than ``index.max_terms_count``, ``top_hits``
beyond ``index.max_inner_result_window``, ``search_after`` without a sort or with another
number of values, or with ``from`` > 0; points in time (``POST /<index>/_pit``, ``pit`` in
the body, ``DELETE /_pit``) need a ``keep_alive`` within ``point_in_time.max_keep_alive``,
expire when it passes, refuse an index in the search path, see the documents as they were
when opened and add the ``_shard_doc`` tiebreaker. A missing index is 404 unless
``ignore_unavailable``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from mlmon.stack.elasticsearch_assets import count_fields
from tests.support.fake_http import Reply, Request, es_error, es_reply

INFO = {"name": "es01", "cluster_name": "docker-cluster", "cluster_uuid": "Aq2x",
        "version": {"number": "9.4.4", "build_flavor": "default", "lucene_version": "10.3.2",
                    "minimum_wire_compatibility_version": "8.19.0"},
        "tagline": "You Know, for Search"}

_ACK = {"acknowledged": True}


def _stringify_settings(value: Any) -> Any:
    """Elasticsearch returns every index setting as a string."""
    if isinstance(value, dict):
        return {k: _stringify_settings(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _normalised_template(body: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    template = out.get("template", {})
    if "settings" in template:
        template["settings"] = _stringify_settings(template["settings"])
    return out


def merge_deep(into: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep merge, ``top``'s keys winning (how index templates compose mappings)."""
    out = dict(into)
    for key, value in top.items():
        out[key] = merge_deep(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def filter_path(value: Any, path: list[str]) -> Any:
    """Elasticsearch's ``filter_path`` for one dotted path (``*`` matches any key); None when nothing is left."""
    if not path:
        return value
    if not isinstance(value, dict):
        return None
    kept = {k: sub for k, v in value.items() if fnmatch.fnmatchcase(k, path[0])
            and (sub := filter_path(v, path[1:])) not in (None, {})}
    return kept or None


class MappingConflict(Exception):
    pass


def _update_properties(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A mapping update's merge of ``properties``: fields added, parameters updated, no type change."""
    out = dict(old)
    for name, field in new.items():
        path = f"{prefix}{name}"
        before = out.get(name)
        if before is None:
            out[name] = field
            continue
        old_type, new_type = before.get("type", "object"), field.get("type", "object")
        if old_type != new_type:
            raise MappingConflict(f"mapper [{path}] cannot be changed from type [{old_type}] to [{new_type}]")
        merged = {**before, **{k: v for k, v in field.items() if k != "properties"}}
        if "properties" in field or "properties" in before:
            merged["properties"] = _update_properties(before.get("properties", {}), field.get("properties", {}),
                                                      f"{path}.")
        out[name] = merged
    return out


class FakeElasticsearch:
    def __init__(self, licence: str = "basic") -> None:
        self.licence = licence
        self.component_templates: dict[str, dict[str, Any]] = {}
        self.index_templates: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, dict[str, Any]] = {}
        self.watches: dict[str, dict[str, Any]] = {}
        self.data_streams: set[str] = set()
        self.indices: set[str] = set()
        self.index_mappings: dict[str, dict[str, Any]] = {}  # regular index -> its mapping
        self.documents: dict[str, dict[str, dict[str, Any]]] = {}  # index -> id -> source, for searches
        self.pits: dict[str, Pit] = {}
        self.backing: dict[str, list[str]] = {}  # data stream -> backing indices, the write index last
        self.dynamic_fields: dict[str, set[str]] = {}  # concrete index -> fields its documents mapped dynamically
        self.clock: Callable[[], float] = time.monotonic  # tests move it to expire points in time

    def __call__(self, req: Request) -> Reply:
        m, p = req.method, req.path
        if m == "GET" and p == "/":
            return es_reply(INFO)
        if m == "GET" and p == "/_license":
            return es_reply({"license": {"status": "active", "uid": "x", "type": self.licence,
                                         "issue_date_in_millis": 0, "max_nodes": 1000}})
        if match := re.fullmatch(r"/_component_template/([^/]+)", p):
            return self._store(req, self.component_templates, match[1], "component_templates", "component_template")
        if m == "POST" and (match := re.fullmatch(r"/_index_template/_simulate_index/([^/]+)", p)):
            return self._simulate_index(match[1])
        if match := re.fullmatch(r"/_index_template/([^/]+)", p):
            if m == "PUT" and (refused := self._leaves_streams_without_template(match[1], req.json)):
                return refused
            return self._store(req, self.index_templates, match[1], "index_templates", "index_template")
        if m == "GET" and (match := re.fullmatch(r"/_cat/indices/([^/]+)", p)):
            return self._cat_indices(req, match[1].split(","))
        if match := re.fullmatch(r"/_ilm/policy/([^/]+)", p):
            return self._policy(req, match[1])
        if match := re.fullmatch(r"/_security/role/([^/]+)", p):
            return self._role(req, match[1])
        if match := re.fullmatch(r"/_watcher/watch/([^/]+)", p):
            return self._watch(req, match[1])
        if match := re.fullmatch(r"/_data_stream/([^/]+)", p):
            return self._data_stream(req, match[1])
        if m in ("GET", "POST") and (match := re.fullmatch(r"/([a-z][^/]*)/_search", p)):
            return self._search(req, match[1])
        if m in ("POST", "PUT") and (match := re.fullmatch(r"(?:/([a-z][^/]*))?/_bulk", p)):
            return self._bulk(req, match[1])
        if match := re.fullmatch(r"/([^/_][^/]*)/_rollover", p):
            return self._rollover(req, match[1])
        if m in ("GET", "POST") and p == "/_search":
            return self._search(req, None)
        if m == "POST" and (match := re.fullmatch(r"/([a-z][^/]*)/_pit", p)):
            return self._open_pit(req, match[1])
        if m == "DELETE" and p == "/_pit":
            return self._close_pit(req)
        if match := re.fullmatch(r"/([a-z][^/]*)", p):
            return self._index(req, match[1])
        if match := re.fullmatch(r"/([a-z][^/]*)/_mapping", p):
            return self._get_mapping(req, match[1].split(",")) if m == "GET" else self._put_mapping(req, match[1])
        return es_error(400, "illegal_argument_exception", f"fake has no route for {m} {p}")

    def _store(self, req: Request, store: dict[str, Any], name: str, plural: str, singular: str) -> Reply:
        if req.method == "PUT":
            store[name] = _normalised_template(req.json)
            return es_reply(_ACK)
        if name not in store:
            return es_error(404, "resource_not_found_exception", f"{singular.replace('_', ' ')} matching [{name}] not found")
        return es_reply({plural: [{"name": name, singular: store[name]}]})

    def _policy(self, req: Request, name: str) -> Reply:
        if req.method == "PUT":
            version = self.policies.get(name, {}).get("version", 0) + 1
            self.policies[name] = {"version": version, "modified_date": "2025-01-01T00:00:00.000Z",
                                   "policy": req.json["policy"], "in_use_by": {"indices": [], "data_streams": [],
                                                                               "composable_templates": []}}
            return es_reply(_ACK)
        if name not in self.policies:
            return es_error(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}")
        return es_reply({name: self.policies[name]})

    def _role(self, req: Request, name: str) -> Reply:
        if req.method == "PUT":
            created = name not in self.roles
            # The GET shape adds defaults the PUT did not send.
            self.roles[name] = {"cluster": [], "indices": [], "applications": [], "run_as": [],
                                "transient_metadata": {"enabled": True}, **req.json}
            return es_reply({"role": {"created": created}})
        if name not in self.roles:
            return es_reply({}, 404)
        return es_reply({name: self.roles[name]})

    def _watch(self, req: Request, watch_id: str) -> Reply:
        if self.licence not in ("gold", "platinum", "enterprise", "trial"):
            return es_error(403, "security_exception", "current license is non-compliant for [watcher]")
        if req.method == "PUT":
            created = watch_id not in self.watches
            self.watches[watch_id] = req.json
            return es_reply({"_id": watch_id, "_version": 1, "_seq_no": 0, "_primary_term": 1, "created": created})
        if watch_id not in self.watches:
            return es_reply({"found": False, "_id": watch_id}, 404)
        return es_reply({"found": True, "_id": watch_id, "_version": 1, "watch": self.watches[watch_id],
                         "status": {"state": {"active": True}, "version": 1}})

    def _data_stream(self, req: Request, name: str) -> Reply:
        if req.method == "PUT":
            if not any(re.fullmatch(t["index_patterns"][0].replace(".", r"\.").replace("*", ".*"), name)
                       and "data_stream" in t for t in self.index_templates.values()):
                return es_error(400, "illegal_argument_exception", f"no matching index template found for data stream [{name}]")
            self.data_streams.add(name)
            return es_reply(_ACK)
        # Comma-separated names and wildcards; a wildcard matching nothing is an empty list.
        found: list[str] = []
        for one in name.split(","):
            hits = sorted(s for s in self.data_streams if fnmatch.fnmatchcase(s, one))
            if not hits and "*" not in one:
                return es_error(404, "index_not_found_exception", f"no such index [{one}]")
            found += [h for h in hits if h not in found]
        return es_reply({"data_streams": [
            {"name": s, "timestamp_field": {"name": "@timestamp"}, "generation": len(self.backing.get(s, [])) or 1,
             "indices": [{"index_name": i} for i in self.backing.get(s, [])], "status": "GREEN",
             "template": self.matching_template(s)} for s in found]})

    def _index(self, req: Request, name: str) -> Reply:
        if req.method == "HEAD":
            return es_reply(None, 200 if name in self.indices else 404)
        if req.method == "PUT":
            if name in self.indices:
                return es_error(400, "resource_already_exists_exception", f"index [{name}] already exists")
            if (refused := self.create_index(name)) is not None:
                return es_error(400, str(refused["type"]), str(refused["reason"]))
            return es_reply({"acknowledged": True, "shards_acknowledged": True, "index": name})
        return es_error(400, "illegal_argument_exception", f"fake has no route for {req.method} /{name}")

    def create_index(self, name: str) -> dict[str, Any] | None:
        """A regular index from the matching template (an explicit create or a write's auto-create); the error, if refused.

        With ``index.lifecycle.parse_origination_date``, Elasticsearch refuses a name ILM cannot
        take a date from (IndexLifecycleOriginationDateParser, checked before the index is made).
        """
        lifecycle = self.composed_settings(name).get("index", {}).get("lifecycle", {})
        if str(lifecycle.get("parse_origination_date")).lower() == "true" and not re.fullmatch(ILM_ORIGINATION_NAME, name):
            return {"type": "illegal_argument_exception", "reason":
                    f"index name [{name}] does not match pattern '{ILM_ORIGINATION_NAME}'"}
        self.indices.add(name)
        self.index_mappings[name] = self.composed_mappings(name)
        return None

    def _leaves_streams_without_template(self, name: str, body: dict[str, Any]) -> Reply | None:
        """Elasticsearch's MetadataIndexTemplateService.validateDataStreamsStillReferenced: a template
        that would leave an existing data stream matching no data-stream template is refused."""
        after = {**self.index_templates, name: body}

        def has_stream_template(stream: str, templates: dict[str, dict[str, Any]]) -> bool:
            matching = [(int(b.get("priority", 0)), t) for t, b in templates.items()
                        if any(fnmatch.fnmatchcase(stream, p) for p in b["index_patterns"])]
            return bool(matching) and "data_stream" in templates[max(matching)[1]]
        lost = sorted(s for s in self.data_streams
                      if has_stream_template(s, self.index_templates) and not has_stream_template(s, after))
        if not lost:
            return None
        return es_error(400, "illegal_argument_exception",
                        f"composable template [{name}] with index patterns {body['index_patterns']}, priority "
                        f"[{body.get('priority')}] {'' if 'data_stream' in body else 'and no data stream configuration '}"
                        f"would cause data streams {lost} to no longer match a data stream template")

    def _cat_indices(self, req: Request, names: list[str]) -> Reply:
        """``GET /_cat/indices/<names>?format=json&h=index``: open regular indices (wildcards match none: empty)."""
        if req.query.get("format") != ["json"] or req.query.get("h") != ["index"]:
            return es_error(400, "illegal_argument_exception", "the fake answers format=json&h=index only")
        missing = [n for n in names if "*" not in n and n not in self.indices]
        if missing:
            return es_error(404, "index_not_found_exception", f"no such index [{missing[0]}]")
        return es_reply([{"index": i} for i in sorted(self.indices) if any(fnmatch.fnmatchcase(i, n) for n in names)])

    def matching_template(self, name: str) -> str | None:
        matching = [(int(body.get("priority", 0)), t) for t, body in self.index_templates.items()
                    if any(fnmatch.fnmatchcase(name, p) for p in body["index_patterns"])]
        return max(matching)[1] if matching else None

    def composed_mappings(self, name: str) -> dict[str, Any]:
        """The mapping an index named ``name`` gets from the index templates as they are now."""
        template = self.matching_template(name)
        if template is None:
            return {}
        body = self.index_templates[template]
        mappings: dict[str, Any] = {}
        for part in [self.component_templates[c] for c in body.get("composed_of", [])] + [body]:
            mappings = merge_deep(mappings, part.get("template", {}).get("mappings", {}))
        return mappings

    def composed_settings(self, name: str) -> dict[str, Any]:
        """The settings an index named ``name`` gets from the index templates, in the nested form."""
        template = self.matching_template(name)
        if template is None:
            return {}
        settings: dict[str, Any] = {}
        body = self.index_templates[template]
        for part in [self.component_templates[c] for c in body.get("composed_of", [])] + [body]:
            settings = merge_deep(settings, _nested_settings(part.get("template", {}).get("settings", {})))
        return settings

    def _simulate_index(self, name: str) -> Reply:
        if self.matching_template(name) is None:
            return es_reply({})
        return es_reply({"template": {"settings": self.composed_settings(name), "mappings": self.composed_mappings(name),
                                      "aliases": {}}, "overlapping": []})

    def mappings_of(self, target: str) -> dict[str, dict[str, Any]]:
        """Index -> mapping, for the indices a ``GET /<target>/_mapping`` target names (or matches)."""
        return {i: self.index_mappings[i] for i in sorted(self.index_mappings) if fnmatch.fnmatchcase(i, target)}

    def _get_mapping(self, req: Request, targets: list[str]) -> Reply:
        found: dict[str, Any] = {}
        for target in targets:
            hits = self.mappings_of(target)
            if not hits and "*" not in target and req.query.get("ignore_unavailable") != ["true"]:
                return es_error(404, "index_not_found_exception", f"no such index [{target}]")
            found.update({i: {"mappings": mapping} for i, mapping in hits.items()})
        if "filter_path" in req.query:
            found = filter_path(found, req.query["filter_path"][0].split(".")) or {}
        return es_reply(found)

    def _put_mapping(self, req: Request, index: str) -> Reply:
        if req.method != "PUT":
            return es_error(405, "method_not_allowed", f"{req.method} not allowed")
        if index not in self.index_mappings:
            return es_error(404, "index_not_found_exception", f"no such index [{index}]")
        update = req.json
        current = self.index_mappings[index]
        try:
            properties = _update_properties(current.get("properties", {}), update.get("properties", {}))
        except MappingConflict as exc:
            return es_error(400, "illegal_argument_exception", str(exc))
        self.index_mappings[index] = {**current, **{k: v for k, v in update.items() if k != "properties"},
                                      "properties": properties}
        return es_reply(_ACK)


    # --- writes: _id unique per concrete index, field limits -------------------------------------

    def write_index(self, stream: str) -> str:
        backing = self.backing.setdefault(stream, [])
        if not backing:
            backing.append(f".ds-{stream}-2025.01.01-000001")
        return backing[-1]

    def _rollover(self, req: Request, stream: str) -> Reply:
        """An immediate rollover: a new write index; the old one keeps its documents (and their ids)."""
        if req.method != "POST" or stream not in self.data_streams:
            return es_error(404, "index_not_found_exception", f"no such index [{stream}]")
        old = self.write_index(stream)
        new = f"{old[:-6]}{int(old[-6:]) + 1:06d}"
        self.backing[stream].append(new)
        return es_reply({"acknowledged": True, "shards_acknowledged": True, "old_index": old, "new_index": new,
                         "rolled_over": True, "dry_run": False, "lazy": False, "conditions": {}})

    def _bulk(self, req: Request, default_index: str | None) -> Reply:
        lines = [json.loads(line) for line in req.raw_body.decode().splitlines() if line.strip()]
        items = []
        for action, source in zip(lines[::2], lines[1::2]):
            (op, meta), = action.items()
            target = meta.get("_index", default_index)
            status, result = self.write_document(str(target), meta.get("_id"), source, op)
            items.append({op: {"_index": result.get("_index", target), "_id": meta.get("_id"), "status": status,
                               **({"error": result} if status >= 300 else {"result": "created", "_version": 1})}})
        return es_reply({"took": 1, "errors": any(i[next(iter(i))]["status"] >= 300 for i in items), "items": items})

    def write_document(self, target: str, doc_id: str | None, source: dict[str, Any], op: str) -> tuple[int, dict[str, Any]]:
        """One document write as Elasticsearch does it: (status, error or {"_index": concrete index})."""
        if target in self.data_streams or self._is_stream(target):
            if op != "create":
                return 400, {"type": "illegal_argument_exception", "reason":
                             f"only write ops with an op_type of create are allowed in data streams"}
            self.data_streams.add(target)
            index = self.write_index(target)
        else:
            index = target
            if index not in self.indices and (refused := self.create_index(index)) is not None:
                return 400, refused  # auto-create refused (the writer's auto_configure privilege is assumed)
        docs = self.documents.setdefault(index, {})
        doc_id = doc_id or f"auto-{sum(map(len, self.documents.values()))}"
        if op == "create" and doc_id in docs:  # unique per concrete index only: a rollover forgets the ids
            return 409, {"type": "version_conflict_engine_exception", "index": index,
                         "reason": f"[{doc_id}]: version conflict, document already exists (current version [1])"}
        limit, ignore_beyond = self._field_limit(target)
        mapping = self.composed_mappings(target)
        seen = self.dynamic_fields.setdefault(index, set())
        new = dynamic_paths(source, mapping) - seen
        fields = count_fields(mapping.get("properties", {})) + len(seen) + len(new)
        if limit is not None and fields > limit:
            if not ignore_beyond:
                return 400, {"type": "document_parsing_exception", "reason":
                             f"[1:1] failed to parse: Limit of total fields [{limit}] has been exceeded while "
                             f"adding new fields [{len(new)}]"}
            new = set(sorted(new)[:max(0, limit - fields + len(new))])  # the rest stays unmapped (_ignored)
        seen |= new
        docs[doc_id] = source
        return 201, {"_index": index}

    def _is_stream(self, name: str) -> bool:
        template = self.matching_template(name)
        return template is not None and "data_stream" in self.index_templates[template]

    def _field_limit(self, name: str) -> tuple[int | None, bool]:
        """index.mapping.total_fields.limit and ignore_dynamic_beyond_limit from the templates (None: none set)."""
        if self.matching_template(name) is None:
            return None, False
        total = self.composed_settings(name).get("index", {}).get("mapping", {}).get("total_fields", {})
        limit = total.get("limit")
        return (None if limit is None else int(limit)), str(total.get("ignore_dynamic_beyond_limit")) == "true"

    def _open_pit(self, req: Request, index: str) -> Reply:
        keep_alive = (req.query.get("keep_alive") or [""])[0]
        if not keep_alive:
            return es_error(400, "action_request_validation_exception", "Validation Failed: 1: [keep_alive] is not specified;")
        seconds = keep_alive_seconds(keep_alive)
        if seconds > MAX_KEEP_ALIVE_S:
            return es_error(400, "illegal_argument_exception", _too_long(keep_alive))
        if index not in self.documents and req.query.get("ignore_unavailable") != ["true"]:
            return es_error(404, "index_not_found_exception", f"no such index [{index}]")
        pit_id = f"pit-{len(self.pits) + 1}"
        snapshot = {i: dict(docs) for i, docs in self.documents.items() if fnmatch.fnmatchcase(i, index)}
        self.pits[pit_id] = Pit(snapshot, self.clock() + seconds)
        return es_reply({"id": pit_id, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})

    def _close_pit(self, req: Request) -> Reply:
        found = self.pits.pop(str((req.json or {}).get("id")), None) is not None
        return es_reply({"succeeded": found, "num_freed": int(found)}, 200 if found else 404)

    def _search(self, req: Request, index: str | None) -> Reply:
        body = req.json or {}
        refused = search_refusal(body)
        if refused is not None:
            return refused
        pit = body.get("pit")
        if pit is not None and index is not None:
            return es_error(400, "action_request_validation_exception",
                            "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify "
                            "any index with point in time.;")
        if pit is None and index is None:
            return es_error(400, "illegal_argument_exception", "the fake needs an index or a point in time")
        if pit is not None:
            state = self.pits.get(str(pit.get("id")))
            if state is None or state.expires < self.clock():
                return es_error(404, "search_context_missing_exception",
                                f"No search context found for id [{pit.get('id')}]")
            if "keep_alive" in pit:
                seconds = keep_alive_seconds(str(pit["keep_alive"]))
                if seconds > MAX_KEEP_ALIVE_S:
                    return es_error(400, "illegal_argument_exception", _too_long(str(pit["keep_alive"])))
                state.expires = self.clock() + seconds
            sources = {(i, doc_id): src for i, docs in state.snapshot.items() for doc_id, src in docs.items()}
        else:
            assert index is not None
            if index not in self.documents and req.query.get("ignore_unavailable") != ["true"]:
                return es_error(404, "index_not_found_exception", f"no such index [{index}]")
            sources = {(index, doc_id): src for doc_id, src in self.documents.get(index, {}).items()}
        start, size = int(body.get("from", 0)), int(body.get("size", 10))
        sort = [next(iter(s.items())) if isinstance(s, dict) else (s, "asc") for s in body.get("sort", [])]
        keys = [(field, order["order"] if isinstance(order, dict) else order) for field, order in sort]
        docs = [(key, src) for key, src in sources.items()
                if all(_matches(f, src) for f in body.get("query", {}).get("bool", {}).get("filter", []))]
        if pit is not None:
            # Elasticsearch adds the _shard_doc tiebreaker (ascending) to a sort in a point in time.
            order = {key: n for n, key in enumerate(sorted(sources))}
            keys.append(("_shard_doc", "asc"))
            docs = [(key, {**src, "_shard_doc": order[key]}) for key, src in docs]
        orders = [o for _, o in keys]
        docs.sort(key=lambda d: _sort_key([_field(d[1], f) for f, _ in keys], orders))
        total = len(docs)  # search_after pages through the same matches: the total stays theirs
        if "search_after" in body:
            after = _sort_key(body["search_after"], orders)
            docs = [d for d in docs if _sort_key([_field(d[1], f) for f, _ in keys], orders) > after]
        hits = [{"_index": key[0], "_id": key[1], "_source": {k: v for k, v in src.items() if k != "_shard_doc"},
                 "sort": [_field(src, f) for f, _ in keys]} for key, src in docs[start:start + size]]
        out: dict[str, Any] = {"took": 1, "timed_out": False,
                               "hits": {"total": {"value": total, "relation": "eq"}, "max_score": None, "hits": hits}}
        if pit is not None:
            out["pit_id"] = pit["id"]
        return es_reply(out)


def _nested_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{"index.mapping.x": 1}`` and ``{"index": {"mapping": {"x": 1}}}`` both as the nested form."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = merge_deep(node.get(leaf, {}), _nested_settings(value)) if isinstance(value, dict) else value
    return out


def dynamic_paths(source: Mapping[str, Any], mapping: Mapping[str, Any]) -> set[str]:
    """Dotted paths (objects and leaves) a document would add to ``mapping`` by dynamic mapping;
    nothing under an object with ``dynamic: false`` (kept in _source, not mapped)."""
    def walk(src: Mapping[str, Any], props: Mapping[str, Any], dynamic: bool, prefix: str) -> set[str]:
        out: set[str] = set()
        for key, value in src.items():
            path, spec = f"{prefix}{key}", props.get(key)
            if spec is None:
                if dynamic:
                    out.add(path)
                    if isinstance(value, dict):
                        out |= walk(value, {}, True, f"{path}.")
            elif isinstance(value, dict) and ("properties" in spec or spec.get("type", "object") == "object"):
                out |= walk(value, spec.get("properties", {}), str(spec.get("dynamic", dynamic)).lower() == "true",
                            f"{path}.")
        return out
    return walk(source, mapping.get("properties", {}), str(mapping.get("dynamic", True)).lower() == "true", "")


@dataclass
class Pit:
    """A point in time: the documents as they were when it was opened, and when it expires."""

    snapshot: dict[str, dict[str, dict[str, Any]]]
    expires: float


def keep_alive_seconds(value: str) -> float:
    """Elasticsearch time units (``30s``, ``2m``, ``1h``, ``1d``, ``500ms``) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", value)
    if match is None:
        raise ValueError(f"not a time value: {value!r}")
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _too_long(keep_alive: str) -> str:
    return (f"Keep alive for request ({keep_alive}) is too large. It must be less than (1d). This limit can be set "
            f"by changing the [point_in_time.max_keep_alive] cluster level setting.")


def search_refusal(body: Mapping[str, Any]) -> Reply | None:
    """The 400 a 9.4 cluster answers to a search body that breaks one of its limits, or None.

    Checked before any document is looked at, as Elasticsearch validates the request first:
    ``index.max_result_window``, ``search_after`` rules, ``index.max_terms_count`` (terms
    queries), ``index.max_inner_result_window`` (top_hits) and ``search.max_buckets`` (the
    buckets the aggregations can return, counted from their sizes and ranges).
    """
    start, size = int(body.get("from", 0)), int(body.get("size", 10))
    if start + size > MAX_RESULT_WINDOW:
        return es_error(400, "illegal_argument_exception",
                        f"Result window is too large, from + size must be less than or equal to: "
                        f"[{MAX_RESULT_WINDOW}] but was [{start + size}]. See the scroll api for a more "
                        f"efficient way to request large data sets. This limit can be set by changing the "
                        f"[index.max_result_window] index level setting.")
    if "search_after" in body:
        sort = body.get("sort") or []
        if not sort:
            return es_error(400, "illegal_argument_exception", "Sort must contain at least one field.")
        if start > 0:
            return es_error(400, "illegal_argument_exception",
                            "`from` parameter must be set to 0 when `search_after` is used.")
        expected = len(sort) + (1 if "pit" in body and not any("_shard_doc" in str(s) for s in sort) else 0)
        if len(body["search_after"]) != expected:
            return es_error(400, "illegal_argument_exception",
                            f"search_after has {len(body['search_after'])} value(s) but sort has {expected}.")
    for terms in _clauses(body.get("query", {}), "terms"):
        values: Any = next(iter(v for k, v in terms.items() if k != "boost"), [])
        if isinstance(values, list) and len(values) > MAX_TERMS_COUNT:
            return es_error(400, "illegal_argument_exception",
                            f"The number of terms [{len(values)}] used in the Terms Query request has exceeded "
                            f"the allowed maximum of [{MAX_TERMS_COUNT}]. This maximum can be set by changing the "
                            f"[index.max_terms_count] index level setting.")
    aggs = body.get("aggs") or body.get("aggregations") or {}
    for top in _aggs_of_kind(aggs, "top_hits"):
        wanted = int(top.get("from", 0)) + int(top.get("size", 3))
        if wanted > MAX_INNER_RESULT_WINDOW:
            return es_error(400, "illegal_argument_exception",
                            f"Top hits result window is too large, the top hits aggregator [latest]'s from + size "
                            f"must be less than or equal to: [{MAX_INNER_RESULT_WINDOW}] but was [{wanted}]. This "
                            f"limit can be set by changing the [index.max_inner_result_window] index level setting.")
    buckets = bucket_count(aggs)
    if buckets > MAX_BUCKETS:
        return es_error(400, "too_many_buckets_exception",
                        f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}] but "
                        f"this number of buckets was exceeded. This limit can be set by changing the "
                        f"[search.max_buckets] cluster level setting.")
    return None


def bucket_count(aggs: Mapping[str, Any]) -> int:
    """The most buckets ``aggs`` can return: each bucket aggregation's buckets times its sub-aggregations'."""
    total = 0
    for spec in aggs.values():
        subs = spec.get("aggs") or spec.get("aggregations") or {}
        own = 0
        if "range" in spec:
            own = len(spec["range"]["ranges"])
        elif "terms" in spec:
            own = int(spec["terms"].get("size", 10))
        elif "composite" in spec:
            own = int(spec["composite"].get("size", 10))
        elif "filters" in spec:
            own = len(spec["filters"]["filters"])
        elif "date_histogram" in spec or "histogram" in spec:
            own = 1  # unbounded without the data; mlmon sends neither
        elif "filter" in spec or "missing" in spec:
            own = 1
        total += own + own * bucket_count(subs) if own else bucket_count(subs)
    return total


def _clauses(query: Any, kind: str) -> list[dict[str, Any]]:
    """Every ``kind`` clause anywhere in a query."""
    found: list[dict[str, Any]] = []
    if isinstance(query, dict):
        for key, value in query.items():
            if key == kind and isinstance(value, dict):
                found.append(value)
            else:
                found += _clauses(value, kind)
    elif isinstance(query, list):
        for item in query:
            found += _clauses(item, kind)
    return found


def _aggs_of_kind(aggs: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for spec in aggs.values():
        if kind in spec:
            found.append(spec[kind])
        found += _aggs_of_kind(spec.get("aggs") or spec.get("aggregations") or {}, kind)
    return found


#: Elasticsearch's IndexLifecycleOriginationDateParser: with index.lifecycle.parse_origination_date, an index
#: name must end in -yyyy.MM.dd (optionally -<digits>), or the index is not created.
ILM_ORIGINATION_NAME = r"^.*-(\d{4}.\d{2}.\d{2})(-[\d]+)?$"
#: index.max_result_window's default.
MAX_RESULT_WINDOW = 10_000
#: search.max_buckets, index.max_terms_count and index.max_inner_result_window defaults (9.x).
MAX_BUCKETS = 65_536
MAX_TERMS_COUNT = 65_536
MAX_INNER_RESULT_WINDOW = 100
#: point_in_time.max_keep_alive's default (24h).
MAX_KEEP_ALIVE_S = 86_400.0


def _field(source: dict[str, Any], dotted: str) -> Any:
    value: Any = source
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(clause: dict[str, Any], source: dict[str, Any]) -> bool:
    (kind, spec), = clause.items()
    (field, arg), = spec.items()
    value = _field(source, field)
    if kind == "term":
        return bool(value == arg)
    if kind == "terms":
        return value in arg
    if kind == "range":
        tests = {"gt": lambda b: value > b, "gte": lambda b: value >= b, "lt": lambda b: value < b,
                 "lte": lambda b: value <= b}
        return value is not None and all(tests[op](bound) for op, bound in arg.items() if op in tests)
    raise AssertionError(f"the fake does not evaluate {kind!r} queries")


class _Desc:
    """Reverses the order of a sort value (for ``"order": "desc"``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __gt__(self, other: _Desc) -> bool:
        return bool(other.value > self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(self.value == other.value)


def _sort_key(values: list[Any], orders: list[str]) -> tuple[Any, ...]:
    # Missing values sort last in either order, as Elasticsearch's default "missing": "_last".
    return tuple((v is None, _Desc(v) if o == "desc" and v is not None else ("" if v is None else v))
                 for v, o in zip(values, orders))


#: Kibana's DEFAULT_TAB_UUID_NAMESPACE (src/platform/plugins/shared/saved_search/common/service/extract_tabs.ts):
#: the tab a pre-tab Discover session gets is uuidv5(session id, this namespace).
DEFAULT_TAB_UUID_NAMESPACE = uuid.UUID("617f8ea7-754a-4a75-86bf-58c4b2f99690")
#: Root attributes a Discover session keeps from model version 13 (SCHEMA_DISCOVER_SESSION_V13).
SESSION_ROOT = ("title", "description", "tabs")
#: Tab attributes the create schema defaults (SCHEMA_TAB_ATTRIBUTES_V13).
TAB_DEFAULTS = {"hideChart": False, "hideTable": False, "isTextBasedQuery": False}


def migrate_saved_object(obj: dict[str, Any]) -> dict[str, Any]:
    """What a 9.4 Kibana stores for an imported object: ``search`` objects migrated to model version 13.

    extractTabsTransformFnV13, then the data_removal of the legacy root attributes: everything but
    title and description moves into one tab (deterministic id from the object's id, label
    "Untitled", schema defaults filled in); the type's migration version becomes 10.13.0.
    """
    if obj.get("type") != "search" or "tabs" in obj.get("attributes", {}):
        return obj
    attributes = dict(obj.get("attributes", {}))
    tab = {k: v for k, v in attributes.items() if k not in (*SESSION_ROOT, "version", "hits")}
    migrated = {"title": attributes.get("title", ""), "description": attributes.get("description", ""),
                "tabs": [{"id": str(uuid.uuid5(DEFAULT_TAB_UUID_NAMESPACE, str(obj["id"]))), "label": "Untitled",
                          "attributes": {**TAB_DEFAULTS, **tab}}]}
    return {**obj, "attributes": migrated, "typeMigrationVersion": "10.13.0"}


class FakeKibana:
    """Saved objects export/import and the alerting rule API (Kibana 9.x shapes).

    Imported ``search`` objects are migrated as 9.4 migrates them (:func:`migrate_saved_object`),
    so an export never gives back the attributes that were imported.
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.connectors: dict[str, dict[str, Any]] = {}

    def __call__(self, req: Request) -> Reply:
        m, p = req.method, req.path
        if req.method != "GET" and req.headers.get("kbn-xsrf") is None:
            return Reply(400, {"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."})
        if m == "GET" and p == "/api/status":
            return Reply(200, {"name": "kibana", "version": {"number": "9.4.4"}, "status": {"overall": {"level": "available"}}})
        if m == "POST" and p == "/api/saved_objects/_export":
            wanted = [(o["type"], o["id"]) for o in req.json["objects"]]
            missing = [w for w in wanted if w not in self.objects]
            if missing:
                return Reply(400, {"statusCode": 400, "error": "Bad Request",
                                   "message": f"Error fetching objects to export: {missing}"})
            lines = [json.dumps({**self.objects[w], "updated_at": "2025-01-01T00:00:00.000Z", "version": "WzEsMV0=",
                                 "coreMigrationVersion": "8.8.0"}) for w in wanted]
            return Reply(200, ("\n".join(lines) + "\n").encode(), {"Content-Type": "application/ndjson"})
        if m == "POST" and p == "/api/saved_objects/_import":
            if req.query.get("overwrite") != ["true"]:
                return Reply(409, {"message": "conflict: import without overwrite"})
            objects = [json.loads(line) for line in _multipart_file(req).decode().splitlines() if line.strip()]
            for obj in objects:
                self.objects[(obj["type"], obj["id"])] = migrate_saved_object(obj)
            return Reply(200, {"success": True, "successCount": len(objects), "successResults": [
                {"type": o["type"], "id": o["id"], "overwrite": True} for o in objects]})
        if match := re.fullmatch(r"/api/alerting/rule/([^/]+)", p):
            return self._rule(req, match[1])
        if match := re.fullmatch(r"/api/actions/connector/([^/]+)", p):
            return self._connector(req, match[1])
        return Reply(404, {"statusCode": 404, "error": "Not Found", "message": f"no route {m} {p}"})

    def _connector(self, req: Request, connector_id: str) -> Reply:
        if req.method == "GET":
            if connector_id not in self.connectors:
                return Reply(404, {"statusCode": 404, "error": "Not Found",
                                   "message": f"Saved object [action/{connector_id}] not found"})
            return Reply(200, self.connectors[connector_id])
        if req.method == "POST":
            if connector_id in self.connectors:
                return Reply(409, {"statusCode": 409, "error": "Conflict", "message": "connector exists"})
            body = {k: v for k, v in req.json.items() if k != "secrets"}  # secrets are never returned
            self.connectors[connector_id] = {**body, "id": connector_id, "is_preconfigured": False,
                                             "is_deprecated": False, "is_missing_secrets": False}
            return Reply(200, self.connectors[connector_id])
        if req.method == "PUT":
            if connector_id not in self.connectors or "connector_type_id" in req.json:
                return Reply(400, {"statusCode": 400, "error": "Bad Request", "message": "bad connector update"})
            self.connectors[connector_id].update({k: v for k, v in req.json.items() if k != "secrets"})
            return Reply(200, self.connectors[connector_id])
        return Reply(404, {})

    def _rule(self, req: Request, rule_id: str) -> Reply:
        if req.method == "GET":
            if rule_id not in self.rules:
                return Reply(404, {"statusCode": 404, "error": "Not Found", "message": f"Saved object [alert/{rule_id}] not found"})
            return Reply(200, self.rules[rule_id])
        if req.method == "POST":
            if rule_id in self.rules:
                return Reply(409, {"statusCode": 409, "error": "Conflict", "message": "rule exists"})
            body = req.json
            # Kibana's read shape: ids, defaults and per-action uuids added.
            self.rules[rule_id] = {**body, "id": rule_id, "enabled": body.get("enabled", True), "mute_all": False,
                                   "actions": [{**a, "uuid": f"u{i}", "connector_type_id": ".index"}
                                               for i, a in enumerate(body.get("actions", []))]}
            return Reply(200, self.rules[rule_id])
        if req.method == "PUT":
            forbidden = {"rule_type_id", "consumer", "enabled"} & set(req.json)
            if forbidden or rule_id not in self.rules:
                return Reply(400, {"statusCode": 400, "error": "Bad Request", "message": f"bad update {sorted(forbidden)}"})
            self.rules[rule_id].update(req.json)
            return Reply(200, self.rules[rule_id])
        return Reply(404, {})


def _multipart_file(req: Request) -> bytes:
    head = f"Content-Type: {req.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + req.raw_body)
    for part in message.iter_parts():
        if part.get_filename():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("multipart body without a file part")
