"""Install ``elasticsearch/`` into a cluster through the official client, idempotently.

Each asset's body is fingerprinted (SHA-256 of its canonical JSON) and the
fingerprint travels inside the body, in the metadata field every one of these
APIs keeps verbatim (``_meta`` of templates and ILM policies, ``metadata`` of
roles and watches). Comparing fingerprints is exact where comparing bodies is
not: Elasticsearch normalises what it returns (settings as strings, defaults
filled in). So a second run reads, finds every fingerprint equal and writes
nothing; a hand edit in the cluster or a changed file is re-installed.

Order matters and is fixed: ILM policies, component templates, index templates,
roles, then this month's event indices of the namespace and the document indices
(templates must exist before those are created), mapping updates of existing
indices still on older templates, then watches (licence permitting).

Every index mlmon makes is a regular index that never rolls over: the event
indices are routed by the month of each event's own ``@timestamp``
(:mod:`mlmon.stack.elasticsearch_assets` says why), the document indices
(``mlmon-metrics`` & co.) are overwritten by id. So a template change reaches an
existing index only through a mapping update, and their mappings are ``dynamic:
false`` (a field a new release maps would stay unsearchable without one). Each
index template carries a composed fingerprint of its *mappings* (own and
composed; settings cannot follow, some are static) in
``template.mappings._meta.mlmon_template_fingerprint``, which Elasticsearch
copies into the mapping ``_meta`` of every index made from it. Each run lists
the existing indices of our templates (``GET _cat/indices/<patterns>``), reads
their fingerprints (``GET <patterns>/_mapping`` with ``filter_path``), and gives
each that differs (or has none) the mapping Elasticsearch resolves for it now
(``POST _index_template/_simulate_index/<index>``, which composes the templates
exactly as creating the index would) through ``PUT <index>/_mapping``: new fields
are added, updatable parameters take their new values, the fingerprint is
recorded. A change a live index cannot take (a field's type) is refused by
Elasticsearch; that is a warning naming the remedy (reindex), not a failed setup.
The rule reads the cluster's state, not what this run changed, so a run
interrupted after a template PUT is completed by the next one.

Data streams of the former layout (``logs-mlmon.<kind>-<namespace>``) are left
as they are, readable by every pattern; each run warns about them, since an
event re-sent now would be stored a second time in its dated index: move their
events with the reindex the warning names, then delete them.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import elasticsearch

from mlmon.core.alert_schema import OUTBOX_INDEX
from mlmon.core.documents import ALERTS_INDEX, METRICS_INDEX, REFERENCES_INDEX
from mlmon.stores.elasticsearch.client import error_reason
from mlmon.core.assets import ELASTICSEARCH
from mlmon.stack.elasticsearch_assets import (CHECKPOINTS_INDEX, EVENT_STREAMS, RETENTION, delete_after, event_index,
                                              ilm_policy_name)
from mlmon_logging import contract

Body = dict[str, Any]
AssetKind = Literal["ilm_policy", "component_template", "index_template", "role", "watch"]
Action = Literal["created", "updated", "unchanged", "skipped", "would create", "would update", "warning"]

FINGERPRINT_KEY = "mlmon_fingerprint"
#: Key of the composed fingerprint in an index template's ``template.mappings._meta``, and so
#: in the mapping ``_meta`` of every index created from it (event and document indices).
TEMPLATE_FINGERPRINT_KEY = "mlmon_template_fingerprint"
#: Licences that include Watcher.
WATCHER_LICENCES = ("gold", "platinum", "enterprise", "trial")
DOCUMENT_INDICES = (METRICS_INDEX, ALERTS_INDEX, REFERENCES_INDEX, CHECKPOINTS_INDEX, OUTBOX_INDEX)

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
    """``body`` keeping every event ``retention``: a month's index is deleted that long after its month ends."""
    out = copy.deepcopy(body)
    policy = out.get("policy", {})
    phases = policy.get("phases", {})
    if "delete" not in phases:
        raise SetupError("this ILM policy has no delete phase to set the retention of")
    try:
        phases["delete"]["min_age"] = delete_after(retention)
    except ValueError as exc:
        raise SetupError(str(exc)) from exc
    policy.setdefault("_meta", {})["retention"] = retention
    return out


def template_fingerprint(asset: Asset) -> str | None:
    """The composed fingerprint an index template gives the indices made from it (None for other assets)."""
    meta = asset.body.get("template", {}).get("mappings", {}).get("_meta", {})
    found = meta.get(TEMPLATE_FINGERPRINT_KEY)
    return found if isinstance(found, str) else None


def _with_template_fingerprint(body: Body, path: Path, components: Mapping[str, Asset]) -> Body:
    """``body`` with its composed fingerprint in ``template.mappings._meta``.

    Injected here rather than written by the generator into the committed files: it
    must cover the component bodies exactly as this run sends them (an ``--assets``
    copy may have edited one without regenerating the index templates), or an index
    would be judged current while its mapping is not. It covers the mappings only
    (own and composed): those are what a mapping update can bring onto an existing
    index. Computed from the body without it, then inserted, so the asset fingerprint
    taken after it is stable. Elasticsearch deep-merges mapping ``_meta`` across
    ``composed_of`` and the index template, later keys winning, the template's own last.
    """
    out = copy.deepcopy(body)
    out.get("_meta", {}).pop(FINGERPRINT_KEY, None)
    out.get("template", {}).get("mappings", {}).get("_meta", {}).pop(TEMPLATE_FINGERPRINT_KEY, None)
    missing = [name for name in out.get("composed_of", []) if name not in components]
    if missing:
        raise SetupError(f"{path}: composed of component template(s) {missing} that are not under "
                         f"{path.parent.parent / ASSET_DIRS['component_template'][0]}")
    composed_of = [components[name] for name in out.get("composed_of", [])]
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


def _create_index(es: elasticsearch.Elasticsearch, index: str, *, dry_run: bool) -> Outcome:
    if es.indices.exists(index=index):
        return Outcome("index", index, "unchanged")
    if dry_run:
        return Outcome("index", index, "would create")
    try:
        es.indices.create(index=index)
    except elasticsearch.BadRequestError as exc:
        # Logstash's first event of the month (or another setup, or a job's first write)
        # created it between our check and now.
        if "resource_already_exists_exception" not in str(exc):
            raise
    return Outcome("index", index, "created")


def ensure_event_indices(es: elasticsearch.Elasticsearch, namespace: str, now: datetime, *,
                         dry_run: bool = False) -> list[Outcome]:
    """This month's index of each event kind of the namespace, so data views and roles see them before traffic."""
    return [_create_index(es, event_index(contract.data_stream(kind, namespace), now), dry_run=dry_run)  # type: ignore[arg-type]
            for kind in (*contract.KINDS, "deadletter")]


def ensure_document_indices(es: elasticsearch.Elasticsearch, *, dry_run: bool = False) -> list[Outcome]:
    return [_create_index(es, index, dry_run=dry_run) for index in DOCUMENT_INDICES]


# --- existing indices onto the current mappings -------------------------------------------------

def existing_indices(es: elasticsearch.Elasticsearch, patterns: Sequence[str]) -> list[str]:
    """The open regular indices ``patterns`` match, in one read (a data stream's backing indices are
    ``.ds-`` names, matched by none of them)."""
    rows: Any = es.cat.indices(index=list(patterns), h="index", format="json", expand_wildcards="open").body
    return sorted(str(row["index"]) for row in rows)  # format=json: a list of {"index": name}


def former_layout_streams(es: elasticsearch.Elasticsearch) -> list[str]:
    """Data streams among the mlmon event names: the former layout's ``logs-mlmon.<kind>-<namespace>``."""
    found = es.indices.get_data_stream(name=EVENT_STREAMS)["data_streams"]
    return sorted(str(s["name"]) for s in found)


def mapping_fingerprints(es: elasticsearch.Elasticsearch, targets: Sequence[str]) -> dict[str, str]:
    """Index -> the composed fingerprint in its mapping ``_meta``, for the indices ``targets``
    (names or patterns) resolve to; one request. filter_path keeps just the fingerprint,
    and an index without one is left out of the answer."""
    found = es.indices.get_mapping(index=list(targets), ignore_unavailable=True, allow_no_indices=True,
                                   filter_path=f"*.mappings._meta.{TEMPLATE_FINGERPRINT_KEY}")
    out: dict[str, str] = {}
    for index, record in found.body.items():
        value = (record.get("mappings") or {}).get("_meta", {}).get(TEMPLATE_FINGERPRINT_KEY)
        if isinstance(value, str):
            out[index] = value
    return out


def _our_template_of(index: str, templates: Sequence[Asset]) -> Asset | None:
    """Our index template of highest priority matching ``index`` (Elasticsearch may pick a user's)."""
    matching = [t for t in templates if any(fnmatch.fnmatchcase(index, p) for p in t.body["index_patterns"])]
    return max(matching, key=lambda t: int(t.body.get("priority", 0)), default=None)


def _index_templates(assets: Sequence[Asset]) -> list[Asset]:
    return [a for a in assets if a.kind == "index_template"]


def update_mappings(es: elasticsearch.Elasticsearch, assets: Sequence[Asset], existing: Sequence[str], *,
                    dry_run: bool = False) -> list[Outcome]:
    """Bring the ``existing`` indices whose mapping predates their template's onto it.

    One read for all of them (the fingerprint in each mapping's ``_meta``, by the templates'
    patterns: short, whatever the number of months and namespaces); for each that differs,
    the mapping Elasticsearch resolves for it now, sent as a mapping update.
    """
    templates = _index_templates(assets)
    ours = [(index, wanted) for index in existing
            if (t := _our_template_of(index, templates)) is not None and (wanted := template_fingerprint(t))]
    if not ours:
        return []
    current = mapping_fingerprints(es, sorted({p for t in templates for p in t.body["index_patterns"]}))
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


def former_layout_warning(stream: str) -> Outcome:
    """A data stream of mlmon's former layout: readable, but a re-sent event would be stored again."""
    return Outcome("data stream", stream, "warning",
                   "former layout: events re-sent now are stored again in the dated indices; move its events "
                   f"into them (README, 'Upgrading from data streams': POST _reindex from {stream}, "
                   "op_type create, the index chosen from each @timestamp), then delete it")


def licence_allows_watcher(es: elasticsearch.Elasticsearch) -> tuple[bool, str]:
    lic = es.license.get()["license"]
    kind, status = str(lic.get("type", "")), str(lic.get("status", ""))
    if status != "active":
        return False, f"licence {kind} is {status}"
    if kind not in WATCHER_LICENCES:
        return False, f"Watcher needs a Gold, Platinum or Enterprise licence (or a trial); this cluster has {kind!r}"
    return True, kind


def install(es: elasticsearch.Elasticsearch, *, root: Path = ELASTICSEARCH, namespace: str = contract.DEFAULT_NAMESPACE,
            retention: Mapping[str, str] | None = None, dry_run: bool = False,
            now: datetime | None = None) -> list[Outcome]:
    """Install everything under ``root``; returns one outcome per asset, in order."""
    outcomes: list[Outcome] = []
    core: list[AssetKind] = ["ilm_policy", "component_template", "index_template", "role"]
    core_assets = load_assets(root, core, retention)
    for asset in core_assets:
        outcomes.append(sync_asset(es, asset, dry_run=dry_run))
    # Listed before this run creates any: those it creates are made from the current templates.
    existing = existing_indices(es, sorted({p for t in _index_templates(core_assets) for p in t.body["index_patterns"]}))
    outcomes += ensure_event_indices(es, namespace, now or datetime.now(timezone.utc), dry_run=dry_run)
    outcomes += ensure_document_indices(es, dry_run=dry_run)
    outcomes += update_mappings(es, core_assets, existing, dry_run=dry_run)
    outcomes += [former_layout_warning(s) for s in former_layout_streams(es)]
    watches = load_assets(root, ["watch"])
    if watches:
        allowed, why = licence_allows_watcher(es)
        for asset in watches:
            outcomes.append(sync_asset(es, asset, dry_run=dry_run) if allowed
                            else Outcome("watch", asset.name, "skipped", why))
    return outcomes
