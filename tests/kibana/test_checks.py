"""Each offline check catches the breakage it exists for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlmon.stack.kibana import checks, mappings


def _first(objects: list[dict[str, Any]], type_: str, id_: str | None = None) -> dict[str, Any]:
    return next(o for o in objects if o["type"] == type_ and (id_ is None or o["id"] == id_))


def _edit_panels(dashboard: dict[str, Any], edit: Any) -> None:
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    edit(panels)
    dashboard["attributes"]["panelsJSON"] = json.dumps(panels)


def _columns(panel: dict[str, Any]) -> dict[str, Any]:
    layers = panel["embeddableConfig"]["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
    return next(iter(layers.values()))["columns"]


def test_duplicate_id(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    objects.append(dict(objects[0]))
    assert any("duplicate id" in p for p in checks.check_all(objects, field_mappings))


def test_unknown_attribute_is_refused(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    _first(objects, "dashboard")["attributes"]["panels"] = []
    assert any("not in the dashboard schema" in p for p in checks.check_all(objects, field_mappings))


def test_dangling_reference(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    _first(objects, "search")["references"][0]["id"] = "no-such-view"
    assert any("does not resolve" in p for p in checks.check_all(objects, field_mappings))


def test_missing_panel_reference(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    d = _first(objects, "dashboard")
    d["references"] = [r for r in d["references"] if "indexpattern-datasource-layer" not in r["name"]]
    assert any("does not carry" in p for p in checks.check_all(objects, field_mappings))


def test_unused_reference(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    _first(objects, "dashboard")["references"].append({"id": "mlmon-metrics", "name": "stray", "type": "index-pattern"})
    assert any("nothing uses" in p for p in checks.check_all(objects, field_mappings))


def test_broken_json_string(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    _first(objects, "dashboard")["attributes"]["optionsJSON"] = "{not json"
    assert any("does not parse" in p for p in checks.check_all(objects, field_mappings))


def test_panel_outside_the_grid(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    def widen(panels: list[dict[str, Any]]) -> None:
        panels[0]["gridData"]["w"] = 49
    _edit_panels(_first(objects, "dashboard"), widen)
    assert any("does not fit" in p for p in checks.check_all(objects, field_mappings))


def test_overlapping_panels(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    def stack(panels: list[dict[str, Any]]) -> None:
        panels[1]["gridData"]["y"] = panels[0]["gridData"]["y"]
        panels[1]["gridData"]["x"] = panels[0]["gridData"]["x"] + 1
    _edit_panels(_first(objects, "dashboard"), stack)
    assert any("overlaps" in p for p in checks.check_all(objects, field_mappings))


def test_unmapped_field(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    def rename(panels: list[dict[str, Any]]) -> None:
        for col in _columns(panels[-1]).values():
            if col.get("sourceField", "").startswith("metric.") or col.get("sourceField", "").startswith("mlmon."):
                col["sourceField"] = "metric.vaule"
    _edit_panels(_first(objects, "dashboard", "mlmon-dashboard-drift"), rename)
    assert any("'metric.vaule' is not mapped" in p for p in checks.check_all(objects, field_mappings))


def test_average_of_a_keyword(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    def average_status(panels: list[dict[str, Any]]) -> None:
        for col in _columns(panels[0]).values():
            if col["operationType"] == "max":
                col["operationType"], col["sourceField"] = "average", "metric.status"
    _edit_panels(_first(objects, "dashboard", "mlmon-dashboard-drift"), average_status)
    assert any("average on 'metric.status', which is keyword" in p for p in checks.check_all(objects, field_mappings))


def test_control_on_an_unmapped_field(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    group = _first(objects, "dashboard")["attributes"]["controlGroupInput"]
    controls = json.loads(group["panelsJSON"])
    next(iter(controls.values()))["explicitInput"]["fieldName"] = "model"
    group["panelsJSON"] = json.dumps(controls)
    assert any("'model' is not mapped" in p for p in checks.check_all(objects, field_mappings))


def test_search_kql_field_is_checked(objects: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    s = _first(objects, "search", "mlmon-search-metrics-in-alert")
    source = json.loads(s["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    source["query"]["query"] = 'metric.state : "alert"'
    s["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"] = json.dumps(source)
    assert any("'metric.state' is not mapped" in p for p in checks.check_all(objects, field_mappings))


@pytest.mark.parametrize(("query", "fields"), [
    ('metric.family : "drift"', ["metric.family"]),
    ('a.b : ("x" or "y") and not c : *', ["a.b", "c"]),
    ('x : "has : colon and y : inside"', ["x"]),
    ("", []),
])
def test_kql_fields(query: str, fields: list[str]) -> None:
    assert checks.kql_fields(query) == fields
