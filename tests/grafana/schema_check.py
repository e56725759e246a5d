"""Type-check Grafana dashboard JSON against ``@grafana/schema`` with ``tsc --strict``.

Grafana cannot run on the development and CI machines, so each generated dashboard is
rendered as typed TypeScript object literals (``typecheck/grafana/types.ts``) and
compiled: the dashboard against the schema's ``Dashboard``, each row against
``RowPanel``, and each panel against its own plugin's generated ``Options`` and
``FieldConfig`` (``fieldConfig.defaults.custom``) and its datasource's query type. A
misspelled or misplaced key, a wrong value type, an unknown enum value or a missing
required option fails, with the label of the dashboard or panel and the offending line.

Batch every dashboard of a test into ONE call: each call is one tsc run of about 4 s.
Without ``typecheck/node_modules`` (``npm ci --prefix typecheck``, run by ``make test``)
the check fails with that command; it never silently passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.estypes import TYPECHECK_DIR, compile_typescript

_TSC = TYPECHECK_DIR / "node_modules" / "typescript" / "bin" / "tsc"
_SCHEMA = TYPECHECK_DIR / "node_modules" / "@grafana" / "schema" / "package.json"
_PANELS = "__PANELS__"


@dataclass(frozen=True)
class _Span:
    label: str
    first_line: int  # 1-based, the `export const` line
    last_line: int


def _require_node_modules() -> None:
    if not (_TSC.is_file() and _SCHEMA.is_file()):
        raise AssertionError(f"@grafana/schema is not installed in {TYPECHECK_DIR}/node_modules: "
                             "run `npm ci --prefix typecheck` (make test does it)")


def schema_version() -> str:
    """The pinned @grafana/schema version (= the Grafana release the types describe)."""
    _require_node_modules()
    return str(json.loads(_SCHEMA.read_text())["version"])


def _panel_type(panel: dict[str, Any]) -> str:
    plugin = json.dumps(panel.get("type"))
    if panel.get("type") == "row":
        return "RowPanel"
    source = panel.get("datasource")
    if isinstance(source, dict) and "type" in source:
        return f"TypedPanel<{plugin}, {json.dumps(source['type'])}>"
    return f"StaticPanel<{plugin}>"


def render_typescript(dashboards: list[tuple[str, dict[str, Any]]]) -> tuple[str, list[_Span]]:
    """The .ts source typing every dashboard and panel, and where each literal sits."""
    lines = ["import type { Dashboard, RowPanel, StaticPanel, TypedPanel } from '../grafana/types';", ""]
    spans: list[_Span] = []

    def emit(label: str, name: str, ts_type: str, literal: str) -> None:
        block = f"// {json.dumps(label)[1:-1]}\nexport const {name}: {ts_type} = {literal};\n"
        first = len(lines) + 2
        lines.extend(block.splitlines())
        spans.append(_Span(label, first, len(lines)))

    for d, (label, dashboard) in enumerate(dashboards):
        names = []
        for p, panel in enumerate(dashboard.get("panels", [])):
            name = f"d{d}p{p}"
            names.append(name)
            emit(f"{label} panel {p} {panel.get('title', '')!r} ({panel.get('type')})", name, _panel_type(panel),
                 json.dumps(panel, indent=2, ensure_ascii=False, allow_nan=False))
        literal = json.dumps({**dashboard, "panels": _PANELS}, indent=2, ensure_ascii=False, allow_nan=False)
        emit(label, f"d{d}", "Dashboard", literal.replace(json.dumps(_PANELS), f"[{', '.join(names)}]"))
    return "\n".join(lines) + "\n", spans


def typecheck_dashboards(dashboards: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Run tsc once over all (label, dashboard JSON) pairs; one message per error (empty: all pass)."""
    if not dashboards:
        return []
    labels = [label for label, _ in dashboards]
    if len(set(labels)) != len(labels):
        raise AssertionError(f"labels must be unique to map errors back: {labels}")
    _require_node_modules()
    source, spans = render_typescript(dashboards)
    return compile_typescript(source, [(f"{s.label},", s.first_line, s.last_line) for s in spans],
                              file_name="dashboards.ts", extends="../grafana/tsconfig.json")


def assert_dashboards_typecheck(dashboards: list[tuple[str, dict[str, Any]]]) -> None:
    errors = typecheck_dashboards(dashboards)
    if errors:
        raise AssertionError(f"{len(errors)} Grafana dashboard type error(s):\n" + "\n".join(errors))
