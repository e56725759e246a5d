"""Every saved object mlmon ships, in import order (data views before what uses them)."""

from __future__ import annotations

from pathlib import Path

from mlmon.stack.kibana import dashboards, data_views, searches
from mlmon.stack.kibana.saved_objects import SavedObject, to_ndjson
from mlmon.core.assets import KIBANA

#: The one export file: a single file so one import call resolves every reference.
OUTPUT = KIBANA / "mlmon.ndjson"


def saved_objects() -> list[SavedObject]:
    return ([v.saved_object() for v in data_views.ALL]
            + [s.saved_object() for s in searches.ALL]
            + [d.saved_object() for d in dashboards.all_dashboards()])


def render() -> str:
    return to_ndjson(saved_objects())


def write(path: Path | None = None) -> bool:
    """Write the export file (default :data:`OUTPUT`); True when its content changed."""
    path = path or OUTPUT
    text = render()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
