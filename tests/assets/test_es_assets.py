"""elasticsearch/: committed files equal the generator, map the contract exactly, and typecheck."""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mlmon.core.alert_schema import ALERT_FIELDS
from mlmon.core.documents import METRIC_FIELDS
from mlmon.core.assets import ELASTICSEARCH
from mlmon.stack import elasticsearch_assets as assets
from mlmon_logging import contract

GENERATED_DIRS = ("component_templates", "index_templates", "ilm", "roles")
# Every JSON body under elasticsearch/ is type-checked as sent, in
# test_setup_command.py::test_every_body_under_elasticsearch_and_every_body_setup_sends_typechecks (one tsc run).


def _committed() -> dict[str, Any]:
    return {f"{d}/{p.name}": json.loads(p.read_text()) for d in GENERATED_DIRS
            for p in sorted((ELASTICSEARCH / d).glob("*.json"))}


def test_committed_files_equal_the_generator_output() -> None:
    generated = assets.generate()
    committed = _committed()
    assert sorted(committed) == sorted(generated), "run: python -m mlmon.stack.elasticsearch_assets"
    for rel, body in generated.items():
        assert (ELASTICSEARCH / rel).read_text() == assets.render(body), f"{rel} is stale: python -m mlmon.stack.elasticsearch_assets"


# --- resolving what Elasticsearch would map, from the committed files ---------------------------

def _composed(index_template: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """(merged properties, dynamic templates in order, merged settings) of an index template."""
    body = json.loads((ELASTICSEARCH / "index_templates" / f"{index_template}.json").read_text())
    components = {p.stem: json.loads(p.read_text()) for p in (ELASTICSEARCH / "component_templates").glob("*.json")}
    props = assets.merged_properties(body["composed_of"], components)
    dynamic: list[tuple[str, dict[str, Any]]] = []
    for name in body["composed_of"]:
        for entry in components[name]["template"].get("mappings", {}).get("dynamic_templates", []):
            dynamic += list(entry.items())
    settings: dict[str, Any] = {}
    for name in body["composed_of"]:
        settings = _deep_merge(settings, components[name]["template"].get("settings", {}))
    settings = _deep_merge(settings, body.get("template", {}).get("settings", {}))
    return props, dynamic, settings


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _leaf(props: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    node: dict[str, Any] = {"properties": props}
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        child = node.get("properties", {}).get(part)
        if child is None:
            # A dynamic object takes new fields; the first matching dynamic template types them.
            return {"dynamic_parent": ".".join(parts[:i])} if node.get("dynamic") is True else None
        node = child
    return node


def resolve(index_template: str, field: str) -> dict[str, Any] | None:
    """The mapping Elasticsearch would give ``field`` in a new backing index of the template."""
    props, dynamic, _ = _composed(index_template)
    leaf = _leaf(props, field)
    if leaf is None or "dynamic_parent" not in leaf:
        return leaf
    for _, spec in dynamic:
        if fnmatch.fnmatchcase(field, spec["path_match"]):
            return spec["mapping"]
    return None  # would be mapped by type detection: not allowed


@pytest.mark.parametrize("kind", contract.KINDS)
def test_every_field_an_event_can_carry_is_mapped_with_the_contract_type(kind: contract.Kind) -> None:
    template = f"logs-mlmon.{kind}"
    for f in contract.fields_for(kind):
        mapping = resolve(template, f.name)
        assert mapping is not None, f"{kind}: {f.name} is not mapped"
        assert mapping["type"] == f.type, f"{kind}: {f.name} is {mapping['type']}, the contract says {f.type}"
    for fam in contract.families_for(kind):
        for user_name in ("age", "plan_type", "x-1"):
            mapping = resolve(template, fam.prefix + user_name)
            assert mapping is not None and mapping["type"] == fam.type, f"{kind}: {fam.prefix}{user_name}"
    # Families of other kinds are not mapped here, and nothing outside the contract is dynamic.
    for fam in contract.FAMILIES:
        if kind not in fam.kinds:
            assert resolve(template, fam.prefix + "age") is None, f"{kind} maps {fam.prefix}*"
    assert resolve(template, "not_in_contract") is None


@pytest.mark.parametrize("kind", contract.KINDS)
def test_no_fixed_field_beyond_the_contract(kind: contract.Kind) -> None:
    props, _, _ = _composed(f"logs-mlmon.{kind}")
    leaves = _flatten(props)
    # Exactly the contract's fields: no data_stream.* (constant_keyword fields nothing fills: the
    # events are in time-routed regular indices, not data streams).
    expected = {f.name for f in contract.fields_for(kind)}
    family_objects = {fam.prefix.rstrip(".") for fam in contract.families_for(kind)}
    assert set(leaves) - family_objects == expected


def _flatten(props: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, spec in props.items():
        if "properties" in spec:
            out.update(_flatten(spec["properties"], f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = spec.get("type", "object")
    return out


@pytest.mark.parametrize("kind", contract.KINDS)
def test_field_limit_fits_every_family_at_its_cap_and_ignores_beyond(kind: contract.Kind) -> None:
    props, _, settings = _composed(f"logs-mlmon.{kind}")
    limit = settings["index"]["mapping"]["total_fields"]["limit"]
    fixed = assets.count_fields(props)
    assert limit >= fixed + len(contract.families_for(kind)) * contract.MAX_FAMILY_FIELDS
    # ... and not far beyond it: the limit is the documented cap, not a big round number.
    assert limit - fixed == len(contract.families_for(kind)) * contract.MAX_FAMILY_FIELDS
    assert settings["index"]["mapping"]["total_fields"]["ignore_dynamic_beyond_limit"] is True
    assert settings["index"]["lifecycle"]["name"] == assets.ilm_policy_name(assets.POLICY_OF_KIND[kind])


def test_dead_letters_keep_the_original_line_unindexed() -> None:
    for f in contract.DEAD_LETTER_FIELDS:
        mapping = resolve("logs-mlmon.deadletter", f.name)
        assert mapping is not None and mapping["type"] == f.type, f.name
    original = resolve("logs-mlmon.deadletter", "event.original")
    assert original == {"type": "keyword", "index": False, "doc_values": False}
    assert resolve("logs-mlmon.deadletter", "log.offset") == {"type": "long"}


@pytest.mark.parametrize("template, fields", [
    ("mlmon-metrics", METRIC_FIELDS), ("mlmon-alerts", ALERT_FIELDS), ("mlmon-references", assets.REFERENCE_FIELDS),
])
def test_document_indices_map_their_schemas_exactly(template: str, fields: dict[str, str]) -> None:
    props, _, settings = _composed(template)
    flat = _flatten(props)
    flat.pop("profile", None)
    assert flat == fields
    assert "data_stream" not in json.loads((ELASTICSEARCH / "index_templates" / f"{template}.json").read_text())


def test_a_real_reference_profile_document_is_fully_mapped() -> None:
    np = pytest.importorskip("numpy")
    from mlmon.core.reference import ReferenceProfile
    from mlmon.core.stats import CategoryStats, NumericStats

    assert NumericStats and CategoryStats and np
    profile = ReferenceProfile(model="churn", version="3", rows=10, numeric={}, categorical={},
                               source="train.parquet", created_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    doc = profile.to_document()
    doc.pop("profile")
    leaves = _flatten_doc(doc)
    props, _, _ = _composed("mlmon-references")
    for name in leaves:
        assert _leaf(props, name) is not None, f"reference document field {name} is not mapped"
    assert resolve("mlmon-references", "profile") == {"type": "object", "enabled": False}


def _flatten_doc(doc: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, v in doc.items():
        out += _flatten_doc(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def test_each_concrete_index_matches_exactly_one_template() -> None:
    templates = {p.stem: json.loads(p.read_text()) for p in (ELASTICSEARCH / "index_templates").glob("*.json")}
    names = [assets.event_index(contract.data_stream(k, ns), datetime(2025, 1, 31, 23, 59, tzinfo=timezone.utc))  # type: ignore[arg-type]
             for k in (*contract.KINDS, "deadletter") for ns in ("default", "prod_eu")]
    names += ["mlmon-metrics", "mlmon-alerts", "mlmon-references", "mlmon-checkpoints", "mlmon-outbox"]
    for name in names:
        matching = [t for t, body in templates.items()
                    if any(fnmatch.fnmatchcase(name, p) for p in body["index_patterns"])]
        assert len(matching) == 1, f"{name} matches {matching}"
        assert templates[matching[0]]["priority"] > 100, "must outrank Elasticsearch's built-in logs template"


def test_roles_are_least_privilege() -> None:
    roles = {p.stem: json.loads(p.read_text()) for p in (ELASTICSEARCH / "roles").glob("*.json")}
    writer = roles["mlmon_logstash_writer"]
    # Append-only, and only on the dated indices Logstash writes: not on any other logs-mlmon.* name.
    written = [f"{contract.data_stream(k, '*')}-*" for k in (*contract.KINDS, "deadletter")]  # type: ignore[arg-type]
    assert writer["indices"] == [{"names": written, "privileges": ["create_doc", "auto_configure"]}]
    assert writer["cluster"] == ["monitor"]
    jobs = roles["mlmon_jobs"]
    event_grants = [g for g in jobs["indices"] if "logs-mlmon.*-*" in g["names"]]
    assert event_grants and all(set(g["privileges"]) <= {"read", "view_index_metadata"} for g in event_grants)
    doc_grants = [g for g in jobs["indices"] if "mlmon-metrics*" in g["names"]]
    # index + create_doc write and overwrite by id; `write` would include delete.
    assert doc_grants and {"index", "create_doc"} <= set(doc_grants[0]["privileges"])
    assert "write" not in doc_grants[0]["privileges"] and "delete" not in doc_grants[0]["privileges"]
    assert "all" not in json.dumps(jobs) and "manage" not in json.dumps(jobs["indices"])
    viewer = roles["mlmon_viewer"]
    assert all(set(g["privileges"]) <= {"read", "view_index_metadata"} for g in viewer["indices"])
    assert all(p.endswith(".read") for a in viewer["applications"] for p in a["privileges"])
    assert viewer.get("cluster", []) == []
    grafana = roles["mlmon_grafana"]  # Grafana's Elasticsearch data source: metric documents, read only
    assert grafana["cluster"] == ["monitor"]
    assert grafana["indices"] == [{"names": ["mlmon-metrics*"], "privileges": ["read", "view_index_metadata"]}]
    assert grafana["metadata"] == {"managed_by": "mlmon"} and "applications" not in grafana


def test_retention_is_configurable_and_validated() -> None:
    policies = assets.ilm_policies({"events": "400d"})
    # Kept 400 days at least: a month's index goes 400 + 31 days after the month's first day.
    assert policies["mlmon-events"]["policy"]["phases"]["delete"]["min_age"] == "431d"
    assert policies["mlmon-events"]["policy"]["_meta"]["retention"] == "400d"
    assert policies["mlmon-deadletter"]["policy"]["phases"]["delete"]["min_age"] == "61d"
    assert set(policies["mlmon-events"]["policy"]["phases"]) == {"delete"}  # no rollover: events stay put
    assert assets.delete_after("36h") == "780h" and assets.delete_after("90m") == "44730m"
    with pytest.raises(ValueError, match="unknown retention policy"):
        assets.ilm_policies({"forever": "1d"})
    with pytest.raises(ValueError, match="expected a number and d, h, m or s"):
        assets.delete_after("1w")


def test_the_generator_refuses_a_field_that_is_also_an_object() -> None:
    with pytest.raises(ValueError, match="both an object and a field"):
        assets.nest({"a.b": {"type": "keyword"}, "a": {"type": "keyword"}, "a.b.c": {"type": "long"}})


def test_write_regenerates_into_an_empty_directory(tmp_path: Path) -> None:
    written = assets.write(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(assets.generate())


def test_event_streams_decide_their_index_mode_and_refuse_malformed_values() -> None:
    """9.x gives new logs-*-* streams logsdb (ignore_malformed: true) unless the template decides."""
    for policy in ("events", "telemetry", "deadletter"):
        body = json.loads((ELASTICSEARCH / "component_templates" / f"mlmon-{policy}@settings.json").read_text())
        index = body["template"]["settings"]["index"]
        assert index["mode"] == "standard", policy
        # ILM takes the index's age from the month in its name, not from when it was made.
        assert index["lifecycle"] == {"name": f"mlmon-{policy}", "parse_origination_date": True}, policy
        assert index["mapping"]["ignore_malformed"] is False, policy
        assert index["auto_expand_replicas"] == "0-1", policy  # green on a single node
    composed = {json.loads(p.read_text())["composed_of"][-1] for p in (ELASTICSEARCH / "index_templates").glob("logs-*.json")}
    assert composed == {"mlmon-events@settings", "mlmon-telemetry@settings", "mlmon-deadletter@settings"}
