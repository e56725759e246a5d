"""The committed NDJSON is what the generator writes, and it passes every offline check."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlmon.stack.kibana import build, checks, dashboards, data_views, mappings
from mlmon.stack.kibana.__main__ import main
from mlmon.stack.kibana.saved_objects import MIN_KIBANA_VERSION
from mlmon.core.assets import ELASTICSEARCH
from tests.support import REPO


def test_committed_file_equals_generator_output() -> None:
    assert build.OUTPUT.read_text(encoding="utf-8") == build.render(), "run: python -m mlmon.stack.kibana"


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "mlmon.ndjson"
    stale.write_text(build.render().replace("mlmon: data drift", "old title"), encoding="utf-8")
    monkeypatch.setattr(build, "OUTPUT", stale)
    assert main(["--check"]) == 1
    assert main([]) == 0
    assert main(["--check"]) == 0


def test_committed_objects_pass_every_check(committed: list[dict[str, Any]], field_mappings: mappings.Mappings) -> None:
    assert checks.check_all(committed, field_mappings) == []


def test_mappings_are_read_from_the_index_templates_once_they_exist(field_mappings: mappings.Mappings) -> None:
    has_templates = any((ELASTICSEARCH / "index_templates").glob("*.json"))
    assert field_mappings.source == ("templates" if has_templates else "contract")
    for view in data_views.ALL:
        assert view.pattern in field_mappings.by_pattern, f"nothing maps {view.pattern}"


def test_export_lines_look_like_a_kibana_export(committed: list[dict[str, Any]]) -> None:
    for o in committed:
        assert list(o) == sorted(o), "Kibana writes keys sorted"
        assert o["managed"] is False
    types = [o["type"] for o in committed]
    # Import order: what is referenced comes first.
    assert types == sorted(types, key=["index-pattern", "search", "dashboard"].index)


def test_data_views_cover_every_store(committed: list[dict[str, Any]]) -> None:
    views = {o["attributes"]["title"]: o["attributes"]["timeFieldName"] for o in committed if o["type"] == "index-pattern"}
    assert views == {
        "logs-mlmon.prediction-*": "@timestamp", "logs-mlmon.feedback-*": "@timestamp",
        "logs-mlmon.explanation-*": "@timestamp", "logs-mlmon.deadletter-*": "@timestamp",
        "mlmon-metrics*": "@timestamp", "mlmon-alerts*": "@timestamp",
    }


def _dashboard(committed: list[dict[str, Any]], id_: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    d = next(o for o in committed if o["id"] == id_)
    panels = json.loads(d["attributes"]["panelsJSON"])
    controls = json.loads(d["attributes"]["controlGroupInput"]["panelsJSON"])
    return panels, controls


@pytest.mark.parametrize("id_", [d.id for d in dashboards.all_dashboards()])
def test_every_dashboard_has_model_controls(committed: list[dict[str, Any]], id_: str) -> None:
    _panels, controls = _dashboard(committed, id_)
    fields = [c["explicitInput"]["fieldName"] for c in sorted(controls.values(), key=lambda c: c["order"])]
    assert fields[:2] == ["mlmon.model.name", "mlmon.model.version"]
    if id_ != "mlmon-dashboard-overview":
        assert fields[2:] == ["metric.segment.field", "metric.segment.value"]


def _visual_types(panels: list[dict[str, Any]]) -> list[str]:
    return [p["embeddableConfig"]["attributes"]["visualizationType"] for p in panels]


def test_drift_dashboard_has_time_series_worst_table_and_status_heatmap(committed: list[dict[str, Any]]) -> None:
    panels, _ = _dashboard(committed, "mlmon-dashboard-drift")
    assert {"lnsXY", "lnsDatatable", "lnsHeatmap"} <= set(_visual_types(panels))
    for p in panels:
        assert 'metric.family : "' in p["embeddableConfig"]["attributes"]["state"]["query"]["query"]


def test_performance_over_time_splits_provisional_from_final(committed: list[dict[str, Any]]) -> None:
    panels, _ = _dashboard(committed, "mlmon-dashboard-performance")
    over_time = next(p for p in panels if p["title"].startswith("Performance over time"))
    layer = next(iter(over_time["embeddableConfig"]["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()))
    split = [c for c in layer["columns"].values() if c["operationType"] == "terms"]
    assert split and "metric.maturity" in split[0]["params"]["secondaryFields"]


def test_metric_dashboards_open_on_all_traffic(committed: list[dict[str, Any]]) -> None:
    for id_ in ("mlmon-dashboard-drift", "mlmon-dashboard-performance", "mlmon-dashboard-explainability"):
        d = next(o for o in committed if o["id"] == id_)
        source = json.loads(d["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert [f["query"] for f in source["filter"]] == [{"term": {"metric.segment.field": ""}}]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def test_the_pinned_kibana_imports_this_file() -> None:
    compose = REPO / "docker-compose.yml"
    if not compose.exists():
        pytest.skip("docker-compose.yml not written yet")
    text = compose.read_text(encoding="utf-8")
    env = REPO / ".env.example"
    env_text = env.read_text(encoding="utf-8") if env.exists() else ""
    match = re.search(r"kibana/kibana:([0-9.]+)", text) or re.search(r"(?m)^\s*(?:STACK|KIBANA)_VERSION=([0-9.]+)", env_text)
    assert match, "could not find the pinned Kibana version in docker-compose.yml / .env.example"
    pinned = _version(match.group(1))
    assert pinned[0] == 9
    assert pinned >= _version(MIN_KIBANA_VERSION)


def test_dashboard_filter_queries_typecheck(committed: list[dict[str, Any]]) -> None:
    """The Query DSL inside dashboard filter pills is a valid search query."""
    from tests.support.estypes import assert_bodies_typecheck

    items = []
    for o in (o for o in committed if o["type"] == "dashboard"):
        source = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        items += [("search", {"query": f["query"]}, f"{o['id']} filter {i}") for i, f in enumerate(source["filter"])]
    assert items
    assert_bodies_typecheck(items)
