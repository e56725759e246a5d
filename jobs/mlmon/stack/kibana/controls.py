"""Dashboard controls: options lists that filter every panel by a field's value.

Stored in ``controlGroupInput.panelsJSON``; each control's data view is a
dashboard reference named ``controlGroup_<control id>:optionsListDataView``
(the name Kibana's control-group persistence resolves on load).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlmon.stack.kibana.saved_objects import Reference, compact_json, stable_id


@dataclass(frozen=True)
class OptionsList:
    field: str
    title: str
    data_view_id: str
    single_select: bool = False


def control_group(dashboard_key: str, controls: tuple[OptionsList, ...]) -> tuple[dict[str, Any], list[Reference]]:
    """``controlGroupInput`` attributes and the references its controls need."""
    panels: dict[str, Any] = {}
    refs: list[Reference] = []
    for order, c in enumerate(controls):
        cid = stable_id(dashboard_key, "control", c.field)
        panels[cid] = {
            "type": "optionsListControl", "order": order, "grow": True, "width": "medium",
            "explicitInput": {
                "id": cid, "fieldName": c.field, "title": c.title, "searchTechnique": "prefix",
                "selectedOptions": [], "singleSelect": c.single_select, "exclude": False,
                "existsSelected": False, "sort": {"by": "_count", "direction": "desc"}, "enhancements": {},
            },
        }
        refs.append(Reference(f"controlGroup_{cid}:optionsListDataView", "index-pattern", c.data_view_id))
    attrs = {
        # Hierarchical: a version control offers only versions of the chosen model.
        "chainingSystem": "HIERARCHICAL",
        "controlStyle": "oneLine",
        "ignoreParentSettingsJSON": compact_json(
            {"ignoreFilters": False, "ignoreQuery": False, "ignoreTimerange": False, "ignoreValidations": False}),
        "panelsJSON": compact_json(panels),
        "showApplySelections": False,
    }
    return attrs, refs
