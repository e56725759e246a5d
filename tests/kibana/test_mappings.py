"""Field types resolved from index and component templates, as Elasticsearch composes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlmon.stack.kibana import mappings


def _write(path: Path, body: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body), encoding="utf-8")


@pytest.fixture()
def es_root(tmp_path: Path) -> Path:
    _write(tmp_path / "component_templates" / "base.json", {"template": {"mappings": {
        "properties": {"@timestamp": {"type": "date"}, "message": {"type": "text", "fields": {"raw": {"type": "keyword"}}}},
        "dynamic_templates": [{"features": {"path_match": "f.num.*", "mapping": {"type": "double"}}}],
    }}})
    _write(tmp_path / "component_templates" / "metric.json", {"template": {"mappings": {"properties": {
        "metric": {"properties": {"value": {"type": "double"}, "details": {"type": "flattened"}}},
        "message": {"type": "keyword"},  # a later template overrides an earlier one
    }}}})
    _write(tmp_path / "index_templates" / "low.json", {
        "index_patterns": ["m-*"], "priority": 1, "composed_of": ["base"]})
    _write(tmp_path / "index_templates" / "high.json", {
        "index_patterns": ["m-metrics*"], "priority": 200, "composed_of": ["base", "metric"],
        "template": {"mappings": {"properties": {"n": {"type": "long"}}}}})
    return tmp_path


def test_highest_priority_template_and_composition(es_root: Path) -> None:
    m = mappings.from_templates(es_root, ["m-metrics*"]).for_pattern("m-metrics*")
    assert m.type_of("@timestamp") == "date"
    assert m.type_of("metric.value") == "double"
    assert m.type_of("n") == "long"
    assert m.type_of("message") == "keyword"
    assert m.type_of("message.raw") == "keyword"
    assert m.type_of("metric.details.p_value") == "keyword"
    assert m.type_of("f.num.age") == "double"
    assert m.type_of("f.num.age.deeper") == "double"  # fnmatch '*' crosses dots, as path_match does
    assert m.type_of("nope") is None


def test_unmatched_pattern_is_reported(es_root: Path) -> None:
    with pytest.raises(KeyError, match="no index template maps"):
        mappings.from_templates(es_root, ["other-*"]).for_pattern("other-*")


def test_missing_component_template_is_an_error(es_root: Path) -> None:
    _write(es_root / "index_templates" / "broken.json", {"index_patterns": ["b-*"], "composed_of": ["absent"]})
    with pytest.raises(ValueError, match="absent"):
        mappings.from_templates(es_root, ["b-*"])
