"""The saved-object envelope, exactly as Kibana 9.x's export API writes it.

An exported object is one JSON line: ``attributes``, ``coreMigrationVersion``,
``id``, ``managed``, ``references``, ``type``, ``typeMigrationVersion``. Kibana
migrates an imported object forward from the ``typeMigrationVersion`` it
declares and refuses one that declares a version newer than it knows, so each
type below declares the *oldest* version whose shape we write: any Kibana at
least :data:`MIN_KIBANA_VERSION` imports the file.

Server-assigned fields (``created_at``, ``updated_at``, ``version``,
``namespaces``) are left out: the import API sets them, and leaving them out
keeps the committed file byte-stable.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

ObjectType = Literal["index-pattern", "search", "dashboard"]

#: Core's migration version; frozen at 8.8.0 since core moved to model versions.
CORE_MIGRATION_VERSION = "8.8.0"
#: Per type: the model version of the shape we write ("10.N.0" = model version N).
#: Matched against Kibana's own type registrations (dashboard model versions 1-2:
#: controlGroupInput.showApplySelections; search model versions 1-5: flat,
#: pre-"tabs" Discover session) and against a real 8.17.1 export.
TYPE_MIGRATION_VERSIONS: dict[ObjectType, str] = {
    "index-pattern": "8.0.0",
    "search": "10.5.0",
    "dashboard": "10.2.0",
}
#: The oldest Kibana that knows every version above (the export we matched was 8.17.1).
MIN_KIBANA_VERSION = "8.17.0"

#: Namespace of the deterministic ids of panels, layers and columns.
_ID_NAMESPACE = uuid.UUID("6f1c1e4e-9d1b-4c52-a0c8-6d6c6f6e6d6c")


def stable_id(*parts: str) -> str:
    """A UUID derived from readable parts: regenerating never changes ids."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class Reference:
    """A pointer from one saved object to another, resolved by Kibana on import."""

    name: str
    type: ObjectType
    id: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "type": self.type}


@dataclass(frozen=True)
class SavedObject:
    type: ObjectType
    id: str
    attributes: dict[str, Any]
    references: tuple[Reference, ...] = field(default_factory=tuple)

    def to_export(self) -> dict[str, Any]:
        """The object as one line of a Kibana export (keys sorted, as Kibana writes them)."""
        return {
            "attributes": self.attributes,
            "coreMigrationVersion": CORE_MIGRATION_VERSION,
            "id": self.id,
            "managed": False,
            "references": [r.to_json() for r in self.references],
            "type": self.type,
            "typeMigrationVersion": TYPE_MIGRATION_VERSIONS[self.type],
        }


def compact_json(value: Any) -> str:
    """JSON in a string attribute (panelsJSON, searchSourceJSON...), as Kibana stores it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_ndjson(objects: list[SavedObject]) -> str:
    """The export file: one object per line, in the given (import) order."""
    return "".join(json.dumps(o.to_export(), ensure_ascii=False, sort_keys=False) + "\n" for o in objects)
