"""The offline checks pass on the generated dashboards and catch what the types cannot."""

from __future__ import annotations

from typing import Any

import pytest

from mlmon.stack.grafana import build, checks


def test_generated_dashboards_have_no_problems() -> None:
    assert build.problems() == []


def _panel(dashboards: list[tuple[str, dict[str, Any]]], uid: str, source: str) -> dict[str, Any]:
    dashboard = next(d for _, d in dashboards if d["uid"] == uid)
    return next(p for p in dashboard["panels"] if p.get("datasource", {}).get("type") == source)


@pytest.mark.parametrize("uid, source, change, message", [
    ("mlmon-drift", "prometheus", lambda t: t.update(expr=t["expr"].replace("mlmon_metric_severity", "mlmon_severity")),
     "series mlmon_severity is not one mlmon exports"),
    ("mlmon-drift", "prometheus", lambda t: t.update(expr=t["expr"].replace("$model_version", "$version")),
     "$version is not a dashboard variable"),
    ("mlmon-performance", "elasticsearch", lambda t: t.update(query=t["query"] + " AND metric.familly:x"),
     "field 'metric.familly' is not a metric document field"),
    ("mlmon-performance", "elasticsearch", lambda t: t["bucketAggs"][0].update(field="metric.nam"),
     "field 'metric.nam' is not a metric document field"),
    ("mlmon-service", "prometheus", lambda t: t.update(datasource={"type": "prometheus", "uid": "other"}),
     "is not a provisioned one"),
])
def test_a_broken_query_is_reported(dashboards: list[tuple[str, dict[str, Any]]], uid: str, source: str,
                                    change: Any, message: str) -> None:
    panel = _panel(dashboards, uid, source)
    change(panel["targets"][0])
    dashboard = next(d for _, d in dashboards if d["uid"] == uid)
    problems = checks.dashboard_problems(dashboard)
    assert len(problems) == 1 and message in problems[0], problems
    assert repr(panel["title"]) in problems[0]
