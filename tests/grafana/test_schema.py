"""Every dashboard type-checks against @grafana/schema, and the check catches misspellings."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from tests.grafana.schema_check import schema_version, typecheck_dashboards
from tests.support import REPO

Dashboards = list[tuple[str, dict[str, Any]]]


def _first(dashboard: dict[str, Any], panel_type: str) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["type"] == panel_type)


def test_generated_dashboards_pass_and_each_misspelling_fails_in_one_tsc_run(dashboards: Dashboards) -> None:
    good = dashboards
    by_uid = {d["uid"]: d for _, d in dashboards}
    broken: Dashboards = []

    def breaking(label: str, uid: str) -> dict[str, Any]:
        dashboard = copy.deepcopy(by_uid[uid])
        broken.append((label, dashboard))
        return dashboard

    breaking("dashboard field", "mlmon-drift")["timezon"] = "utc"
    breaking("panel option", "mlmon-service")
    _first(broken[-1][1], "timeseries")["options"]["legend"]["placment"] = "bottom"
    breaking("custom field config", "mlmon-service")
    _first(broken[-1][1], "timeseries")["fieldConfig"]["defaults"]["custom"]["lineWidht"] = 2
    breaking("enum value", "mlmon-drift")
    _first(broken[-1][1], "state-timeline")["options"]["showValue"] = "sometimes"
    breaking("required option", "mlmon-jobs")
    del _first(broken[-1][1], "stat")["options"]["reduceOptions"]
    breaking("prometheus query", "mlmon-drift")
    _first(broken[-1][1], "timeseries")["targets"][0]["legendFormt"] = "{{feature}}"
    breaking("elasticsearch query", "mlmon-performance")
    es_panel = next(p for p in broken[-1][1]["panels"] if p.get("datasource", {}).get("type") == "elasticsearch")
    es_panel["targets"][0]["bucketAggs"][0]["settings"]["sise"] = "10"
    breaking("row panel", "mlmon-jobs")["panels"][0]["colapsed"] = False
    breaking("variable", "mlmon-service")["templating"]["list"][0]["multy"] = True

    errors = typecheck_dashboards(good + broken)
    joined = "\n".join(errors)
    labels = [label for label, _ in broken]
    # Errors name the broken copy (as "<label>, line N" or "<label> panel ..."), never a generated dashboard.
    assert all(any(e.startswith((f"{lb},", f"{lb} panel ")) for lb in labels) for e in errors), joined
    failed = {lb for lb in labels if any(e.startswith((f"{lb},", f"{lb} panel ")) for e in errors)}
    assert failed == set(labels), joined
    for key in ("timezon", "placment", "lineWidht", "sometimes", "reduceOptions", "legendFormt", "sise",
                "colapsed", "multy"):
        assert key in joined, f"no error names {key!r}:\n{joined}"


def test_the_schema_is_pinned_to_the_grafana_release_compose_runs() -> None:
    version = schema_version()
    # The compose snippet in the report/README pins grafana/grafana to the same release.
    assert re.fullmatch(r"1[12]\.\d+\.\d+", version), version
    package = (REPO / "typecheck" / "package.json").read_text(encoding="utf-8")
    assert f'"@grafana/schema": "{version}"' in package, "pin an exact version (npm install --save-exact)"
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    if "grafana/grafana:" in compose:
        assert f"grafana/grafana:{version}" in compose, "docker-compose.yml runs another Grafana than the types"


def test_types_file_exists() -> None:
    assert (Path(REPO) / "typecheck" / "grafana" / "types.ts").is_file()
