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

Searches (``/<index>/_search``) run over :attr:`FakeElasticsearch.documents` (index -> id ->
source): ``bool.filter`` of ``term``/``terms``/``range``, ``sort`` (with ``search_after``),
``from``/``size`` and ``track_total_hits``. As a real cluster does, a search whose
``from + size`` exceeds ``index.max_result_window`` (10,000) is refused with 400, and a
missing index is 404 unless ``ignore_unavailable``. Dates compare as the ISO strings mlmon
writes (one format), not as epoch milliseconds.
"""

from __future__ import annotations

import fnmatch
import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

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
            return self._store(req, self.index_templates, match[1], "index_templates", "index_template")
        if match := re.fullmatch(r"/_ilm/policy/([^/]+)", p):
            return self._policy(req, match[1])
        if match := re.fullmatch(r"/_security/role/([^/]+)", p):
            return self._role(req, match[1])
        if match := re.fullmatch(r"/_watcher/watch/([^/]+)", p):
            return self._watch(req, match[1])
        if match := re.fullmatch(r"/_data_stream/([^/]+)", p):
            return self._data_stream(req, match[1])
        if m in ("GET", "POST") and (match := re.fullmatch(r"/([a-z][^/_]*)/_search", p)):
            return self._search(req, match[1])
        if match := re.fullmatch(r"/([a-z][^/_]*)", p):
            return self._index(req, match[1])
        if match := re.fullmatch(r"/([a-z][^/_]*)/_mapping", p):
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
        if name not in self.data_streams:
            return es_error(404, "index_not_found_exception", f"no such index [{name}]")
        return es_reply({"data_streams": [{"name": name, "timestamp_field": {"name": "@timestamp"},
                                           "generation": 1, "status": "GREEN", "template": name}]})

    def _index(self, req: Request, name: str) -> Reply:
        if req.method == "HEAD":
            return es_reply(None, 200 if name in self.indices else 404)
        if req.method == "PUT":
            if name in self.indices:
                return es_error(400, "resource_already_exists_exception", f"index [{name}] already exists")
            self.indices.add(name)
            self.index_mappings[name] = self.composed_mappings(name)
            return es_reply({"acknowledged": True, "shards_acknowledged": True, "index": name})
        return es_error(400, "illegal_argument_exception", f"fake has no route for {req.method} /{name}")

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

    def _simulate_index(self, name: str) -> Reply:
        template = self.matching_template(name)
        if template is None:
            return es_reply({})
        settings: dict[str, Any] = {}
        body = self.index_templates[template]
        for part in [self.component_templates[c] for c in body.get("composed_of", [])] + [body]:
            settings = merge_deep(settings, part.get("template", {}).get("settings", {}))
        return es_reply({"template": {"settings": settings, "mappings": self.composed_mappings(name), "aliases": {}},
                         "overlapping": []})

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


    def _search(self, req: Request, index: str) -> Reply:
        body = req.json or {}
        start, size = int(body.get("from", 0)), int(body.get("size", 10))
        if start + size > MAX_RESULT_WINDOW:
            return es_error(400, "illegal_argument_exception",
                            f"Result window is too large, from + size must be less than or equal to: "
                            f"[{MAX_RESULT_WINDOW}] but was [{start + size}]. See the scroll api for a more "
                            f"efficient way to request large data sets. This limit can be set by changing the "
                            f"[index.max_result_window] index level setting.")
        if index not in self.documents and req.query.get("ignore_unavailable") != ["true"]:
            return es_error(404, "index_not_found_exception", f"no such index [{index}]")
        sort = [next(iter(s.items())) if isinstance(s, dict) else (s, "asc") for s in body.get("sort", [])]
        keys = [(field, order["order"] if isinstance(order, dict) else order) for field, order in sort]
        docs = [(i, src) for i, src in self.documents.get(index, {}).items()
                if all(_matches(f, src) for f in body.get("query", {}).get("bool", {}).get("filter", []))]
        orders = [o for _, o in keys]
        docs.sort(key=lambda d: _sort_key([_field(d[1], f) for f, _ in keys], orders))
        total = len(docs)  # search_after pages through the same matches: the total stays theirs
        if "search_after" in body:
            after = _sort_key(body["search_after"], orders)
            docs = [d for d in docs if _sort_key([_field(d[1], f) for f, _ in keys], orders) > after]
        hits = [{"_index": index, "_id": i, "_source": src, "sort": [_field(src, f) for f, _ in keys]}
                for i, src in docs[start:start + size]]
        return es_reply({"took": 1, "timed_out": False, "hits": {"total": {"value": total, "relation": "eq"},
                                                                  "max_score": None, "hits": hits}})


#: index.max_result_window's default.
MAX_RESULT_WINDOW = 10_000


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


class FakeKibana:
    """Saved objects export/import and the alerting rule API (Kibana 9.x shapes)."""

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
                self.objects[(obj["type"], obj["id"])] = obj
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
