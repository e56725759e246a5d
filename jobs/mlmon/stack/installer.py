"""Install ``elasticsearch/`` into a cluster through the official client, idempotently.

Each asset's body is fingerprinted (SHA-256 of its canonical JSON) and the
fingerprint travels inside the body, in the metadata field every one of these
APIs keeps verbatim (``_meta`` of templates and ILM policies, ``metadata`` of
roles and watches). Comparing fingerprints is exact where comparing bodies is
not: Elasticsearch normalises what it returns (settings as strings, defaults
filled in). So a second run reads, finds every fingerprint equal and writes
nothing; a hand edit in the cluster or a changed file is re-installed.

Order matters and is fixed: ILM policies, component templates, index templates,
roles, then lazy rollovers of the existing data streams still on older templates,
then the namespace's data streams and the document indices (templates must exist
before those are created), mapping updates of existing document indices still on
older templates, then watches (licence permitting).

A template change reaches a data stream only when it rolls over onto a new write
index (ILM may not do that for weeks). So every data-stream index template also
carries a *composed* fingerprint, of its own body and of the component templates
it is composed of, in ``template.mappings._meta.mlmon_template_fingerprint``:
Elasticsearch copies it into the mapping ``_meta`` of each backing index it
creates from the template. Each run compares, for every existing data stream
that uses one of our index templates, the fingerprint in its write index's
mapping with the template's current one, and gives the streams that differ (or
have none: created before this rule, or from the built-in ``logs`` template
when Logstash wrote before the first ``mlmon setup``) a *lazy* rollover
(``POST <stream>/_rollover?lazy=true``, Elasticsearch 8.13+): marked, it rolls
over at its next write, so an idle stream gets no empty backing index. A stream
already marked (``rollover_on_write``) needs no new request. The rule reads the
cluster's state, not what this run changed, so it heals itself: a run
interrupted between the template PUT and the rollover, or a refused rollover,
is completed by the next run. It costs two reads a run (the data streams of our
templates, the mapping ``_meta`` of their indices). Elastic's own apm-data
registry rolls its streams over the same way (elasticsearch#116219).

The document indices (``mlmon-metrics`` & co.) are regular indices: they never
roll over, and their mappings are ``dynamic: false``, so a field a new release
maps would stay unsearchable in them for good. Their index templates carry a
composed fingerprint of their *mappings* (settings cannot follow: some are
static) and each run compares it with the existing index's, like the streams'.
An index that differs gets the mapping Elasticsearch resolves for it now
(``POST _index_template/_simulate_index/<index>``, which composes the templates
exactly as creating the index would) through ``PUT <index>/_mapping``: new fields
are added, updatable parameters take their new values, the fingerprint is
recorded. A change a live index cannot take (a field's type) is refused by
Elasticsearch; that is a warning naming the remedy (reindex), not a failed setup.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import elasticsearch

from mlmon.core.documents import ALERTS_INDEX, METRICS_INDEX, REFERENCES_INDEX
from mlmon.stores.elasticsearch.client import error_reason
from mlmon.core.assets import ELASTICSEARCH
from mlmon.stack.elasticsearch_assets import CHECKPOINTS_INDEX, RETENTION, ilm_policy_name
from mlmon_logging import contract

Body = dict[str, Any]
AssetKind = Literal["ilm_policy", "component_template", "index_template", "role", "watch"]
Action = Literal["created", "updated", "unchanged", "skipped", "would create", "would update",
                 "marked", "would mark", "warning"]

FINGERPRINT_KEY = "mlmon_fingerprint"
#: Key of the composed fingerprint in an index template's ``template.mappings._meta``, and so
#: in the mapping ``_meta`` of every index created from it (backing indices and document indices).
TEMPLATE_FINGERPRINT_KEY = "mlmon_template_fingerprint"
#: Licences that include Watcher.
WATCHER_LICENCES = ("gold", "platinum", "enterprise", "trial")
DOCUMENT_INDICES = (METRICS_INDEX, ALERTS_INDEX, REFERENCES_INDEX, CHECKPOINTS_INDEX)

#: Asset kind -> (directory under elasticsearch/, Elasticsearch API name for the type check).
ASSET_DIRS: dict[AssetKind, tuple[str, str]] = {
    "ilm_policy": ("ilm", "ilm.put_lifecycle"),
    "component_template": ("component_templates", "cluster.put_component_template"),
    "index_template": ("index_templates", "indices.put_index_template"),
    "role": ("roles", "security.put_role"),
    "watch": ("watcher", "watcher.put_watch"),
}


class SetupError(RuntimeError):
    """An asset is malformed or Elasticsearch refused it; the message names the asset."""


@dataclass(frozen=True)
class Asset:
    kind: AssetKind
    name: str
    body: Body  # exactly what is sent, fingerprint included
    source: Path

    @property
    def api(self) -> str:
        return ASSET_DIRS[self.kind][1]

    @property
    def fingerprint(self) -> str:
        found = _metadata(self.kind, self.body).get(FINGERPRINT_KEY)
        assert isinstance(found, str)
        return found


@dataclass(frozen=True)
class Outcome:
    what: str    # "component template", "data stream", ...
    name: str
    action: Action
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:>12}  {self.what} {self.name}" + (f" ({self.detail})" if self.detail else "")


# --- loading -------------------------------------------------------------------------------

def _metadata(kind: AssetKind, body: Body) -> Body:
    """The metadata object of a body (created if absent): where the fingerprint lives."""
    if kind == "ilm_policy":
        return body.setdefault("policy", {}).setdefault("_meta", {})
    if kind in ("role", "watch"):
        return body.setdefault("metadata", {})
    return body.setdefault("_meta", {})


def fingerprint(body: Body) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def _with_fingerprint(kind: AssetKind, body: Body) -> Body:
    out = copy.deepcopy(body)
    _metadata(kind, out).pop(FINGERPRINT_KEY, None)
    digest = fingerprint(out)
    _metadata(kind, out)[FINGERPRINT_KEY] = digest
    return out


def apply_retention(body: Body, retention: str) -> Body:
    out = copy.deepcopy(body)
    phases = out.get("policy", {}).get("phases", {})
    if "delete" not in phases:
        raise SetupError("this ILM policy has no delete phase to set the retention of")
    phases["delete"]["min_age"] = retention
    return out


def is_stream_template(asset: Asset) -> bool:
    """An index template of data streams (a rollover applies to those, not to regular indices)."""
    return asset.kind == "index_template" and "data_stream" in asset.body


def template_fingerprint(asset: Asset) -> str | None:
    """The composed fingerprint an index template gives the indices made from it (None for other assets)."""
    meta = asset.body.get("template", {}).get("mappings", {}).get("_meta", {})
    found = meta.get(TEMPLATE_FINGERPRINT_KEY)
    return found if isinstance(found, str) else None


def _with_template_fingerprint(body: Body, path: Path, components: Mapping[str, Asset]) -> Body:
    """``body`` with its composed fingerprint in ``template.mappings._meta``.

    Injected here rather than written by the generator into the committed files: it
    must cover the component bodies exactly as this run sends them (an ``--assets``
    copy may have edited one without regenerating the index templates), or a stream
    would be judged current while its mappings are not. It is computed from the
    body without it, then inserted, so the asset fingerprint taken after it is stable
    and changes with any component: the index template is then re-installed too,
    and new backing indices carry the new value. (Retention options do not enter:
    they change ILM policies, which Elasticsearch applies to existing indices.)
    Elasticsearch deep-merges mapping ``_meta`` across ``composed_of`` and the index
    template, later keys winning, and the index template's own mappings come last.
    The template of a regular index fingerprints its mappings only (own and composed):
    those are what a mapping update can bring onto an existing index.
    """
    out = copy.deepcopy(body)
    out.get("_meta", {}).pop(FINGERPRINT_KEY, None)
    out.get("template", {}).get("mappings", {}).get("_meta", {}).pop(TEMPLATE_FINGERPRINT_KEY, None)
    missing = [name for name in out.get("composed_of", []) if name not in components]
    if missing:
        raise SetupError(f"{path}: composed of component template(s) {missing} that are not under "
                         f"{path.parent.parent / ASSET_DIRS['component_template'][0]}")
    composed_of = [components[name] for name in out.get("composed_of", [])]
    if "data_stream" in out:
        digest = fingerprint({"index_template": fingerprint(out), "composed_of": [c.fingerprint for c in composed_of]})
    else:
        digest = fingerprint({"mappings": out.get("template", {}).get("mappings", {}),
                              "composed_of": [c.body.get("template", {}).get("mappings", {}) for c in composed_of]})
    out.setdefault("template", {}).setdefault("mappings", {}).setdefault("_meta", {})[TEMPLATE_FINGERPRINT_KEY] = digest
    return out


def _read_body(path: Path) -> Body:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SetupError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise SetupError(f"{path}: expected a JSON object (the API's request body)")
    return body


def load_assets(root: Path = ELASTICSEARCH, kinds: Iterable[AssetKind] = ASSET_DIRS,
                retention: Mapping[str, str] | None = None) -> list[Asset]:
    """Every asset file under ``root`` (in install order), bodies ready to send."""
    retention = dict(retention or {})
    unknown = set(retention) - set(RETENTION)
    if unknown:
        raise SetupError(f"unknown retention policy {sorted(unknown)}; known: {sorted(RETENTION)}")
    by_policy_name = {ilm_policy_name(p): age for p, age in retention.items()}
    kinds = list(kinds)
    components: dict[str, Asset] = {}  # the composed fingerprints of index templates need them
    assets: list[Asset] = []
    for kind in kinds:
        directory = root / ASSET_DIRS[kind][0]
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            body = _read_body(path)
            if kind == "ilm_policy" and path.stem in by_policy_name:
                body = apply_retention(body, by_policy_name.pop(path.stem))
            if kind == "index_template":
                if not components and "component_template" not in kinds:
                    components = {a.name: a for a in load_assets(root, ["component_template"])}
                body = _with_template_fingerprint(body, path, components)
            asset = Asset(kind, path.stem, _with_fingerprint(kind, body), path)
            if kind == "component_template":
                components[asset.name] = asset
            assets.append(asset)
    if by_policy_name:
        raise SetupError(f"no ILM policy file for retention of {sorted(by_policy_name)} in {root / 'ilm'}")
    return assets


# --- talking to Elasticsearch ----------------------------------------------------------------

def installed_fingerprint(es: elasticsearch.Elasticsearch, asset: Asset) -> str | None:
    """The fingerprint of what is installed under the asset's name; None when absent (or not ours)."""
    try:
        if asset.kind == "component_template":
            found = es.cluster.get_component_template(name=asset.name)["component_templates"][0]["component_template"]
        elif asset.kind == "index_template":
            found = es.indices.get_index_template(name=asset.name)["index_templates"][0]["index_template"]
        elif asset.kind == "ilm_policy":
            found = es.ilm.get_lifecycle(name=asset.name)[asset.name]["policy"]
        elif asset.kind == "role":
            found = es.security.get_role(name=asset.name).body.get(asset.name)
            if found is None:
                return None
        else:
            found = es.watcher.get_watch(id=asset.name)["watch"]
    except elasticsearch.NotFoundError:
        return None
    meta = found.get("metadata" if asset.kind in ("role", "watch") else "_meta") or {}
    value = meta.get(FINGERPRINT_KEY)
    return value if isinstance(value, str) else None


def _put(es: elasticsearch.Elasticsearch, asset: Asset) -> None:
    body = copy.deepcopy(asset.body)
    puts: dict[AssetKind, Callable[[], Any]] = {
        "ilm_policy": lambda: es.ilm.put_lifecycle(name=asset.name, body=body),
        "component_template": lambda: es.cluster.put_component_template(name=asset.name, body=body),
        "index_template": lambda: es.indices.put_index_template(name=asset.name, body=body),
        "role": lambda: es.security.put_role(name=asset.name, body=body),
        "watch": lambda: es.watcher.put_watch(id=asset.name, body=body),
    }
    puts[asset.kind]()


_WHAT: dict[AssetKind, str] = {"ilm_policy": "ILM policy", "component_template": "component template",
                               "index_template": "index template", "role": "role", "watch": "watch"}


def sync_asset(es: elasticsearch.Elasticsearch, asset: Asset, *, dry_run: bool = False) -> Outcome:
    installed = installed_fingerprint(es, asset)
    what = _WHAT[asset.kind]
    if installed == asset.fingerprint:
        return Outcome(what, asset.name, "unchanged")
    action: Action = "created" if installed is None else "updated"
    if dry_run:
        return Outcome(what, asset.name, "would create" if installed is None else "would update")
    try:
        _put(es, asset)
    except elasticsearch.ApiError as exc:
        raise SetupError(f"Elasticsearch refused {what} {asset.name} ({asset.source}): "
                         f"{exc.meta.status} {error_reason(exc)}") from exc
    return Outcome(what, asset.name, action)


def ensure_data_streams(es: elasticsearch.Elasticsearch, namespace: str, *, dry_run: bool = False) -> list[Outcome]:
    """Create the namespace's data streams (so Kibana's data views and roles see them before traffic)."""
    out: list[Outcome] = []
    for kind in (*contract.KINDS, "deadletter"):
        name = contract.data_stream(kind, namespace)  # type: ignore[arg-type]
        try:
            es.indices.get_data_stream(name=name)
            out.append(Outcome("data stream", name, "unchanged"))
            continue
        except elasticsearch.NotFoundError:
            pass
        if dry_run:
            out.append(Outcome("data stream", name, "would create"))
            continue
        es.indices.create_data_stream(name=name)
        out.append(Outcome("data stream", name, "created"))
    return out


def ensure_document_indices(es: elasticsearch.Elasticsearch, *, dry_run: bool = False) -> list[Outcome]:
    out: list[Outcome] = []
    for index in DOCUMENT_INDICES:
        if es.indices.exists(index=index):
            out.append(Outcome("index", index, "unchanged"))
        elif dry_run:
            out.append(Outcome("index", index, "would create"))
        else:
            try:
                es.indices.create(index=index)
            except elasticsearch.BadRequestError as exc:
                # Another setup (or a job's first write) created it between our check and now.
                if "resource_already_exists_exception" not in str(exc):
                    raise
            out.append(Outcome("index", index, "created"))
    return out


# --- existing data streams onto the current templates -----------------------------------------

NEXT_WRITE = "rolls over onto the new template at its next write"


@dataclass(frozen=True)
class StreamState:
    """What the data stream API says of one stream (the fields the rollover rule reads)."""

    name: str
    template: str | None      # the index template it uses now, as Elasticsearch resolves it
    write_index: str | None   # the last of its backing indices
    rollover_on_write: bool   # already marked for a lazy rollover (8.13+; absent before)

    @classmethod
    def from_api(cls, doc: Mapping[str, Any]) -> StreamState:
        indices = doc.get("indices") or []
        return cls(name=str(doc["name"]), template=doc.get("template"),
                   write_index=indices[-1]["index_name"] if indices else None,
                   rollover_on_write=bool(doc.get("rollover_on_write", False)))


def data_streams_of(es: elasticsearch.Elasticsearch, templates: Sequence[Asset]) -> list[StreamState]:
    """The existing data streams the templates' patterns match: one request for all of them."""
    patterns = sorted({p for t in templates for p in t.body["index_patterns"]})
    try:
        found = es.indices.get_data_stream(name=patterns)["data_streams"]
    except elasticsearch.NotFoundError:
        return []
    return [StreamState.from_api(doc) for doc in found]


def owner(stream: StreamState, templates: Mapping[str, Asset], to_create: Sequence[Asset]) -> Asset | None:
    """Our index template ``stream`` uses, or None when another one (a user's, of higher priority) owns it.

    ``to_create``: templates a dry run would create; not there yet to be named as any stream's
    template, they count for every stream their patterns match (a preview may over-count then).
    """
    named = templates.get(stream.template) if stream.template is not None else None
    if named is not None:
        return named
    return next((t for t in to_create if any(fnmatch.fnmatchcase(stream.name, p) for p in t.body["index_patterns"])),
                None)


def mapping_fingerprints(es: elasticsearch.Elasticsearch, targets: Sequence[str]) -> dict[str, str]:
    """Index -> the composed fingerprint in its mapping ``_meta``, for the indices ``targets``
    (names, patterns or data streams) resolve to; one request. filter_path keeps just the
    fingerprint, and an index without one is left out of the answer."""
    found = es.indices.get_mapping(index=list(targets), ignore_unavailable=True, allow_no_indices=True,
                                   filter_path=f"*.mappings._meta.{TEMPLATE_FINGERPRINT_KEY}")
    out: dict[str, str] = {}
    for index, record in found.body.items():
        value = (record.get("mappings") or {}).get("_meta", {}).get(TEMPLATE_FINGERPRINT_KEY)
        if isinstance(value, str):
            out[index] = value
    return out


def lazy_rollover(es: elasticsearch.Elasticsearch, stream: str, *, dry_run: bool = False) -> Outcome:
    """Mark ``stream`` to roll over at its next write; a refusal is a warning, not a failed setup."""
    if dry_run:
        return Outcome("data stream", stream, "would mark", NEXT_WRITE)
    try:
        es.indices.rollover(alias=stream, lazy=True)
    except elasticsearch.ApiError as exc:
        # The templates are installed; only this stream keeps the old ones until its next
        # ILM rollover, or until the next `mlmon setup` asks again. Say so, and how to apply
        # them now (an immediate, unconditional rollover).
        return Outcome("data stream", stream, "warning",
                       f"lazy rollover refused: {exc.meta.status} {error_reason(exc)}; the next mlmon setup asks "
                       f"again, the new template applies at the next ILM rollover, or now with: POST {stream}/_rollover")
    return Outcome("data stream", stream, "marked", NEXT_WRITE)


def roll_over_stale_streams(es: elasticsearch.Elasticsearch, assets: Sequence[Asset],
                            outcomes: Sequence[Outcome], *, dry_run: bool = False) -> list[Outcome]:
    """A lazy rollover for each existing data stream whose write index predates its template's current version.

    Call after the templates are installed (``outcomes`` are those of this run: in a dry run,
    the templates it would create count as the owners of the streams they match).
    """
    templates = {a.name: a for a in assets if is_stream_template(a)}
    if not templates:
        return []
    would_create = {o.name for o in outcomes if o.what == _WHAT["index_template"] and o.action == "would create"}
    to_create = [t for name, t in templates.items() if name in would_create]
    owned = [(s, t) for s in data_streams_of(es, list(templates.values()))
             if (t := owner(s, templates, to_create)) is not None]
    if not owned:
        return []
    # By the templates' patterns: short, whatever the number of namespaces (a comma-joined list
    # of write indices could outgrow the 4 KB HTTP request line).
    current = mapping_fingerprints(es, sorted({p for t in templates.values() for p in t.body["index_patterns"]}))
    out: list[Outcome] = []
    done: set[str] = set()
    for stream, template in owned:
        if stream.name in done:  # overlapping patterns: one request per stream
            continue
        done.add(stream.name)
        if stream.write_index is not None and current.get(stream.write_index) == template_fingerprint(template):
            continue
        if stream.rollover_on_write:  # marked by an earlier run (or by hand) and not written to since
            out.append(Outcome("data stream", stream.name, "unchanged", f"already marked: {NEXT_WRITE}"))
            continue
        out.append(lazy_rollover(es, stream.name, dry_run=dry_run))
    return out


# --- existing document indices onto the current mappings ----------------------------------------

def _our_template_of(index: str, templates: Sequence[Asset]) -> Asset | None:
    """Our regular-index template of highest priority matching ``index`` (Elasticsearch may pick a user's)."""
    matching = [t for t in templates if any(fnmatch.fnmatchcase(index, p) for p in t.body["index_patterns"])]
    return max(matching, key=lambda t: int(t.body.get("priority", 0)), default=None)


def update_document_mappings(es: elasticsearch.Elasticsearch, assets: Sequence[Asset], existing: Sequence[str], *,
                             dry_run: bool = False) -> list[Outcome]:
    """Bring the ``existing`` document indices whose mapping predates their template's onto it.

    One read for all of them (the fingerprint in each mapping's ``_meta``); for each that
    differs, the mapping Elasticsearch resolves for it now, sent as a mapping update.
    """
    templates = [a for a in assets if a.kind == "index_template" and not is_stream_template(a)]
    ours = [(index, wanted) for index in existing
            if (t := _our_template_of(index, templates)) is not None and (wanted := template_fingerprint(t))]
    if not ours:
        return []
    current = mapping_fingerprints(es, [index for index, _ in ours])
    out: list[Outcome] = []
    for index, wanted in ours:
        if current.get(index) == wanted:
            continue
        if dry_run:
            out.append(Outcome("index mapping", index, "would update", "onto its current template"))
            continue
        resolved = (es.indices.simulate_index_template(name=index).body.get("template") or {}).get("mappings") or {}
        if resolved.get("_meta", {}).get(TEMPLATE_FINGERPRINT_KEY) != wanted:
            out.append(Outcome("index mapping", index, "skipped", "an index template not of mlmon applies to it"))
            continue
        try:
            es.indices.put_mapping(index=index, body=resolved)
        except elasticsearch.ApiError as exc:
            out.append(Outcome("index mapping", index, "warning",
                               f"mapping update refused: {exc.meta.status} {error_reason(exc)}; the index keeps its "
                               f"old mapping: reindex it into a new index made from the current template"))
            continue
        out.append(Outcome("index mapping", index, "updated", "onto its current template"))
    return out


def licence_allows_watcher(es: elasticsearch.Elasticsearch) -> tuple[bool, str]:
    lic = es.license.get()["license"]
    kind, status = str(lic.get("type", "")), str(lic.get("status", ""))
    if status != "active":
        return False, f"licence {kind} is {status}"
    if kind not in WATCHER_LICENCES:
        return False, f"Watcher needs a Gold, Platinum or Enterprise licence (or a trial); this cluster has {kind!r}"
    return True, kind


def install(es: elasticsearch.Elasticsearch, *, root: Path = ELASTICSEARCH, namespace: str = contract.DEFAULT_NAMESPACE,
            retention: Mapping[str, str] | None = None, dry_run: bool = False) -> list[Outcome]:
    """Install everything under ``root``; returns one outcome per asset, in order."""
    outcomes: list[Outcome] = []
    core: list[AssetKind] = ["ilm_policy", "component_template", "index_template", "role"]
    core_assets = load_assets(root, core, retention)
    for asset in core_assets:
        outcomes.append(sync_asset(es, asset, dry_run=dry_run))
    # Before ensure_data_streams: a stream it creates now starts on the new templates already.
    outcomes += roll_over_stale_streams(es, core_assets, outcomes, dry_run=dry_run)
    outcomes += ensure_data_streams(es, namespace, dry_run=dry_run)
    indices = ensure_document_indices(es, dry_run=dry_run)
    outcomes += indices
    existing = [o.name for o in indices if o.action == "unchanged"]  # those created now are current
    outcomes += update_document_mappings(es, core_assets, existing, dry_run=dry_run)
    watches = load_assets(root, ["watch"])
    if watches:
        allowed, why = licence_allows_watcher(es)
        for asset in watches:
            outcomes.append(sync_asset(es, asset, dry_run=dry_run) if allowed
                            else Outcome("watch", asset.name, "skipped", why))
    return outcomes
