"""The newest stored reference document (profile or attribution reference) of a model, as a search."""

from __future__ import annotations

from typing import Any


def latest_reference_query(model: str, version: str | None, reference_id: str | None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"term": {"mlmon.model.name": model}}]
    if version is not None:
        filters.append({"term": {"mlmon.model.version": version}})
    if reference_id is not None:
        filters.append({"term": {"reference.id": reference_id}})
    return {"size": 1, "query": {"bool": {"filter": filters}}, "sort": [{"reference.created_at": {"order": "desc"}}]}
