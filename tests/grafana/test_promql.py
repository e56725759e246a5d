"""Every PromQL query of the dashboards parses (Prometheus' own parser, via promtool)."""

from __future__ import annotations

from typing import Any

from mlmon.stack.grafana import promql
from tests.grafana.promql_check import grafana_to_promql, promql_errors


def _queries(dashboards: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    out = []
    for name, dashboard in dashboards:
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "prometheus":
                    out.append((f"{name} {panel['title']!r} {target['refId']}", target["expr"]))
    return out


def test_every_dashboard_query_parses_and_a_broken_one_is_reported(
        generated: list[tuple[str, dict[str, Any]]]) -> None:
    queries = _queries(generated)
    assert len(queries) > 30
    broken = ("broken", f"sum(rate({promql.selector(promql.PREDICTIONS)}[$__rate_interval])")
    errors = promql_errors(queries + [broken])
    assert len(errors) == 1 and errors[0].startswith("broken: "), "\n".join(errors)
    assert "unclosed left parenthesis" in errors[0]


def test_grafana_variables_are_replaced_longest_first() -> None:
    assert grafana_to_promql('x{model=~"$model", model_version=~"$model_version"}[$__rate_interval]') == \
        'x{model=~"m", model_version=~"v1"}[1m]'
