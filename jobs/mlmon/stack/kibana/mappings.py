"""Field types the saved objects are checked against, read from the index templates.

The templates under ``elasticsearch/`` are what Elasticsearch will map, so they
are the authority: for a data view's pattern we pick the highest-priority
index template that matches it, merge its component templates in
``composed_of`` order and then its own mappings (Elasticsearch's composition
order), and flatten properties, multi-fields, dynamic templates and flattened
fields into dotted names.

Until the templates exist, :func:`load` falls back to the sources they are
derived from (the event contract and ``METRIC_FIELDS``) and says so in
:attr:`Mappings.source`.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmon.core.documents import METRIC_FIELDS
from mlmon.core.assets import ELASTICSEARCH
from mlmon_logging import contract


@dataclass(frozen=True)
class FieldTypes:
    """Dotted field name -> Elasticsearch type, plus the patterns of dynamic templates."""

    static: Mapping[str, str]
    #: (path glob, type) pairs from dynamic templates, in template order.
    dynamic: tuple[tuple[str, str], ...] = ()

    def type_of(self, name: str) -> str | None:
        if name in self.static:
            return self.static[name]
        # A key inside a flattened field is searchable and aggregatable as a keyword.
        parts = name.split(".")
        for i in range(1, len(parts)):
            if self.static.get(".".join(parts[:i])) == "flattened":
                return "keyword"
        for glob, typ in self.dynamic:
            if fnmatch.fnmatchcase(name, glob):
                return typ
        return None


@dataclass(frozen=True)
class Mappings:
    by_pattern: dict[str, FieldTypes] = field(default_factory=dict)
    #: "templates" (read from elasticsearch/) or "contract" (fallback before templates exist).
    source: str = "templates"

    def for_pattern(self, pattern: str) -> FieldTypes:
        try:
            return self.by_pattern[pattern]
        except KeyError:
            raise KeyError(f"no index template maps {pattern!r} (known: {sorted(self.by_pattern)})") from None


def flatten_properties(properties: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"properties": {"b": {"type": "keyword"}}}}`` -> ``{"a.b": "keyword"}`` (multi-fields too)."""
    out: dict[str, str] = {}
    for key, spec in properties.items():
        name = f"{prefix}{key}"
        if "properties" in spec:
            out.update(flatten_properties(spec["properties"], f"{name}."))
            continue
        out[name] = spec.get("type", "object")
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{name}.{sub}"] = sub_spec.get("type", "keyword")
    # Aliases take the type of the field they point to.
    for name, typ in list(out.items()):
        if typ == "alias":
            target = _find_spec(properties, name[len(prefix):] if prefix else name)
            out[name] = out.get(str(target.get("path")), "alias") if target else "alias"
    return out


def _find_spec(properties: Mapping[str, Any], dotted: str) -> Mapping[str, Any] | None:
    node: Mapping[str, Any] | None = {"properties": properties}
    for part in dotted.split("."):
        if node is None or part not in node.get("properties", {}):
            return None
        node = node["properties"][part]
    return node


def _dynamic(templates: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for entry in templates:
        for spec in entry.values():
            typ = spec.get("mapping", {}).get("type")
            globs = spec.get("path_match") or spec.get("match")
            if not typ or not globs or typ.startswith("{"):
                continue
            for glob in [globs] if isinstance(globs, str) else globs:
                out.append((glob, typ))
    return out


def _read_json_dir(directory: Path) -> dict[str, dict[str, Any]]:
    if not directory.is_dir():
        return {}
    bodies: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        # Accept the GET-API wrapper shape too: {"index_template": {...}} / {"component_template": {...}}.
        bodies[path.stem] = body.get("index_template") or body.get("component_template") or body
    return bodies


def _candidates(pattern: str) -> list[str]:
    """Concrete index names a data view pattern stands for (for template matching)."""
    return [pattern.replace("*", fill) for fill in ("", "default", "-000001", "-default")]


def from_templates(root: Path, patterns: Iterable[str]) -> Mappings:
    index_templates = _read_json_dir(root / "index_templates")
    components = _read_json_dir(root / "component_templates")
    by_pattern: dict[str, FieldTypes] = {}
    for pattern in patterns:
        matching = [
            (body.get("priority", 0), name, body) for name, body in index_templates.items()
            if any(fnmatch.fnmatchcase(c, p) for c in _candidates(pattern) for p in body.get("index_patterns", []))
        ]
        if not matching:
            continue
        _prio, name, body = max(matching)
        static: dict[str, str] = {}
        dynamic: list[tuple[str, str]] = []
        for comp in body.get("composed_of", []):
            if comp not in components:
                raise ValueError(f"index template {name!r} is composed of {comp!r}, which is not in {root}")
        for mapping in [components[c].get("template", {}).get("mappings", {}) for c in body.get("composed_of", [])] + [
                body.get("template", {}).get("mappings", {})]:
            static.update(flatten_properties(mapping.get("properties", {})))
            static.update({k: v.get("type", "keyword") for k, v in mapping.get("runtime", {}).items()})
            # Later templates' dynamic templates take precedence (first match wins in Elasticsearch).
            dynamic = _dynamic(mapping.get("dynamic_templates", [])) + dynamic
        by_pattern[pattern] = FieldTypes(static, tuple(dynamic))
    return Mappings(by_pattern, "templates")


def from_contract(patterns: Mapping[str, str]) -> Mappings:
    """Fallback from the sources the templates derive from; ``patterns`` maps pattern -> kind."""
    by_pattern: dict[str, FieldTypes] = {}
    for pattern, kind in patterns.items():
        if kind == "metrics":
            by_pattern[pattern] = FieldTypes(dict(METRIC_FIELDS))
        elif kind == "alerts":
            from mlmon.core.alert_schema import ALERT_FIELDS

            by_pattern[pattern] = FieldTypes(dict(ALERT_FIELDS))
        elif kind == "deadletter":
            # The dead-letter fields the ingest issue specifies (ECS error.*, the original line).
            by_pattern[pattern] = FieldTypes({
                "@timestamp": "date", "event.dataset": "keyword", "event.ingested": "date",
                "error.type": "keyword", "error.message": "match_only_text", "event.original": "keyword",
                "log.file.path": "keyword", "log.offset": "long"})
        else:
            fields = {f.name: f.type for f in contract.fields_for(kind)}  # type: ignore[arg-type]
            dynamic = tuple((fam.prefix + "*", fam.type) for fam in contract.families_for(kind))  # type: ignore[arg-type]
            by_pattern[pattern] = FieldTypes(fields, dynamic)
    return Mappings(by_pattern, "contract")


def load(root: Path = ELASTICSEARCH) -> Mappings:
    """Mappings of every data view's pattern: from the templates when they exist."""
    from mlmon.stack.kibana import data_views as dv

    kinds = {dv.PREDICTIONS.pattern: "prediction", dv.FEEDBACK.pattern: "feedback",
             dv.EXPLANATIONS.pattern: "explanation", dv.DEAD_LETTERS.pattern: "deadletter",
             dv.METRICS.pattern: "metrics", dv.ALERTS.pattern: "alerts"}
    if any((root / "index_templates").glob("*.json")):
        return from_templates(root, kinds)
    return from_contract(kinds)
