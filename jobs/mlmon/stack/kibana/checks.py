"""Offline checks of exported saved objects (Kibana cannot run where mlmon is built).

They read the exported dicts, not the generator's own structures, so a hand
edit of the NDJSON is checked as strictly as generated output. Each check
returns human-readable problems; an empty list means the objects pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlmon.stack.kibana.mappings import Mappings
from mlmon.stack.kibana.saved_objects import CORE_MIGRATION_VERSION, TYPE_MIGRATION_VERSIONS

GRID_COLUMNS = 48
EXPORT_KEYS = {"attributes", "coreMigrationVersion", "id", "managed", "references", "type", "typeMigrationVersion"}
#: Attribute keys each type's schema accepts at the versions we declare (dashboard model
#: version 2, whose schema forbids unknown keys; search model version 5).
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "dashboard": {"title", "description", "kibanaSavedObjectMeta", "timeRestore", "timeFrom", "timeTo",
                  "refreshInterval", "controlGroupInput", "panelsJSON", "optionsJSON", "hits", "version"},
    "search": {"title", "description", "columns", "sort", "grid", "rowHeight", "rowsPerPage", "hideChart",
               "breakdownField", "kibanaSavedObjectMeta", "isTextBasedQuery", "usesAdHocDataView", "timeRestore",
               "timeRange", "refreshInterval", "viewMode", "hideAggregatedPreview", "hits", "version",
               "sampleSize", "headerRowHeight", "visContext", "density"},
    "index-pattern": {"title", "name", "timeFieldName", "allowHidden", "fieldAttrs", "fieldFormatMap",
                      "runtimeFieldMap", "sourceFilters", "fields", "typeMeta", "allowNoIndex"},
}
CONTROL_GROUP_KEYS = {"panelsJSON", "controlStyle", "chainingSystem", "ignoreParentSettingsJSON", "showApplySelections"}

NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
DATES = {"date", "date_nanos"}
KEYWORDS = {"keyword", "constant_keyword", "boolean", "ip", "version"}
#: Which field types suit each way a field is used.
SUITABLE: dict[str, set[str] | None] = {
    "date_histogram": DATES,
    "time_field": DATES,
    "terms": KEYWORDS | NUMERIC,
    "options_list": KEYWORDS | NUMERIC,
    "term": KEYWORDS | NUMERIC | DATES,
    "range": NUMERIC,
    "average": NUMERIC, "sum": NUMERIC, "min": NUMERIC | DATES, "max": NUMERIC | DATES,
    "median": NUMERIC, "percentile": NUMERIC, "standard_deviation": NUMERIC,
    "unique_count": KEYWORDS | NUMERIC | DATES,
    "last_value": KEYWORDS | NUMERIC | DATES,
    "sort": KEYWORDS | NUMERIC | DATES,
    "column": None,  # Discover shows any mapped field
    "kql": None,
}
_KQL_FIELD = re.compile(r'(?:^|\(|\s)(?!(?:and|or|not)\b)([A-Za-z_@][\w.@-]*)\s*:')
_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"')


def kql_fields(query: str) -> list[str]:
    """Field names a KQL query names (quoted values removed first)."""
    return _KQL_FIELD.findall(_QUOTED.sub('""', query))


def dsl_fields(query: Any) -> list[str]:
    """Field names in leaf queries of a Query DSL body (term/terms/match/range/exists...)."""
    found: list[str] = []
    if isinstance(query, dict):
        for key, value in query.items():
            if key in {"term", "terms", "match", "match_phrase", "range", "prefix", "wildcard"} and isinstance(value, dict):
                found += [k for k in value if k != "boost"]
            elif key == "exists" and isinstance(value, dict):
                found.append(value["field"])
            else:
                found += dsl_fields(value)
    elif isinstance(query, list):
        for item in query:
            found += dsl_fields(item)
    return found


@dataclass(frozen=True)
class FieldUse:
    where: str        # object / panel, for the message
    data_view: str    # data view id
    field: str
    operation: str    # a key of SUITABLE


def _parse(where: str, text: Any, problems: list[str]) -> Any:
    if not isinstance(text, str):
        problems.append(f"{where}: expected a JSON string, found {type(text).__name__}")
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        problems.append(f"{where}: does not parse as JSON ({e})")
        return None


def check_envelopes(objects: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for o in objects:
        where = f"{o.get('type')}/{o.get('id')}"
        if set(o) != EXPORT_KEYS:
            problems.append(f"{where}: export keys {sorted(o)} != {sorted(EXPORT_KEYS)}")
            continue
        if o["id"] in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(o["id"])
        if o["type"] not in TYPE_MIGRATION_VERSIONS:
            problems.append(f"{where}: unexpected type")
            continue
        if o["coreMigrationVersion"] != CORE_MIGRATION_VERSION or o["typeMigrationVersion"] != TYPE_MIGRATION_VERSIONS[o["type"]]:
            problems.append(f"{where}: migration versions differ from the ones this Kibana shape belongs to")
        extra = set(o["attributes"]) - ALLOWED_ATTRIBUTES[o["type"]]
        if extra:
            problems.append(f"{where}: attributes not in the {o['type']} schema: {sorted(extra)}")
        if o["type"] == "dashboard":
            extra = set(o["attributes"].get("controlGroupInput", {})) - CONTROL_GROUP_KEYS
            if extra:
                problems.append(f"{where}: controlGroupInput keys not in the schema: {sorted(extra)}")
    return problems


def check_references(objects: list[dict[str, Any]]) -> list[str]:
    """Every reference points at an object in the file; names are unique and all are used."""
    problems: list[str] = []
    present = {(o["type"], o["id"]) for o in objects}
    for o in objects:
        where = f"{o['type']}/{o['id']}"
        names = [r["name"] for r in o["references"]]
        if len(names) != len(set(names)):
            problems.append(f"{where}: duplicate reference names")
        for r in o["references"]:
            if (r["type"], r["id"]) not in present:
                problems.append(f"{where}: reference {r['name']!r} -> {r['type']}/{r['id']} does not resolve")
        needed = set(_reference_names_used(o, problems))
        missing, unused = needed - set(names), set(names) - needed
        if missing:
            problems.append(f"{where}: uses references it does not carry: {sorted(missing)}")
        if unused:
            problems.append(f"{where}: carries references nothing uses: {sorted(unused)}")
    return problems


def _reference_names_used(o: dict[str, Any], problems: list[str]) -> Iterator[str]:
    where = f"{o['type']}/{o['id']}"
    attrs = o["attributes"]
    source = attrs.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
    if source is not None:
        parsed = _parse(f"{where} searchSourceJSON", source, problems) or {}
        if "indexRefName" in parsed:
            yield parsed["indexRefName"]
        for f in parsed.get("filter", []):
            if "indexRefName" in f.get("meta", {}):
                yield f["meta"]["indexRefName"]
    if o["type"] == "dashboard":
        for panel in _parse(f"{where} panelsJSON", attrs.get("panelsJSON", "[]"), problems) or []:
            lens_attrs = panel.get("embeddableConfig", {}).get("attributes", {})
            for r in lens_attrs.get("references", []):
                yield f"{panel['panelIndex']}:{r['name']}"
        group = attrs.get("controlGroupInput", {})
        for cid in (_parse(f"{where} controlGroupInput.panelsJSON", group.get("panelsJSON", "{}"), problems) or {}):
            yield f"controlGroup_{cid}:optionsListDataView"


def check_json_strings(objects: list[dict[str, Any]]) -> list[str]:
    """Every JSON-in-a-string attribute parses."""
    problems: list[str] = []
    for o in objects:
        where = f"{o['type']}/{o['id']}"
        a = o["attributes"]
        strings = {k: v for k, v in a.items() if k.endswith("JSON")}
        if o["type"] == "index-pattern":
            strings |= {k: a[k] for k in ("fieldAttrs", "fieldFormatMap", "runtimeFieldMap", "sourceFilters", "fields") if k in a}
        if "kibanaSavedObjectMeta" in a:
            strings["searchSourceJSON"] = a["kibanaSavedObjectMeta"].get("searchSourceJSON")
        for k, v in a.get("controlGroupInput", {}).items():
            if k.endswith("JSON"):
                strings[f"controlGroupInput.{k}"] = v
        for key, text in strings.items():
            _parse(f"{where} {key}", text, problems)
    return problems


def check_grid(objects: list[dict[str, Any]]) -> list[str]:
    """Panels fit the 48-column grid, have unique ids and do not overlap."""
    problems: list[str] = []
    for o in (o for o in objects if o["type"] == "dashboard"):
        panels = json.loads(o["attributes"]["panelsJSON"])
        cells: dict[tuple[int, int], str] = {}
        ids = [p["panelIndex"] for p in panels]
        if len(ids) != len(set(ids)):
            problems.append(f"dashboard/{o['id']}: duplicate panelIndex")
        for p in panels:
            g, pid = p["gridData"], p["panelIndex"]
            where = f"dashboard/{o['id']} panel {p.get('title', pid)!r}"
            if g.get("i") != pid:
                problems.append(f"{where}: gridData.i != panelIndex")
            if g["x"] < 0 or g["y"] < 0 or g["w"] < 1 or g["h"] < 1 or g["x"] + g["w"] > GRID_COLUMNS:
                problems.append(f"{where}: {g} does not fit the {GRID_COLUMNS}-column grid")
                continue
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in cells:
                        problems.append(f"{where}: overlaps panel {cells[(x, y)]!r} at ({x},{y})")
                        break
                    cells[(x, y)] = p.get("title", pid)
                else:
                    continue
                break
    return problems


def field_uses(objects: list[dict[str, Any]]) -> list[FieldUse]:
    """Every (data view, field, operation) the objects name."""
    uses: list[FieldUse] = []
    for o in objects:
        where = f"{o['type']}/{o['id']}"
        a = o["attributes"]
        refs = {r["name"]: r["id"] for r in o["references"]}
        if o["type"] == "index-pattern":
            if a.get("timeFieldName"):
                uses.append(FieldUse(where, o["id"], a["timeFieldName"], "time_field"))
        elif o["type"] == "search":
            source = json.loads(a["kibanaSavedObjectMeta"]["searchSourceJSON"])
            view = refs.get(source.get("indexRefName", ""), "")
            uses += [FieldUse(where, view, c, "column") for c in a.get("columns", [])]
            uses += [FieldUse(where, view, s[0], "sort") for s in a.get("sort", [])]
            uses += [FieldUse(where, view, f, "kql") for f in kql_fields(source["query"]["query"])]
            if a.get("breakdownField"):
                uses.append(FieldUse(where, view, a["breakdownField"], "terms"))
        elif o["type"] == "dashboard":
            source = json.loads(a["kibanaSavedObjectMeta"]["searchSourceJSON"])
            for f in source.get("filter", []):
                view = refs.get(f["meta"].get("indexRefName", ""), "")
                uses += [FieldUse(f"{where} filter", view, name, "term") for name in dsl_fields(f["query"])]
            for panel in json.loads(a["panelsJSON"]):
                uses += _lens_uses(f"{where} panel {panel.get('title')!r}", panel, refs)
            group = a.get("controlGroupInput", {})
            for cid, control in json.loads(group.get("panelsJSON", "{}")).items():
                view = refs.get(f"controlGroup_{cid}:optionsListDataView", "")
                uses.append(FieldUse(f"{where} control {cid}", view, control["explicitInput"]["fieldName"], "options_list"))
    return uses


def _lens_uses(where: str, panel: dict[str, Any], dashboard_refs: dict[str, str]) -> list[FieldUse]:
    attrs = panel["embeddableConfig"]["attributes"]
    state = attrs["state"]
    uses: list[FieldUse] = []
    for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
        view = dashboard_refs.get(f"{panel['panelIndex']}:indexpattern-datasource-layer-{layer_id}", "")
        uses += [FieldUse(where, view, f, "kql") for f in kql_fields(state["query"]["query"])]
        for col in layer["columns"].values():
            op = col["operationType"]
            if col.get("sourceField") and col["sourceField"] != "___records___":
                uses.append(FieldUse(where, view, col["sourceField"], op))
            params = col.get("params", {})
            uses += [FieldUse(where, view, f, op) for f in params.get("secondaryFields", [])]
            if "sortField" in params:
                uses.append(FieldUse(where, view, params["sortField"], "sort"))
            if "filter" in col:
                uses += [FieldUse(where, view, f, "kql") for f in kql_fields(col["filter"]["query"])]
    return uses


def check_fields(objects: list[dict[str, Any]], mappings: Mappings) -> list[str]:
    """Every field named exists in its data view's mapping with a type that suits its use."""
    problems: list[str] = []
    patterns = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    for use in field_uses(objects):
        if not use.data_view:
            continue  # a missing reference; check_references reports it
        pattern = patterns.get(use.data_view)
        if pattern is None:
            problems.append(f"{use.where}: data view {use.data_view!r} is not in the file")
            continue
        try:
            typ = mappings.for_pattern(pattern).type_of(use.field)
        except KeyError as e:
            problems.append(f"{use.where}: {e.args[0]}")
            continue
        if typ is None:
            problems.append(f"{use.where}: field {use.field!r} is not mapped in {pattern}")
            continue
        suitable = SUITABLE[use.operation]
        if suitable is not None and typ not in suitable:
            problems.append(f"{use.where}: {use.operation} on {use.field!r}, which is {typ} in {pattern}")
    return problems


def check_all(objects: list[dict[str, Any]], mappings: Mappings) -> list[str]:
    problems = check_envelopes(objects) + check_json_strings(objects)
    if problems:  # the checks below assume well-formed envelopes and JSON
        return problems
    return check_references(objects) + check_grid(objects) + check_fields(objects, mappings)
