"""The ``explainability:`` and ``fairness:`` sections of ``mlmon.yaml``, validated.

Errors name the file and the key (``mlmon.yaml: models.churn.fairness.min_group_size: ...``),
like the rest of :mod:`mlmon.config.model`. Importing this module registers both
parsers in :data:`mlmon.config.model.SECTION_PARSERS`. Every key is optional::

    models:
      churn:
        explainability:
          features: [age, plan]          # default: every attribution field logged
          method: shap                   # only explanations of this method (default: all)
          reference: churn-3-attr-0123   # an attribution reference id (default: newest for model/version)
          reference_window: {from: 2025-01-01T00:00:00Z, to: 2025-01-08T00:00:00Z}
          top_k: 10                      # nDCG over the top k features (default: all)
          segments: {region: [urban, rural]}  # also per value of mlmon.segment.<name> (like drift's segments)
          min_explanations: 100          # fewer in a window: insufficient_data
          alpha: 0.01                    # significance gate of attribution_drift (Holm over features)
          thresholds:
            attribution_drift: {warning: 0.05, alert: 0.10}   # |share change|
            ranking_ndcg: {warning: 0.95, alert: 0.90}        # lower is worse
            importance_shift: {warning: 0.10, alert: 0.20}
          permutation:                   # optional, embedded store only: see mlmon.jobs.permutation
            model_path: models/churn.joblib
            sample: 2000
            repeats: 5
            scoring: accuracy
        fairness:
          attributes: [region]           # or {region: [urban, rural]} to name the groups compared
          positive_label: "1"            # the favourable prediction / actual class
          min_group_size: 30
          max_groups: 50                 # most frequent groups of an attribute; the rest are left out, counted
          thresholds:
            demographic_parity_difference: {warning: 0.10, alert: 0.20}
            disparate_impact_ratio: {warning: 0.90, alert: 0.80}   # lower is worse (four-fifths rule)
            equal_opportunity_difference: {warning: 0.10, alert: 0.20}
            equalized_odds_difference: {warning: 0.10, alert: 0.20}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

# The scalar validators are config.py's, so every section words its errors the same way.
from mlmon.config.values import Where, integer_at_least, no_unknown_keys, optional_float, optional_str, probability
from mlmon.core.documents import Threshold
from mlmon_logging import contract

Direction = Literal["above", "below"]


@dataclass(frozen=True)
class Limits:
    """Warning / alert levels of one metric (``direction``: which way is worse)."""

    warning: float | None
    alert: float | None
    direction: Direction = "above"
    source: str = "default"

    def threshold(self) -> Threshold:
        return Threshold(self.warning, self.alert, self.direction, self.source)


#: SageMaker Model Monitor flags a feature-attribution nDCG below 0.9.
EXPLAINABILITY_DEFAULTS: Mapping[str, Limits] = {
    "attribution_drift": Limits(0.05, 0.10),
    "ranking_ndcg": Limits(0.95, 0.90, "below"),
    "importance_shift": Limits(0.10, 0.20),
}
#: Disparate impact below 0.8 fails the four-fifths rule: an alert; below 0.9 a warning.
FAIRNESS_DEFAULTS: Mapping[str, Limits] = {
    "demographic_parity_difference": Limits(0.10, 0.20),
    "disparate_impact_ratio": Limits(0.90, 0.80, "below"),
    "equal_opportunity_difference": Limits(0.10, 0.20),
    "equalized_odds_difference": Limits(0.10, 0.20),
}
DEFAULT_MIN_EXPLANATIONS = 100
DEFAULT_EXPLAIN_ALPHA = 0.01
DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_MAX_GROUPS = 50
DEFAULT_POSITIVE_LABEL = "1"
SCORINGS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "neg_log_loss", "r2", "neg_mean_absolute_error",
            "neg_mean_squared_error")


@dataclass(frozen=True)
class PermutationConfig:
    model_path: str
    sample: int = 2000
    repeats: int = 5
    scoring: str = "accuracy"
    seed: int = 0


@dataclass(frozen=True)
class ExplainabilityConfig:
    features: tuple[str, ...] = ()
    method: str | None = None
    reference: str | None = None
    reference_window: tuple[datetime, datetime] | None = None
    top_k: int | None = None
    min_explanations: int = DEFAULT_MIN_EXPLANATIONS
    alpha: float = DEFAULT_EXPLAIN_ALPHA
    thresholds: Mapping[str, Limits] = field(default_factory=lambda: dict(EXPLAINABILITY_DEFAULTS))
    permutation: PermutationConfig | None = None
    #: Segment name -> values: attribution metrics also per value (each against the same reference).
    segments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class FairnessConfig:
    #: Attribute (segment name) -> the groups to compare; empty tuple = every group seen (up to max_groups).
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    positive_label: str = DEFAULT_POSITIVE_LABEL
    min_group_size: float = DEFAULT_MIN_GROUP_SIZE
    max_groups: int = DEFAULT_MAX_GROUPS
    thresholds: Mapping[str, Limits] = field(default_factory=lambda: dict(FAIRNESS_DEFAULTS))


def parse_explainability(raw: Mapping[str, Any], where: Where) -> ExplainabilityConfig:
    no_unknown_keys(raw, {"features", "method", "reference", "reference_window", "top_k", "min_explanations", "alpha",
                          "thresholds", "permutation", "segments"}, where)
    features = raw.get("features") or []
    if not isinstance(features, list):
        raise where.at("features").fail("expected a list of feature names")
    window = raw.get("reference_window")
    if raw.get("reference") is not None and window is not None:
        raise where.at("reference_window").fail("give either reference or reference_window, not both")
    top_k = raw.get("top_k")
    return ExplainabilityConfig(
        features=tuple(_name(f, where.at("features"), "feature") for f in features),
        method=_non_empty_str(raw.get("method"), where.at("method")),
        reference=_non_empty_str(raw.get("reference"), where.at("reference")),
        reference_window=None if window is None else _window(window, where.at("reference_window")),
        top_k=None if top_k is None else integer_at_least(top_k, where.at("top_k"), 1),
        min_explanations=integer_at_least(raw.get("min_explanations", DEFAULT_MIN_EXPLANATIONS),
                                          where.at("min_explanations"), 1),
        alpha=probability(raw.get("alpha", DEFAULT_EXPLAIN_ALPHA), where.at("alpha")),
        thresholds=_thresholds(raw.get("thresholds"), EXPLAINABILITY_DEFAULTS, where.at("thresholds")),
        permutation=None if raw.get("permutation") is None else _permutation(raw["permutation"],
                                                                               where.at("permutation")),
        segments=_segments(raw.get("segments"), where.at("segments")),
    )


def parse_fairness(raw: Mapping[str, Any], where: Where) -> FairnessConfig:
    no_unknown_keys(raw, {"attributes", "positive_label", "min_group_size", "max_groups", "thresholds"}, where)
    attrs_raw = raw.get("attributes")
    aw = where.at("attributes")
    attributes: dict[str, tuple[str, ...]] = {}
    if isinstance(attrs_raw, list):
        attributes = {_name(a, aw, "segment"): () for a in attrs_raw}
    elif isinstance(attrs_raw, Mapping):
        for name, groups in attrs_raw.items():
            gw = aw.at(str(name))
            if groups is not None and (not isinstance(groups, list) or len(groups) < 2):
                raise gw.fail("expected a list of at least two groups to compare (or null for every group)")
            attributes[_name(name, aw, "segment")] = tuple(_group(g, gw) for g in groups or ())
    else:
        raise aw.fail("expected a list of segment names (mlmon.segment.<name>) or a mapping name -> groups")
    if not attributes:
        raise aw.fail("no sensitive attributes configured")
    label = raw.get("positive_label", DEFAULT_POSITIVE_LABEL)
    if isinstance(label, bool):
        label = "true" if label else "false"  # the emitter logs booleans as "true"/"false"
    if not isinstance(label, str | int) or str(label) == "":
        raise where.at("positive_label").fail(f"expected the positive class as a string, got {label!r}")
    min_size = raw.get("min_group_size", DEFAULT_MIN_GROUP_SIZE)
    if isinstance(min_size, bool) or not isinstance(min_size, int | float) or min_size < 1:
        raise where.at("min_group_size").fail(f"expected a number >= 1, got {min_size!r}")
    return FairnessConfig(
        attributes=attributes, positive_label=str(label), min_group_size=float(min_size),
        max_groups=integer_at_least(raw.get("max_groups", DEFAULT_MAX_GROUPS), where.at("max_groups"), 2),
        thresholds=_thresholds(raw.get("thresholds"), FAIRNESS_DEFAULTS, where.at("thresholds")),
    )


# --- helpers ------------------------------------------------------------------------------------------

def _thresholds(raw: Any, defaults: Mapping[str, Limits], where: Where) -> dict[str, Limits]:
    out = dict(defaults)
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        raise where.fail(f"expected a mapping metric -> {{warning, alert}}, got {raw!r}")
    for metric, spec in raw.items():
        mw = where.at(str(metric))
        if metric not in defaults:
            raise mw.fail(f"unknown metric; expected one of {', '.join(sorted(defaults))}")
        if not isinstance(spec, Mapping):
            raise mw.fail(f"expected a mapping with warning and/or alert, got {spec!r}")
        no_unknown_keys(spec, {"warning", "alert"}, mw)
        base = defaults[metric]
        warning = optional_float(spec.get("warning", base.warning), mw.at("warning"))
        alert = optional_float(spec.get("alert", base.alert), mw.at("alert"))
        if warning is not None and alert is not None:
            if base.direction == "above" and alert < warning:
                raise mw.fail(f"alert ({alert}) must not be below warning ({warning}): larger is worse")
            if base.direction == "below" and alert > warning:
                raise mw.fail(f"alert ({alert}) must not be above warning ({warning}): smaller is worse")
        out[str(metric)] = Limits(warning, alert, base.direction, "config")
    return out


def _segments(raw: Any, where: Where) -> dict[str, tuple[str, ...]]:
    """``{name: [values]}``, worded like the drift section's ``segments``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise where.fail(f"expected a mapping segment name -> list of values, got {raw!r}")
    out: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        sw = where.at(str(name))
        if not isinstance(values, list) or not values:
            raise sw.fail("expected a non-empty list of segment values to monitor")
        values_seen = tuple(_group(v, sw) for v in values)
        if len(set(values_seen)) != len(values_seen):
            raise sw.fail(f"segment values listed twice: {list(values)!r}")
        out[_name(name, where, "segment")] = values_seen
    return out


def _permutation(raw: Any, where: Where) -> PermutationConfig:
    if not isinstance(raw, Mapping):
        raise where.fail(f"expected a mapping with model_path, got {raw!r}")
    no_unknown_keys(raw, {"model_path", "sample", "repeats", "scoring", "seed"}, where)
    path = raw.get("model_path")
    if not isinstance(path, str) or not path:
        raise where.at("model_path").fail("expected the path of a joblib/pickle file of a scikit-learn model")
    scoring = raw.get("scoring", "accuracy")
    if scoring not in SCORINGS:
        raise where.at("scoring").fail(f"expected one of {', '.join(SCORINGS)}, got {scoring!r}")
    return PermutationConfig(model_path=path,
                             sample=integer_at_least(raw.get("sample", 2000), where.at("sample"), 10),
                             repeats=integer_at_least(raw.get("repeats", 5), where.at("repeats"), 1), scoring=scoring,
                             seed=integer_at_least(raw.get("seed", 0), where.at("seed"), 0))


def _window(raw: Any, where: Where) -> tuple[datetime, datetime]:
    if not isinstance(raw, Mapping):
        raise where.fail("expected {from: <ISO 8601>, to: <ISO 8601>}")
    no_unknown_keys(raw, {"from", "to"}, where)
    start, end = _time(raw.get("from"), where.at("from")), _time(raw.get("to"), where.at("to"))
    if not start < end:
        raise where.fail(f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    return start, end


def _time(value: Any, where: Where) -> datetime:
    if isinstance(value, datetime):  # YAML parses unquoted timestamps itself
        t = value
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise where.fail(f"expected an ISO 8601 time like 2025-01-31T10:00:00Z, got {value!r}") from None
    else:
        raise where.fail(f"expected an ISO 8601 time, got {value!r}")
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _name(value: Any, where: Where, what: str) -> str:
    if not isinstance(value, str) or not re.match(contract.NAME_PATTERN, value):
        raise where.fail(f"{value!r} is not a {what} name (letters, digits, '_' or '-')")
    return value


def _group(value: Any, where: Where) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int | float):
        raise where.fail(f"expected group values (strings), got {value!r}")
    return str(value)


def _non_empty_str(value: Any, where: Where) -> str | None:
    text: str | None = optional_str(value, where)
    if text == "":
        raise where.fail("expected a non-empty string")
    return text
