"""Generate ``elasticsearch/`` (templates, ILM policies, roles) from the contract and document schemas.

The JSON files under ``elasticsearch/`` are what users read and what ``mlmon setup``
installs; each is the exact REST body of its API. They are *derived*, the way
Elastic's integrations packages derive mappings from ``fields.yml``: mappings
from :mod:`mlmon_logging.contract` (events, dead letters),
:data:`mlmon.core.documents.METRIC_FIELDS`, :data:`mlmon.core.alert_schema.ALERT_FIELDS` and
:data:`REFERENCE_FIELDS`; index patterns and role grants from the same names.
A test fails when the committed files differ from :func:`generate`; regenerate with::

    python -m mlmon.stack.elasticsearch_assets          # rewrites elasticsearch/{component,index}_templates, ilm, roles

Mapping explosion guard. Features, scores, segments, attributions and labels are
user-named: they are mapped on first sight by dynamic templates (numeric ->
double, categorical/segment/label -> keyword) and only under their family's
object; everything else is ``dynamic: false`` (kept in ``_source``, never mapped).
Each event index's ``index.mapping.total_fields.limit`` is its fixed fields
plus :data:`~mlmon_logging.contract.MAX_FAMILY_FIELDS` per family it carries, so an
event within the contract never hits the limit; beyond it
``ignore_dynamic_beyond_limit`` keeps the document and leaves the extra fields
unindexed instead of rejecting it.

Event indices are routed by time, not data streams. ``op_type create`` with the
fingerprint ``_id`` refuses a second copy of an event only inside one index; a data
stream's rollover (ILM's, or the one a template change needs) starts a new write
index, and a re-sent or re-read event would be stored again and counted twice.
So events go to regular indices named by the month of the event's own
``@timestamp`` (:func:`event_index`: ``logs-mlmon.prediction-default-2025.01.01``
holds January's predictions; the Logstash output's ``index`` ends in
``-%{+yyyy.MM}.01``). The same event always lands in the same index, and those
indices never roll over. ILM only deletes them: ``index.lifecycle.parse_origination_date``
takes the index's age from the ``-yyyy.MM.dd`` suffix (the only format ILM parses),
so a month is deleted :data:`MONTH_SPAN` after the retention, when its last event
has been kept for the whole retention. Alternatives considered: a time-series data
stream routes by ``@timestamp`` too, but it builds ``_id`` from its dimensions
(a custom id is refused) and rejects documents outside its backing indices' time
bounds (a backfill of an old file); data streams with a lookup before each write
cannot be done from Logstash's bulk output. The index templates match only the
dated names (``logs-mlmon.<kind>-*-*``), so a data stream of the former layout
(``logs-mlmon.<kind>-<namespace>``) keeps matching Elasticsearch's built-in ``logs``
template: Elasticsearch refuses a template that would leave a data stream without one.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlmon.core.alert_schema import ALERT_FIELDS, OUTBOX_FIELDS, OUTBOX_INDEX, OUTBOX_PAYLOAD
from mlmon.core.documents import ALERTS_INDEX, CHECKPOINTS_INDEX, METRIC_FIELDS, METRICS_INDEX, REFERENCES_INDEX
from mlmon.core.assets import ELASTICSEARCH, refuse_write
from mlmon_logging import contract

Body = dict[str, Any]

#: Field -> type of a stored reference profile (``mlmon.core.reference.ReferenceProfile.to_document``);
#: the profile body itself is stored but not indexed (``profile``: ``enabled: false``).
REFERENCE_FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "mlmon.model.name": "keyword",
    "mlmon.model.version": "keyword",
    "reference.id": "keyword",
    "reference.source": "keyword",
    "reference.rows": "long",
    "reference.created_at": "date",
    "reference.fields": "keyword",
}
CHECKPOINT_FIELDS: dict[str, str] = {
    "@timestamp": "date", "checkpoint.key": "keyword", "window.end": "date",
    # Job health documents (mlmon.core.job_runs.JobHealth.to_fields), one per model and job family.
    "job.model": "keyword", "job.family": "keyword", "job.last_run_at": "date", "job.last_success_at": "date",
    "job.last_duration_seconds": "double", "job.last_ok": "boolean", "job.last_error": "text",
    "job.last_windows": "long", "job.last_documents": "long",
}

#: Index templates must outrank Elasticsearch's built-in ``logs`` template (priority 100, ``logs-*-*``).
PRIORITY = 200
#: Longer keyword values are kept in _source but not indexed (ECS's convention).
KEYWORD_IGNORE_ABOVE = 1024
MANAGED_BY = "mlmon"
MODEL_KINDS: tuple[contract.Kind, ...] = ("prediction", "feedback", "explanation")

#: Default retention per ILM policy: how long every event is kept at least. An index holds a
#: month, so the delete phase's min_age (counted from the month's first day) is the retention
#: plus MONTH_SPAN. Override at install time: ``mlmon setup --retention events=400d``.
RETENTION: dict[str, str] = {"events": "90d", "deadletter": "30d", "telemetry": "30d"}
#: The longest month: what an event index spans from its origination date (the month's first day).
MONTH_SPAN = "31d"
#: Suffix of an event index's name: the month of the event's @timestamp, as a day ILM can parse
#: (Logstash sprintf in the pipelines' output ``index``; :func:`event_index` in Python).
EVENT_INDEX_SUFFIX = "-%{+yyyy.MM}.01"
POLICY_OF_KIND: dict[str, str] = {"prediction": "events", "feedback": "events", "explanation": "events",
                                  "prediction_error": "events",
                                  "prediction_error": "events", "emitter": "telemetry", "deadletter": "deadletter"}


def ilm_policy_name(policy: str) -> str:
    return f"mlmon-{policy}"


# --- mappings -------------------------------------------------------------------------------

def leaf_mapping(es_type: str) -> Body:
    if es_type == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    return {"type": es_type}


def nest(flat: Mapping[str, Body]) -> Body:
    """``{"a.b": {...}}`` -> ``{"a": {"properties": {"b": {...}}}}`` (Elasticsearch ``properties``)."""
    root: Body = {}
    for dotted, spec in sorted(flat.items()):
        node = root
        *parents, leaf = dotted.split(".")
        for part in parents:
            parent = node.setdefault(part, {})
            if "type" in parent:
                raise ValueError(f"{dotted!r}: {part!r} is both an object and a field")
            node = parent.setdefault("properties", {})
        if leaf in node:
            raise ValueError(f"{dotted!r} is both an object and a field")
        node[leaf] = spec
    return root


def _family_objects(families: Iterable[contract.FieldFamily]) -> tuple[dict[str, Body], list[Body]]:
    """Family prefixes as dynamic objects, and one dynamic template per family."""
    objects: dict[str, Body] = {}
    templates: list[Body] = []
    for fam in families:
        path = fam.prefix.rstrip(".")
        objects[path] = {"type": "object", "dynamic": True}
        templates.append({path.replace(".", "_"): {"path_match": f"{fam.prefix}*", "mapping": leaf_mapping(fam.type)}})
    return objects, templates


def mappings(fields: Mapping[str, str], families: Iterable[contract.FieldFamily] = (),
             extra: Mapping[str, Body] | None = None) -> Body:
    flat: dict[str, Body] = {name: leaf_mapping(t) for name, t in fields.items()}
    flat.update(extra or {})
    objects, dynamic_templates = _family_objects(families)
    flat.update(objects)
    body: Body = {"dynamic": False, "properties": nest(flat)}
    if dynamic_templates:
        body["dynamic_templates"] = dynamic_templates
    return body


def _types(fields: Iterable[contract.Field]) -> dict[str, str]:
    return {f.name: f.type for f in fields}


def _kinds_of(name: str) -> set[str]:
    return {k for k in contract.KINDS if any(f.name == name for f in contract.fields_for(k))}


def _event_field_groups() -> dict[str, dict[str, contract.FieldType]]:
    """Component name -> fields, so that each kind's composition maps exactly ``fields_for(kind)``."""
    every = [f for f in contract.fields_for("prediction") if _kinds_of(f.name) == set(contract.KINDS)]
    ecs = {f.name: f.type for f in every if not f.name.startswith("mlmon.")}
    common = {f.name: f.type for f in every if f.name.startswith("mlmon.")}
    model = {f.name: f.type for f in contract.fields_for("prediction")
             if set(MODEL_KINDS) <= _kinds_of(f.name) and f.name not in ecs and f.name not in common}
    groups = {"mlmon-ecs@mappings": ecs, "mlmon-common@mappings": common, "mlmon-model@mappings": model}
    for kind in contract.KINDS:
        shared = ecs.keys() | common.keys() | (model.keys() if kind in MODEL_KINDS else set())
        groups[f"mlmon-{kind}@mappings"] = {f.name: f.type for f in contract.fields_for(kind) if f.name not in shared}
    return groups


#: Decided per stream, not left to the cluster: from 9.0 Elasticsearch gives every new ``logs-*-*``
#: data stream the logsdb index mode unless its template sets one, and logsdb defaults
#: ``index.mapping.ignore_malformed`` to true - a wrong-typed value would be kept in _source but
#: silently left unindexed instead of refused (400) into the dead letters. Standard mode, with
#: ignore_malformed set false explicitly, keeps the contract's "never silently wrong". Replicas
#: 0-1: green on a single node, one replica as soon as a second node joins.
EVENT_INDEX_SETTINGS: Body = {"mode": "standard", "auto_expand_replicas": "0-1"}

#: The rejected line is kept whole for replay but neither indexed nor aggregatable (ECS's event.original).
_UNINDEXED_KEYWORD: Body = {"type": "keyword", "index": False, "doc_values": False}


def component_templates() -> dict[str, Body]:
    groups = _event_field_groups()
    labels = [f for f in contract.FAMILIES if f.prefix == "labels."]
    out: dict[str, Body] = {}
    for name, fields in groups.items():
        kind = name.removeprefix("mlmon-").removesuffix("@mappings")
        families = labels if name == "mlmon-ecs@mappings" else (
            [f for f in contract.families_for(kind) if f.prefix != "labels."] if kind in contract.KINDS else [])
        out[name] = _component(mappings(fields, families), _describe(name))

    dead = _types(contract.DEAD_LETTER_FIELDS)
    dead_extra = {"event.original": _UNINDEXED_KEYWORD, "log.offset": {"type": "long"}}
    out["mlmon-deadletter@mappings"] = _component(
        mappings({k: v for k, v in dead.items() if k != "event.original"}, (), dead_extra),
        "Dead letters: lines that failed validation, with the reason and the original line.")

    for policy in sorted(set(POLICY_OF_KIND.values())):
        out[f"mlmon-{policy}@settings"] = _component_settings(
            {"index": {"lifecycle": {"name": ilm_policy_name(policy), "parse_origination_date": True},
                       **EVENT_INDEX_SETTINGS,
                       "mapping": {"total_fields": {"ignore_dynamic_beyond_limit": True},
                                   "ignore_malformed": False}}},
            f"Settings of the mlmon {policy} event indices (ILM policy {ilm_policy_name(policy)}, the index's "
            f"age taken from the month in its name; standard index mode: a malformed value is refused and "
            f"dead-lettered, not silently unindexed).")
    out["mlmon-documents@settings"] = _component_settings(
        {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "Settings of the mlmon metric, alert, reference and checkpoint indices: small, one shard.")
    out["mlmon-metrics@mappings"] = _component(mappings(METRIC_FIELDS), "Metric documents (mlmon.core.documents.METRIC_FIELDS).")
    out["mlmon-alerts@mappings"] = _component(mappings(ALERT_FIELDS), "Alert documents (mlmon.core.alert_schema.ALERT_FIELDS).")
    out["mlmon-references@mappings"] = _component(
        mappings(REFERENCE_FIELDS, (), {"profile": {"type": "object", "enabled": False}}),
        "Reference profiles: searchable header; the profile body is stored, not indexed.")
    out["mlmon-checkpoints@mappings"] = _component(mappings(CHECKPOINT_FIELDS), "Per-job progress of the jobs' windows.")
    out["mlmon-outbox@mappings"] = _component(
        mappings(OUTBOX_FIELDS, (), {OUTBOX_PAYLOAD: {"type": "object", "enabled": False}}),
        "Alert deliveries per channel (mlmon.core.alert_schema.OUTBOX_FIELDS); the payload is stored, not indexed.")
    return out


def _describe(component: str) -> str:
    return {
        "mlmon-ecs@mappings": "ECS base fields of every mlmon event, and labels.*.",
        "mlmon-common@mappings": "mlmon fields every mlmon event carries.",
        "mlmon-model@mappings": "Fields of model events (predictions, feedback, explanations): model, ids, data quality.",
    }.get(component, f"Fields only {component.removeprefix('mlmon-').removesuffix('@mappings')} events carry.")


def _meta(description: str) -> Body:
    return {"managed_by": MANAGED_BY, "description": description, "contract_schema_version": contract.SCHEMA_VERSION}


def _component(mapping: Body, description: str) -> Body:
    return {"template": {"mappings": mapping}, "_meta": _meta(description)}


def _component_settings(settings: Body, description: str) -> Body:
    return {"template": {"settings": settings}, "_meta": _meta(description)}


# --- index templates ------------------------------------------------------------------------

def count_fields(properties: Mapping[str, Any]) -> int:
    """Fields Elasticsearch counts against total_fields.limit: every leaf and object, and multi-fields."""
    total = 0
    for spec in properties.values():
        total += 1 + len(spec.get("fields", {}))
        total += count_fields(spec.get("properties", {}))
    return total


def merged_properties(composed_of: Iterable[str], components: Mapping[str, Body]) -> Body:
    """Properties of the composed mapping (later components win, as in Elasticsearch)."""
    merged: Body = {}

    def merge(into: Body, props: Mapping[str, Any]) -> None:
        for key, spec in props.items():
            if "properties" in spec and "properties" in into.get(key, {}):
                merge(into[key]["properties"], spec["properties"])
            else:
                into[key] = json.loads(json.dumps(spec))
    for name in composed_of:
        merge(merged, components[name].get("template", {}).get("mappings", {}).get("properties", {}))
    return merged


def field_limit(kind: contract.Kind, fixed_fields: int) -> int:
    return fixed_fields + len(contract.families_for(kind)) * contract.MAX_FAMILY_FIELDS


def index_templates(components: Mapping[str, Body]) -> dict[str, Body]:
    out: dict[str, Body] = {}
    for kind in contract.KINDS:
        composed = ["mlmon-ecs@mappings", "mlmon-common@mappings"]
        composed += ["mlmon-model@mappings"] if kind in MODEL_KINDS else []
        composed += [f"mlmon-{kind}@mappings", f"mlmon-{POLICY_OF_KIND[kind]}@settings"]
        fixed = count_fields(merged_properties(composed, components))
        out[f"logs-mlmon.{kind}"] = {
            "index_patterns": [event_index_pattern(kind)],
            "priority": PRIORITY,
            "composed_of": composed,
            "template": {"settings": {"index": {"mapping": {"total_fields": {"limit": field_limit(kind, fixed)}}}}},
            "_meta": _meta(f"mlmon {kind} events ({fixed} fixed fields + {contract.MAX_FAMILY_FIELDS} "
                           f"per user-named family)"),
        }
    out["logs-mlmon.deadletter"] = {
        "index_patterns": [event_index_pattern("deadletter")],
        "priority": PRIORITY,
        "composed_of": ["mlmon-deadletter@mappings", "mlmon-deadletter@settings"],
        "_meta": _meta("mlmon dead letters: rejected lines, never silently dropped"),
    }
    # Regular indices, not data streams: metric documents are overwritten by id (a re-run or
    # late labels replace a window's value), which data streams' append-only model forbids.
    for index, what in ((METRICS_INDEX, "metrics"), (ALERTS_INDEX, "alerts"), (REFERENCES_INDEX, "references"),
                        (CHECKPOINTS_INDEX, "checkpoints"), (OUTBOX_INDEX, "outbox")):
        out[index] = {
            "index_patterns": [f"{index}*"],
            "priority": PRIORITY,
            "composed_of": [f"mlmon-{what}@mappings", "mlmon-documents@settings"],
            "_meta": _meta(f"mlmon {what} (regular index, documents overwritten by id)"),
        }
    return out


# --- time-routed event indices --------------------------------------------------------------

def event_index_pattern(kind: str) -> str:
    """The dated indices of one kind, every namespace: ``logs-mlmon.prediction-*-*``.

    Not ``logs-mlmon.prediction-*``: that would also match a data stream of the former layout.
    """
    return f"{contract.data_stream(kind, '*')}-*"  # type: ignore[arg-type]


def event_index(stream: str, when: datetime) -> str:
    """The index of events of ``stream`` (``logs-mlmon.<kind>-<namespace>``) whose @timestamp is ``when``."""
    return f"{stream}-{when.astimezone(timezone.utc):%Y.%m}.01"


# --- ILM ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>d|h|m|s)$")
_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def duration_seconds(value: str) -> int:
    """An ILM age (``90d``, ``12h``, ``30m``, ``45s``) in seconds."""
    m = _DURATION.match(value)
    if m is None:
        raise ValueError(f"retention {value!r}: expected a number and d, h, m or s, e.g. 400d")
    return int(m["n"]) * _SECONDS[m["unit"]]


def delete_after(retention: str) -> str:
    """The delete phase's min_age keeping every event of a month index for ``retention``."""
    total = duration_seconds(retention) + duration_seconds(MONTH_SPAN)
    unit = next(u for u in ("d", "h", "m", "s") if total % _SECONDS[u] == 0)
    return f"{total // _SECONDS[unit]}{unit}"


def ilm_policy(policy: str, retention: str) -> Body:
    """Delete-only: event indices never roll over (a rollover would split an event's copies)."""
    return {"policy": {
        "phases": {"delete": {"min_age": delete_after(retention), "actions": {"delete": {}}}},
        "_meta": {**_meta(f"mlmon {policy}: keep every event at least its retention; a month's index is "
                          f"deleted the retention + {MONTH_SPAN} after the month's first day"), "retention": retention},
    }}


def ilm_policies(retention: Mapping[str, str] | None = None) -> dict[str, Body]:
    keep = {**RETENTION, **(retention or {})}
    unknown = set(keep) - set(RETENTION)
    if unknown:
        raise ValueError(f"unknown retention policy {sorted(unknown)}; known: {sorted(RETENTION)}")
    return {ilm_policy_name(policy): ilm_policy(policy, keep[policy]) for policy in sorted(RETENTION)}


# --- roles ----------------------------------------------------------------------------------

#: Every mlmon event index (and a former layout's data streams, still readable).
EVENT_STREAMS = f"{contract.DATA_STREAM_TYPE}-mlmon.*-*"
#: What Logstash writes: the dated indices of each kind, nothing else.
WRITTEN_STREAMS = [event_index_pattern(kind) for kind in (*contract.KINDS, "deadletter")]
DOCUMENT_INDICES = [f"{i}*" for i in (METRICS_INDEX, ALERTS_INDEX, REFERENCES_INDEX, CHECKPOINTS_INDEX, OUTBOX_INDEX)]
#: Kibana feature privileges (application privileges of Kibana's default application), all spaces.
KIBANA_VIEWER = {"application": "kibana-.kibana", "resources": ["*"],
                 "privileges": ["feature_discover_v2.read", "feature_dashboard_v2.read", "feature_visualize_v2.read"]}


def roles() -> dict[str, Body]:
    meta = {"managed_by": MANAGED_BY}
    return {
        "mlmon_logstash_writer": {
            "description": "Logstash: append mlmon events to the mlmon event indices, nothing else.",
            # monitor: the Logstash output checks the cluster's version and licence at start.
            "cluster": ["monitor"],
            # create_doc: append only (no overwrite, no delete). auto_configure: create a month's
            # index at its first event and map a new feature dynamically. Only on the dated indices
            # it writes (one pattern per kind), not on every logs-mlmon.* name.
            "indices": [{"names": WRITTEN_STREAMS, "privileges": ["create_doc", "auto_configure"]}],
            "metadata": meta,
        },
        "mlmon_jobs": {
            "description": "mlmon jobs: read events; write metrics, alerts, references and checkpoints.",
            "cluster": ["monitor"],
            "indices": [
                {"names": [EVENT_STREAMS], "privileges": ["read", "view_index_metadata"]},
                # index + create_doc: write and overwrite by id; not `write`, which includes delete.
                {"names": DOCUMENT_INDICES, "privileges": ["read", "index", "create_doc", "view_index_metadata",
                                                           "auto_configure"]},
            ],
            "metadata": meta,
        },
        "mlmon_viewer": {
            "description": "Read-only: mlmon events, metrics and alerts in Discover and dashboards.",
            "indices": [{"names": [EVENT_STREAMS, *DOCUMENT_INDICES], "privileges": ["read", "view_index_metadata"]}],
            "applications": [KIBANA_VIEWER],
            "metadata": meta,
        },
        # Grafana's Elasticsearch data source logs in as mlmon_grafana: metric documents only.
        "mlmon_grafana": {
            "description": "Grafana: read mlmon metric documents, nothing else.",
            "cluster": ["monitor"],
            "indices": [{"names": [f"{METRICS_INDEX}*"], "privileges": ["read", "view_index_metadata"]}],
            "metadata": meta,
        },
    }


# --- files ----------------------------------------------------------------------------------

def generate() -> dict[str, Body]:
    """Relative path under ``elasticsearch/`` -> body, for every generated file."""
    components = component_templates()
    files: dict[str, Body] = {}
    files.update({f"component_templates/{n}.json": b for n, b in components.items()})
    files.update({f"index_templates/{n}.json": b for n, b in index_templates(components).items()})
    files.update({f"ilm/{n}.json": b for n, b in ilm_policies().items()})
    files.update({f"roles/{n}.json": b for n, b in roles().items()})
    return files


def render(body: Body) -> str:
    return json.dumps(body, indent=2, sort_keys=False) + "\n"


def write(root: Path = ELASTICSEARCH) -> list[Path]:
    """Write the generated files; remove stale generated files of the same directories."""
    files = generate()
    written: list[Path] = []
    for directory in {Path(p).parent.as_posix() for p in files}:
        for old in (root / directory).glob("*.json"):
            if f"{directory}/{old.name}" not in files:
                old.unlink()
    for rel, body in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(body), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    if why := refuse_write(ELASTICSEARCH):
        sys.exit(f"python -m mlmon.stack.elasticsearch_assets: {why}")
    for p in write():
        print(p)
    sys.exit(0)
