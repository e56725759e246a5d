"""The explainability / fairness sections of mlmon.yaml: defaults, overrides, errors that name file and key."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from mlmon.config import model as cfg
from mlmon.config.explainability import EXPLAINABILITY_DEFAULTS, FAIRNESS_DEFAULTS, ExplainabilityConfig, FairnessConfig, parse_explainability
from mlmon.config.model import explainability_config, fairness_config


def _model(**sections: Any) -> cfg.ModelConfig:
    return cfg.parse({"models": {"credit": sections}}, "mlmon.yaml").models[0]


def test_sections_are_parsed_by_the_registered_parsers_with_defaults() -> None:
    model = _model(explainability={}, fairness={"attributes": ["region"]})
    ex, fa = model.sections["explainability"], model.sections["fairness"]
    assert isinstance(ex, ExplainabilityConfig) and isinstance(fa, FairnessConfig)
    assert ex.thresholds == EXPLAINABILITY_DEFAULTS and ex.min_explanations == 100 and ex.reference is None
    assert fa.attributes == {"region": ()} and fa.positive_label == "1" and fa.min_group_size == 30
    assert fa.thresholds["disparate_impact_ratio"].threshold().status(0.79) == "alert"  # four-fifths rule
    assert fa.thresholds["disparate_impact_ratio"].threshold().status(0.85) == "warning"


def test_overrides() -> None:
    model = _model(
        explainability={"features": ["income"], "method": "shap", "top_k": 5, "alpha": 0.05,
                        "reference_window": {"from": "2025-01-01T00:00:00Z", "to": datetime(2025, 1, 2)},
                        "thresholds": {"ranking_ndcg": {"alert": 0.8}},
                        "permutation": {"model_path": "m.joblib", "repeats": 3, "scoring": "roc_auc"}},
        fairness={"attributes": {"region": ["urban", "rural"], "age_band": None}, "positive_label": True,
                  "min_group_size": 100, "thresholds": {"demographic_parity_difference": {"warning": 0.05}}})
    ex, fa = explainability_config(model), fairness_config(model)
    assert ex is not None and fa is not None
    assert ex.features == ("income",) and ex.method == "shap" and ex.top_k == 5
    assert ex.reference_window == (datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 2, tzinfo=timezone.utc))
    ndcg = ex.thresholds["ranking_ndcg"]
    assert (ndcg.warning, ndcg.alert, ndcg.direction, ndcg.source) == (0.95, 0.8, "below", "config")
    assert ex.permutation is not None and ex.permutation.repeats == 3 and ex.permutation.sample == 2000
    assert fa.attributes == {"region": ("urban", "rural"), "age_band": ()}
    assert fa.positive_label == "true"  # as the emitter logs booleans
    dpd = fa.thresholds["demographic_parity_difference"]
    assert (dpd.warning, dpd.alert) == (0.05, FAIRNESS_DEFAULTS["demographic_parity_difference"].alert)


@pytest.mark.parametrize("section, body, key, message", [
    ("explainability", {"tresholds": {}}, "explainability.tresholds", "unknown key"),
    ("explainability", {"thresholds": {"psi": {}}}, "explainability.thresholds.psi", "unknown metric"),
    ("explainability", {"thresholds": {"ranking_ndcg": {"warning": 0.8, "alert": 0.9}}},
     "explainability.thresholds.ranking_ndcg", "smaller is worse"),
    ("explainability", {"thresholds": {"attribution_drift": {"warning": 0.2, "alert": 0.1}}},
     "explainability.thresholds.attribution_drift", "larger is worse"),
    ("explainability", {"features": ["ok", "not.ok"]}, "explainability.features[1]", "not a feature name"),
    ("explainability", {"reference": "r", "reference_window": {"from": "2025-01-01", "to": "2025-01-02"}},
     "explainability.reference_window", "either reference or reference_window"),
    ("explainability", {"reference_window": {"from": "2025-01-02", "to": "2025-01-01"}},
     "explainability.reference_window", "must be before"),
    ("explainability", {"reference_window": {"from": "yesterday", "to": "2025-01-01"}},
     "explainability.reference_window.from", "ISO 8601"),
    ("explainability", {"min_explanations": 0}, "explainability.min_explanations", "integer >= 1"),
    ("explainability", {"alpha": 1.5}, "explainability.alpha", "between 0 and 1"),
    ("explainability", {"permutation": {"sample": 10}}, "explainability.permutation.model_path", "joblib"),
    ("explainability", {"permutation": {"model_path": "m", "scoring": "fun"}}, "explainability.permutation.scoring",
     "expected one of"),
    ("fairness", {}, "fairness.attributes", "expected a list"),
    ("fairness", {"attributes": []}, "fairness.attributes", "no sensitive attributes"),
    ("fairness", {"attributes": {"region": ["urban"]}}, "fairness.attributes.region", "at least two groups"),
    ("fairness", {"attributes": ["re gion"]}, "fairness.attributes[0]", "not a segment name"),
    ("fairness", {"attributes": ["region"], "min_group_size": 0}, "fairness.min_group_size", ">= 1"),
    ("fairness", {"attributes": ["region"], "positive_label": ""}, "fairness.positive_label", "positive class"),
    ("fairness", {"attributes": ["region"], "thresholds": {"disparate_impact_ratio": {"warning": 0.7, "alert": 0.8}}},
     "fairness.thresholds.disparate_impact_ratio", "smaller is worse"),
    ("fairness", {"attributes": ["region"], "thresholds": {"accuracy": {}}}, "fairness.thresholds.accuracy",
     "unknown metric"),
])
def test_errors_name_the_file_and_the_key(section: str, body: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(cfg.ConfigError, match=message) as err:
        _model(**{section: body})
    assert str(err.value).startswith(f"mlmon.yaml: models.credit.{key}: ")


def test_a_raw_section_kept_before_registration_is_parsed_on_demand() -> None:
    model = cfg.ModelConfig(name="credit", sections={"explainability": {"top_k": 0}})
    with pytest.raises(cfg.ConfigError, match=r"^mlmon.yaml: models.credit.explainability.top_k: "):
        explainability_config(model, "mlmon.yaml")
    assert parse_explainability({}, cfg.Where("f", "k")).top_k is None
    assert fairness_config(cfg.ModelConfig(name="credit")) is None
