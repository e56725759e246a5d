"""The ``explainability:`` and ``fairness:`` sections of ``mlmon.yaml``, validated.

Errors name the file, the line and the key
(``mlmon.yaml:14: models.churn.fairness.min_group_size: ...``), like the rest of
:mod:`mlmon.config.model`: :class:`ExplainabilitySpec` and :class:`FairnessSpec` are the
sections' part of its typed model. Every key is optional but ``fairness.attributes``::

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
          lookback: 14d                  # without a performance section: windows this recent are recomputed
          thresholds:
            demographic_parity_difference: {warning: 0.10, alert: 0.20}
            disparate_impact_ratio: {warning: 0.90, alert: 0.80}   # lower is worse (four-fifths rule)
            equal_opportunity_difference: {warning: 0.10, alert: 0.20}
            equalized_odds_difference: {warning: 0.10, alert: 0.20}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

# The scalar types are values.py's, so every section words its errors the same way.
from mlmon.config.values import (GROUP_SCHEMA, NAMES_SCHEMA, Duration, FeatureName, Int0, Int1,
                                 Int10, Int2, NonEmptyText, Number, PositiveLabel, Probability, Section, TimeRange,
                                 Where, config_error, describe, fail, given, group_value, is_name, json_list,
                                 list_or_mapping, one_of, prefix_of, segments_to_monitor)
from mlmon.metrics.rules import Rule

Direction = Literal["above", "below"]


#: SageMaker Model Monitor flags a feature-attribution nDCG below 0.9.
EXPLAINABILITY_DEFAULTS: Mapping[str, Rule] = {
    "attribution_drift": Rule(0.05, 0.10),
    "ranking_ndcg": Rule(0.95, 0.90, "below"),
    "importance_shift": Rule(0.10, 0.20),
}
#: Disparate impact below 0.8 fails the four-fifths rule: an alert; below 0.9 a warning.
FAIRNESS_DEFAULTS: Mapping[str, Rule] = {
    "demographic_parity_difference": Rule(0.10, 0.20),
    "disparate_impact_ratio": Rule(0.90, 0.80, "below"),
    "equal_opportunity_difference": Rule(0.10, 0.20),
    "equalized_odds_difference": Rule(0.10, 0.20),
}
DEFAULT_MIN_EXPLANATIONS = 100
DEFAULT_EXPLAIN_ALPHA = 0.01
DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_MAX_GROUPS = 50
DEFAULT_POSITIVE_LABEL = "1"
#: Fairness without a performance section recomputes the windows this recent every round (performance's default).
DEFAULT_FAIRNESS_LOOKBACK = timedelta(days=14)
SCORINGS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "neg_log_loss", "r2", "neg_mean_absolute_error",
            "neg_mean_squared_error")


class PermutationConfig(Section):
    """Permutation importance of a scikit-learn model on logged rows (embedded store only)."""

    model_path: str = Field(description="the path of a joblib/pickle file of a scikit-learn model",
                            json_schema_extra={"minLength": 1})
    sample: Int10 = Field(default=2000, description="rows sampled from the window")
    repeats: Int1 = Field(default=5, description="shuffles per feature")
    scoring: str = Field(default="accuracy",
                         description="a scikit-learn scorer", json_schema_extra={"enum": json_list(SCORINGS)})
    seed: Int0 = Field(default=0, description="random seed")

    @field_validator("model_path", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise fail(f"expected the path of a joblib/pickle file of a scikit-learn model, got {describe(value)}")
        return value

    @field_validator("scoring", mode="before")
    @classmethod
    def _scoring(cls, value: Any) -> Any:
        return one_of(SCORINGS)(value)


@dataclass(frozen=True)
class ExplainabilityConfig:
    features: tuple[str, ...] = ()
    method: str | None = None
    reference: str | None = None
    reference_window: tuple[datetime, datetime] | None = None
    top_k: int | None = None
    min_explanations: int = DEFAULT_MIN_EXPLANATIONS
    alpha: float = DEFAULT_EXPLAIN_ALPHA
    thresholds: Mapping[str, Rule] = field(default_factory=lambda: dict(EXPLAINABILITY_DEFAULTS))
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
    thresholds: Mapping[str, Rule] = field(default_factory=lambda: dict(FAIRNESS_DEFAULTS))
    #: Its own label schedule's look-back (no performance section); None: not given (14 days, or performance's).
    lookback: timedelta | None = None


class LevelsSpec(Section):
    """Warning / alert levels of one metric; a level left out keeps its default."""

    warning: Number | None = Field(default=None, description="warning level (null: none)")
    alert: Number | None = Field(default=None, description="alert level (null: none)")


def _limits(raw: dict[str, LevelsSpec | None], defaults: Mapping[str, Rule]) -> dict[str, Rule]:
    """Defaults overridden by the file's levels, checked against the metric's direction."""
    out = dict(defaults)
    for metric, spec in raw.items():
        base = defaults[metric]
        warning = spec.warning if spec is not None and given(spec, "warning") else base.warning
        alert = spec.alert if spec is not None and given(spec, "alert") else base.alert
        if warning is not None and alert is not None:
            if base.direction == "above" and alert < warning:
                raise fail(f"alert ({alert}) must not be below warning ({warning}): larger is worse", at=metric)
            if base.direction == "below" and alert > warning:
                raise fail(f"alert ({alert}) must not be above warning ({warning}): smaller is worse", at=metric)
        out[metric] = Rule(warning, alert, base.direction, source="config")
    return out


def _known_metrics(raw: Any, defaults: Mapping[str, Rule]) -> Any:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise fail(f"expected a mapping metric -> {{warning, alert}}, got {describe(raw)}")
    for metric in raw:
        if metric not in defaults:
            raise fail(f"unknown metric {metric!r}; expected one of {', '.join(sorted(defaults))}", at=str(metric))
    return raw


def _thresholds_field(defaults: Mapping[str, Rule]) -> Any:
    return Field(default={}, description="metric -> {warning, alert}; metrics left out keep their defaults ("
                 + "; ".join(f"{m}: {d.warning}/{d.alert}, {'larger' if d.direction == 'above' else 'smaller'} "
                             "is worse" for m, d in defaults.items()) + ")",
                 json_schema_extra={"propertyNames": {"enum": json_list(sorted(defaults))}})


class ExplainabilitySpec(Section):
    """Drift of feature attributions (SHAP etc.) against an attribution reference."""

    features: list[FeatureName] = Field(default=[], description="default: every attribution field logged")
    method: NonEmptyText | None = Field(default=None, description="only explanations of this method (default: all)")
    reference: NonEmptyText | None = Field(default=None, description="an attribution reference id "
                                                             "(default: the newest for model/version)")
    reference_window: TimeRange | None = Field(default=None, description="logged explanations of this period "
                                                                 "as the reference {from, to}")
    top_k: Int1 | None = Field(default=None, description="nDCG over the top k features (default: all)")
    min_explanations: Int1 = Field(default=DEFAULT_MIN_EXPLANATIONS, description="fewer in a window: insufficient_data")
    alpha: Probability = Field(default=DEFAULT_EXPLAIN_ALPHA, description="significance gate of attribution_drift "
                                                                  "(Holm over features)")
    thresholds: dict[str, LevelsSpec | None] = _thresholds_field(EXPLAINABILITY_DEFAULTS)
    permutation: PermutationConfig | None = Field(default=None,
                                                  description="permutation importance (embedded store only)")
    segments: dict[str, list[str]] = Field(
        default={}, description="also per value of mlmon.segment.<name>: {name: [values]}",
        json_schema_extra={"additionalProperties": {"type": "array", "minItems": 1, "items": GROUP_SCHEMA}})

    @field_validator("thresholds", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        return _known_metrics(value, EXPLAINABILITY_DEFAULTS)

    @field_validator("thresholds", mode="after")
    @classmethod
    def _levels(cls, value: dict[str, LevelsSpec | None]) -> dict[str, LevelsSpec | None]:
        _limits(value, EXPLAINABILITY_DEFAULTS)
        return value

    @field_validator("segments", mode="before")
    @classmethod
    def _segments(cls, raw: Any) -> Any:
        return segments_to_monitor(raw)

    @model_validator(mode="after")
    def _one_reference(self) -> ExplainabilitySpec:
        if self.reference is not None and self.reference_window is not None:
            raise fail("give either reference or reference_window, not both", at="reference_window")
        return self

    def resolve(self) -> ExplainabilityConfig:
        return ExplainabilityConfig(
            features=tuple(self.features), method=self.method, reference=self.reference,
            reference_window=None if self.reference_window is None else self.reference_window.span(),
            top_k=self.top_k, min_explanations=self.min_explanations, alpha=self.alpha,
            thresholds=_limits(self.thresholds, EXPLAINABILITY_DEFAULTS), permutation=self.permutation,
            segments={k: tuple(v) for k, v in self.segments.items()})


class FairnessSpec(Section):
    """Gaps between groups of sensitive attributes (logged as mlmon.segment.<name>)."""

    attributes: dict[str, list[str]] = Field(
        description="a list of segment names (mlmon.segment.<name>) or a mapping name -> the groups to compare "
                    "(null: every group)",
        json_schema_extra=list_or_mapping({**NAMES_SCHEMA, "minItems": 1}))
    positive_label: PositiveLabel = Field(default=DEFAULT_POSITIVE_LABEL,
                                  description="the favourable prediction / actual class")
    min_group_size: Number = Field(default=DEFAULT_MIN_GROUP_SIZE, ge=1, description="smaller groups are not compared")
    max_groups: Int2 = Field(default=DEFAULT_MAX_GROUPS,
                             description="the most frequent groups of an attribute; the rest "
                                                            "are left out, counted")
    thresholds: dict[str, LevelsSpec | None] = _thresholds_field(FAIRNESS_DEFAULTS)
    lookback: Duration | None = Field(default=None, description="without a performance section: windows this recent "
                                      "are recomputed each round while labels arrive (default: 14d); with one, "
                                      "fairness follows the performance windows")

    _required = {"attributes": "a list of segment names (mlmon.segment.<name>) or a mapping name -> groups"}

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, raw: Any) -> Any:
        what = "segment"
        out: dict[str, list[str]] = {}
        if isinstance(raw, list):
            for i, name in enumerate(raw):
                if not is_name(name):
                    raise fail(f"{name!r} is not a {what} name (letters, digits, '_' or '-')", at=i)
                out[str(name)] = []
        elif isinstance(raw, Mapping):
            for name, groups in raw.items():
                if groups is not None and (not isinstance(groups, list) or len(groups) < 2):
                    raise fail("expected a list of at least two groups to compare (or null for every group)",
                               at=str(name))
                if not is_name(name):
                    raise fail(f"{name!r} is not a {what} name (letters, digits, '_' or '-')", at=str(name))
                out[str(name)] = [group_value(g) for g in groups or ()]
        else:
            raise fail("expected a list of segment names (mlmon.segment.<name>) or a mapping name -> groups, "
                       f"got {describe(raw)}")
        if not out:
            raise fail("no sensitive attributes configured")
        return out

    @field_validator("min_group_size", mode="before")
    @classmethod
    def _min_size(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
            raise fail(f"expected a number >= 1, got {value!r}")
        return float(value)

    @field_validator("thresholds", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        return _known_metrics(value, FAIRNESS_DEFAULTS)

    @field_validator("thresholds", mode="after")
    @classmethod
    def _levels(cls, value: dict[str, LevelsSpec | None]) -> dict[str, LevelsSpec | None]:
        _limits(value, FAIRNESS_DEFAULTS)
        return value

    def resolve(self) -> FairnessConfig:
        return FairnessConfig(attributes={k: tuple(v) for k, v in self.attributes.items()},
                              positive_label=self.positive_label, min_group_size=self.min_group_size,
                              max_groups=self.max_groups, thresholds=_limits(self.thresholds, FAIRNESS_DEFAULTS),
                              lookback=self.lookback)


def parse_explainability(raw: Mapping[str, Any], where: Where) -> ExplainabilityConfig:
    try:
        return ExplainabilitySpec.model_validate(raw).resolve()
    except ValidationError as err:
        raise config_error(err, where.file, prefix_of(where)) from None


def parse_fairness(raw: Mapping[str, Any], where: Where) -> FairnessConfig:
    try:
        return FairnessSpec.model_validate(raw).resolve()
    except ValidationError as err:
        raise config_error(err, where.file, prefix_of(where)) from None
