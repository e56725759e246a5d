from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mlmon.config.model import ConfigError, load, parse


def test_shortest_config_gets_sensible_defaults() -> None:
    cfg = parse({"models": {"churn": None}})
    m = cfg.models[0]
    assert m.window == timedelta(hours=1) and m.drift.features == () and m.drift.prediction
    assert m.drift.policy.rule("wasserstein", "age").alert == 0.15


def test_per_feature_thresholds_override_model_ones() -> None:
    cfg = parse({"models": {"churn": {"window": "5m", "drift": {
        "thresholds": {"wasserstein": {"alert": 0.3}},
        "features": {"age": {"wasserstein": {"warning": 0.2, "alert": 0.5}}, "plan": None}}}}})
    pol = cfg.models[0].drift.policy
    assert cfg.models[0].window == timedelta(minutes=5)
    assert pol.rule("wasserstein", "age").alert == 0.5 and pol.rule("wasserstein", "plan").alert == 0.3
    assert pol.rule("wasserstein", "plan").source == "config"


@pytest.mark.parametrize(("raw", "key", "text"), [
    ({"models": {"churn": {"window": "soon"}}}, "models.churn.window", "duration"),
    ({"models": {"churn": {"drift": {"thresholds": {"wasserstien": {}}}}}}, "models.churn.drift.thresholds.wasserstien",
     "unknown metric"),
    ({"models": {"churn": {"drift": {"thresholds": {"psi": {"warning": 0.3, "alert": 0.1}}}}}},
     "models.churn.drift.thresholds.psi", "below warning"),
    ({"models": {"churn": {"drift": {"alpha": 2}}}}, "models.churn.drift.alpha", "between 0 and 1"),
    ({"models": {"churn": {"drfit": {}}}}, "models.churn.drfit", "unknown key"),
    ({"models": {}}, "models", "no models"),
])
def test_errors_name_the_file_and_the_key(raw: object, key: str, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(raw, "mlmon.yaml")
    assert str(err.value).startswith(f"mlmon.yaml: {key}: ") and text in str(err.value)


def test_other_sections_are_kept_for_their_jobs(tmp_path: Path) -> None:
    p = tmp_path / "mlmon.yaml"
    p.write_text("models:\n  churn:\n    performance: {task: classification, min_labelled: 100}\n")
    kept = load(p).models[0].sections["performance"]  # parsed by the performance job's own config
    assert getattr(kept, "min_labelled", None) == 100 or kept == {"task": "classification", "min_labelled": 100}
    p.write_text("models: [\n")
    with pytest.raises(ConfigError, match=str(p)):
        load(p)
