"""grafana/ is what the generator writes; --check notices a stale, missing or left-over file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlmon.stack.grafana import build, datasources
from mlmon.stack.grafana.__main__ import main


def test_committed_files_equal_the_generator_output() -> None:
    assert build.stale() == [], "run: python -m mlmon.stack.grafana"


def test_check_mode_reports_stale_missing_and_left_over_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(build, "OUTPUT", tmp_path)
    assert main([]) == 0
    assert main(["--check"]) == 0
    (tmp_path / "dashboards" / "mlmon-drift.json").write_text("{}", encoding="utf-8")
    (tmp_path / "provisioning" / "datasources" / "mlmon.yml").unlink()
    (tmp_path / "dashboards" / "old.json").write_text("{}", encoding="utf-8")
    capsys.readouterr()
    assert main(["--check"]) == 1
    err = capsys.readouterr().err
    for rel in ("dashboards/mlmon-drift.json", "provisioning/datasources/mlmon.yml", "dashboards/old.json"):
        assert rel in err
    assert main([]) == 0
    assert not (tmp_path / "dashboards" / "old.json").exists(), "a dashboard no longer generated is removed"
    assert main(["--check"]) == 0


def test_dashboards_reference_the_provisioned_datasource_uids() -> None:
    provisioned = yaml.safe_load((build.OUTPUT / "provisioning/datasources/mlmon.yml").read_text(encoding="utf-8"))
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    assert uids == {datasources.PROMETHEUS.uid: "prometheus", datasources.ELASTICSEARCH.uid: "elasticsearch"}
    used: set[tuple[str, str]] = set()
    for path in sorted((build.OUTPUT / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                used.add((target["datasource"]["uid"], target["datasource"]["type"]))
    assert used == set(uids.items()), "every datasource is used, and only provisioned ones"


def test_provider_loads_the_mounted_dashboards_folder() -> None:
    provider = yaml.safe_load((build.OUTPUT / "provisioning/dashboards/mlmon.yml").read_text(encoding="utf-8"))
    [entry] = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"] == datasources.DASHBOARDS_MOUNT
    assert entry["allowUiUpdates"] is False


def test_every_dashboard_links_to_the_others_and_has_model_variables(
        generated: list[tuple[str, dict[str, Any]]]) -> None:
    uids = [d["uid"] for _, d in generated]
    assert len(uids) == len(set(uids)) == 5
    for name, dashboard in generated:
        assert name == f"{dashboard['uid']}.json"
        [link] = dashboard["links"]
        assert link["type"] == "dashboards" and link["tags"] == dashboard["tags"] == ["mlmon"]
        assert link["includeVars"] and link["keepTime"], "following a link keeps the model and the time range"
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert names[0] == "model"
        assert names == ["model"] if dashboard["uid"] == "mlmon-jobs" else names == ["model", "model_version"]
