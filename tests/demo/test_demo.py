"""The end-to-end demo finds what was injected, and nothing else, through the whole embedded pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmon.demo.run import DemoResult, run_demo, summary
from mlmon.demo.traffic import DRIFTED_CATEGORICAL, DRIFTED_NUMERIC


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("demo") / "out", days=4, per_day=1400, drift_day=2, seed=11)


def _fired(result: DemoResult, family: str) -> set[str]:
    return {str(a["metric"]["feature"] or a["metric"]["name"]) for a in result.alerts
            if a["alert"]["action"] in ("fired", "escalated") and a["metric"]["family"] == family}


def test_every_event_is_ingested_and_nothing_dead_lettered(demo: DemoResult) -> None:
    assert demo.dead_letters == 0
    assert demo.ingested["prediction"] == demo.traffic.predictions
    assert demo.ingested["feedback"] == demo.traffic.feedback
    assert demo.ingested["explanation"] == demo.traffic.explanations


def test_injected_drift_is_alerted_and_nothing_else(demo: DemoResult) -> None:
    drifted = _fired(demo, "drift")
    assert set(DRIFTED_NUMERIC) | set(DRIFTED_CATEGORICAL) <= drifted
    assert drifted <= set(DRIFTED_NUMERIC) | set(DRIFTED_CATEGORICAL) | {"drifted_fields_share"}


def test_the_sensor_fault_shows_as_a_performance_drop_and_a_prediction_drift(demo: DemoResult) -> None:
    assert _fired(demo, "prediction_drift")
    assert "accuracy" in _fired(demo, "performance") or "f1" in _fired(demo, "performance")


def test_report_and_summary_are_written(demo: DemoResult) -> None:
    html = demo.report.read_text(encoding="utf-8")
    assert "What drifted" in html and "Performance" in html  # rendering: tests/report in Chromium
    text = summary(demo)
    assert "alerts fired" in text and str(demo.report.resolve()) in text
    assert Path(demo.store).exists()


def test_the_summary_says_how_to_look_further_and_its_commands_work(demo: DemoResult) -> None:
    from tests.cli.helpers import mlmon

    [status] = [line for line in summary(demo).splitlines() if line.startswith("job health: ")]
    result = mlmon(status.removeprefix("job health: mlmon ").split())
    assert result.code == 0, result.err
    assert {"drift", "performance", "explainability", "fairness"} <= {line.split()[1] for line in
                                                                       result.out.splitlines()[1:]}
    assert f"mlmon serve-metrics --store duckdb:///{demo.store.resolve()}" in summary(demo)


def test_the_compose_jobs_config_is_valid() -> None:
    from mlmon.config.model import load
    from tests.support import REPO

    config = load(REPO / "docker" / "mlmon.yaml")
    assert [m.name for m in config.models] == ["cancer-screen"]
    assert "performance" in config.models[0].sections
