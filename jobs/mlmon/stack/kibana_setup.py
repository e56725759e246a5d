"""Install Kibana saved objects (``kibana/*.ndjson``) and alerting rules (``kibana/rules/*.json``).

Saved objects go through the import API (``POST /api/saved_objects/_import?overwrite=true``,
multipart, ``kbn-xsrf`` header), the same path as Stack Management's "Import".
Before importing, the objects of each file are exported from Kibana and
compared (attributes and references) as they survive Kibana's import migrations
(:func:`same_content`: from 9.2 a ``search`` is stored with its attributes moved
into a tab, and schema defaults are added): a file whose objects are all
installed and say what the file says is not imported again, so a second
``mlmon setup`` writes nothing. (An attribute removed from a file alone does not
count as a change: Kibana may add attributes, so presence cannot be compared.)

Rules go through the alerting API, idempotent by rule id: ``GET
/api/alerting/rule/{id}``; absent -> ``POST`` (create with that id); present and
different in an updatable field -> ``PUT`` (update); equal -> nothing. A rule
file is the create body, with the rule id in ``"id"`` (or the file name).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from mlmon.core.assets import KIBANA
from mlmon.stack.installer import Action, Outcome, SetupError

#: Fields ``PUT /api/alerting/rule/{id}`` accepts; the others (rule_type_id, consumer) are fixed at creation.
RULE_UPDATABLE = ("name", "tags", "schedule", "params", "actions", "throttle", "notify_when", "alert_delay", "flapping")


@dataclass(frozen=True)
class KibanaAuth:
    api_key: str | None = None
    username: str | None = None
    password: str | None = None

    def apply(self, session: requests.Session) -> None:
        if self.api_key:
            session.headers["Authorization"] = f"ApiKey {self.api_key}"
        elif self.username and self.password:
            session.auth = (self.username, self.password)


class KibanaClient:
    """The few Kibana HTTP APIs setup needs, with clear errors."""

    def __init__(self, url: str, auth: KibanaAuth, *, ca_certs: str | None = None, verify_certs: bool = True,
                 timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"kbn-xsrf": "mlmon-setup", "Accept": "application/json"})
        auth.apply(self.session)
        self.session.verify = ca_certs if (ca_certs and verify_certs) else verify_certs

    def request(self, method: str, path: str, *, ok: Iterable[int] = (200,), **kwargs: Any) -> requests.Response:
        try:
            resp = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise SetupError(f"cannot reach Kibana at {self.url}: {exc}") from exc
        if resp.status_code not in tuple(ok):
            raise SetupError(f"Kibana answered {resp.status_code} to {method} {path}: {resp.text[:500]}")
        return resp


# --- saved objects ---------------------------------------------------------------------------

def read_ndjson(path: Path) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SetupError(f"{path}:{n}: not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise SetupError(f"{path}:{n}: expected a saved object (a JSON object)")
        if "exportedCount" in obj:  # the export summary line Kibana appends
            continue
        if "type" not in obj or "id" not in obj:
            raise SetupError(f"{path}:{n}: a saved object needs 'type' and 'id'")
        objects.append(obj)
    return objects


#: Root attributes of a Discover session (``search``) from Kibana 9.2 on; the rest lives in its tabs.
SESSION_ROOT = ("title", "description", "tabs")


def surviving_attributes(obj: dict[str, Any]) -> dict[str, Any]:
    """An object's attributes in the shape Kibana keeps them, minus what Kibana makes up.

    A ``search`` without tabs (the shape this project writes, readable by 8.x and 9.x) is
    migrated on import to one tab holding every attribute but the title and description
    (model version 13); the tab's id (a UUID) and label are Kibana's, not ours.
    """
    attributes = dict(obj.get("attributes", {}))
    if obj.get("type") != "search":
        return attributes
    if "tabs" not in attributes:
        tab = {k: v for k, v in attributes.items() if k not in SESSION_ROOT}
        attributes = {k: v for k, v in attributes.items() if k in SESSION_ROOT} | {"tabs": [{"attributes": tab}]}
    attributes["tabs"] = [{"attributes": t.get("attributes", {})} for t in attributes["tabs"]]
    return attributes


def covers(installed: Any, wanted: Any) -> bool:
    """``installed`` says everything ``wanted`` says: Kibana may add keys (schema defaults), never change ours."""
    if isinstance(wanted, dict):
        return isinstance(installed, dict) and all(k in installed and covers(installed[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(installed, list) and len(installed) == len(wanted)
                and all(covers(i, w) for i, w in zip(installed, wanted)))
    return bool(installed == wanted)


def _references(obj: dict[str, Any]) -> list[tuple[str, str]]:
    # By type and id: a migration may rename a reference (to its tab) but not retarget it.
    return sorted((r.get("type", ""), r.get("id", "")) for r in obj.get("references", []))


def same_content(installed: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """The installed object still says what the file says, after Kibana's import migrations."""
    return (covers(surviving_attributes(installed), surviving_attributes(wanted))
            and _references(installed) == _references(wanted))


def installed_objects(kibana: KibanaClient, objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Current versions of ``objects`` in Kibana (missing ones are simply absent)."""
    resp = kibana.request("POST", "/api/saved_objects/_export", ok=(200, 400, 404), json={
        "objects": [{"type": o["type"], "id": o["id"]} for o in objects],
        "includeReferencesDeep": False, "excludeExportDetails": True})
    if resp.status_code != 200:
        return {}  # e.g. some object does not exist yet: import the file
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in resp.text.splitlines():
        if line.strip():
            obj = json.loads(line)
            if "type" in obj and "id" in obj:
                found[(obj["type"], obj["id"])] = obj
    return found


def sync_saved_objects(kibana: KibanaClient, path: Path, *, dry_run: bool = False) -> Outcome:
    objects = read_ndjson(path)
    if not objects:
        return Outcome("saved objects", path.name, "skipped", "empty file")
    installed = installed_objects(kibana, objects)
    differing = [o for o in objects if (o["type"], o["id"]) not in installed
                 or not same_content(installed[(o["type"], o["id"])], o)]
    if not differing:
        return Outcome("saved objects", path.name, "unchanged", f"{len(objects)} objects")
    if dry_run:
        return Outcome("saved objects", path.name, "would update", f"{len(differing)} of {len(objects)} objects differ")
    resp = kibana.request("POST", "/api/saved_objects/_import", params={"overwrite": "true"},
                          files={"file": (path.name, path.read_bytes(), "application/ndjson")})
    result = resp.json()
    if not result.get("success", False):
        errors = "; ".join(f"{e.get('type')}/{e.get('id')}: {json.dumps(e.get('error', {}))}"
                           for e in result.get("errors", []))
        raise SetupError(f"Kibana refused saved objects of {path.name}: {errors}")
    action: Action = "created" if not installed else "updated"
    return Outcome("saved objects", path.name, action, f"{result.get('successCount', len(objects))} objects")


# --- rules -----------------------------------------------------------------------------------

def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SetupError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise SetupError(f"{path}: expected a JSON object")
    return obj


def _id_and_body(path: Path) -> tuple[str, dict[str, Any]]:
    """``{"id": ..., "body": {...}}`` (what ``python -m mlmon.stack.alert_assets`` writes) or a bare body with "id"."""
    obj = _read_json_object(path)
    if isinstance(obj.get("body"), dict):
        return str(obj.get("id") or path.stem), dict(obj["body"])
    return str(obj.pop("id", path.stem)), obj


def read_rule(path: Path) -> tuple[str, dict[str, Any]]:
    rule_id, body = _id_and_body(path)
    missing = [k for k in ("name", "rule_type_id", "consumer", "schedule", "params") if k not in body]
    if missing:
        raise SetupError(f"{path}: a rule needs {missing}")
    return rule_id, body


@dataclass(frozen=True)
class _ById:
    """A Kibana object kept in sync by its id: GET it, POST it when absent, PUT what may change.

    Its type (``type_key``) is fixed at creation: a different one is an error, not an update.
    """

    what: str
    api: str
    type_key: str
    same: Callable[[dict[str, Any], dict[str, Any]], bool]
    updatable: Callable[[dict[str, Any]], dict[str, Any]]

    def sync(self, kibana: KibanaClient, object_id: str, body: dict[str, Any], source: Path, *,
             dry_run: bool) -> Outcome:
        url = f"{self.api}/{object_id}"
        resp = kibana.request("GET", url, ok=(200, 404))
        if resp.status_code == 404:
            if dry_run:
                return Outcome(self.what, object_id, "would create")
            kibana.request("POST", url, json=body)
            return Outcome(self.what, object_id, "created")
        installed = resp.json()
        if installed.get(self.type_key) != body[self.type_key]:
            raise SetupError(f"{self.what} {object_id} exists with type {installed.get(self.type_key)!r}, "
                             f"{source.name} wants {body[self.type_key]!r}: delete it in Kibana first")
        if self.same(installed, body):
            return Outcome(self.what, object_id, "unchanged")
        if dry_run:
            return Outcome(self.what, object_id, "would update")
        kibana.request("PUT", url, json=self.updatable(body))
        return Outcome(self.what, object_id, "updated")


def _same_connector(installed: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return installed.get("name") == wanted["name"] and installed.get("config", {}) == wanted.get("config", {})


_CONNECTORS = _ById("connector", "/api/actions/connector", "connector_type_id", _same_connector,
                    lambda body: {k: body[k] for k in ("name", "config", "secrets") if k in body})


def sync_connector(kibana: KibanaClient, path: Path, *, dry_run: bool = False) -> Outcome:
    """Create the connector by id, or update its name/config when they differ (type is fixed at creation)."""
    connector_id, body = _id_and_body(path)
    missing = [k for k in ("name", "connector_type_id") if k not in body]
    if missing:
        raise SetupError(f"{path}: a connector needs {missing}")
    return _CONNECTORS.sync(kibana, connector_id, body, path, dry_run=dry_run)


def _updatable(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: rule[k] for k in RULE_UPDATABLE if k in rule}


def _same_rule(installed: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Compare what the file sets; Kibana adds ids and defaults to actions, so compare actions by what we set."""
    for key, value in _updatable(wanted).items():
        have = installed.get(key)
        if key == "actions":
            have = [{k: a.get(k) for k in w} for a, w in zip(have or [], value)] if len(have or []) == len(value) else None
        if have != value:
            return False
    return True


_RULES = _ById("rule", "/api/alerting/rule", "rule_type_id", _same_rule, _updatable)


def sync_rule(kibana: KibanaClient, path: Path, *, dry_run: bool = False) -> Outcome:
    rule_id, body = read_rule(path)
    return _RULES.sync(kibana, rule_id, body, path, dry_run=dry_run)


def install(kibana: KibanaClient, root: Path = KIBANA, *, dry_run: bool = False) -> list[Outcome]:
    kibana.request("GET", "/api/status")  # fail early and clearly when Kibana is unreachable / not ready
    outcomes = [sync_saved_objects(kibana, p, dry_run=dry_run) for p in sorted(root.glob("*.ndjson"))]
    # Connectors before the rules whose actions name them.
    outcomes += [sync_connector(kibana, p, dry_run=dry_run) for p in sorted((root / "rules" / "connectors").glob("*.json"))]
    outcomes += [sync_rule(kibana, p, dry_run=dry_run) for p in sorted((root / "rules").glob("*.json"))]
    return outcomes
