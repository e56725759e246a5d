"""The ``performance:`` section of a model in ``mlmon.yaml``, validated; errors name the file and the key.

Example (every key but ``task`` is optional)::

    models:
      churn:
        window: 1h
        performance:
          task: classification          # or regression
          positive_label: "1"           # binary: the class mlmon.prediction.score is the probability of
          classes: [a, b, c]            # multiclass: classes with a mlmon.prediction.scores.<class> column
          segments: {country: [DE, FR]} # or [country]: every value (the most frequent 100)
          min_labelled: 100             # fewer labelled predictions -> status insufficient_data
          maturity: {coverage: 0.9, age: 7d}   # provisional until either is reached, then final
          lookback: 14d                 # windows this recent are recomputed while labels arrive
          reference: {from: 2025-01-01T00:00:00Z, to: 2025-01-08T00:00:00Z}  # labelled reference period
                                        # (the old spelling {start, end} still works, with a deprecation warning)
          cbpe: true                    # estimate performance before labels arrive (needs reference)
          score_bins: 1000
          calibration_bins: 10
          error_histogram: {low: -50, high: 50, bins: 100}   # regression
          thresholds:
            accuracy: {warning: 0.85, alert: 0.8}                           # absolute
            f1: {class: "1", relative: true, warning: -0.05, alert: -0.1}   # offsets from the reference's value
            roc_auc: {calibrated: true}                                     # from the reference's windows

:class:`PerformanceSpec` is the section's part of the typed model of ``mlmon.yaml``
(:mod:`mlmon.config.model`); :meth:`PerformanceSpec.resolve` gives the
:class:`PerformanceConfig` the performance job reads.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from mlmon.config.values import (NAMES_SCHEMA, group_value, SEGMENT_SUFFIX, Bool, Duration, Int1, Int10, Int2, KeyPath, Label,
                                 Number, Positive, PositiveLabel, Section, Share, TimeRange, Where, config_error,
                                 describe, fail, given, is_name, json_list, key_text, list_or_mapping, one_of,
                                 prefix_of)
from mlmon.core.labels import Task
from mlmon.metrics.rules import Rule

Mode = Literal["absolute", "relative", "calibrated"]
Direction = Literal["above", "below"]

#: Metrics that take thresholds, with the direction in which they get worse.
DIRECTIONS: dict[str, Direction] = {
    "accuracy": "below", "precision": "below", "recall": "below", "f1": "below", "roc_auc": "below",
    "average_precision": "below", "calibration_error": "above", "log_loss": "above", "label_coverage": "below",
    "mae": "above", "rmse": "above", "mape": "above", "r2": "below",
}
CLASSIFICATION_METRICS = frozenset(DIRECTIONS) - {"mae", "rmse", "mape", "r2"}
REGRESSION_METRICS = frozenset({"mae", "rmse", "mape", "r2", "label_coverage"})
#: Metrics reported per class (their threshold names a class, or applies to the default one).
PER_CLASS = frozenset({"precision", "recall", "f1", "roc_auc", "average_precision", "calibration_error"})

DEFAULT_MIN_LABELLED = 100
DEFAULT_MATURITY_COVERAGE = 0.9
DEFAULT_MATURITY_AGE = timedelta(days=7)
DEFAULT_LOOKBACK = timedelta(days=14)
DEFAULT_SCORE_BINS = 1000
DEFAULT_CALIBRATION_BINS = 10
#: Calibrated thresholds: this many reference-window standard deviations from the reference windows' mean.
DEFAULT_WARNING_SD = 2.0
DEFAULT_ALERT_SD = 3.0
#: Unrestricted segments (``segments: [country]``) report at most this many values (the most frequent).
MAX_SEGMENT_VALUES = 100


@dataclass(frozen=True)
class MetricRule:
    """The rule of one metric (and class): absolute levels, offsets from the reference, or calibrated."""

    metric: str
    class_label: str | None          # None: the default class (binary: positive; multiclass: macro)
    rule: Rule

    @property
    def mode(self) -> Mode:
        return "relative" if self.rule.relative else "calibrated" if self.rule.calibrated_sd else "absolute"


class ErrorHistogram(Section):
    """Bins of the regression error (prediction - actual), in the target's unit."""

    low: Number = Field(description="lower edge of the error histogram")
    high: Number = Field(description="upper edge of the error histogram")
    bins: Int1 = Field(default=50, description="equal-width bins between low and high")

    _required = {"low": "a number (errors are prediction - actual, in the target's unit)",
                 "high": "a number (errors are prediction - actual, in the target's unit)"}

    @model_validator(mode="after")
    def _ordered(self) -> ErrorHistogram:
        if not self.low < self.high:
            raise fail("expected low < high (errors are prediction - actual, in the target's unit)")
        return self


@dataclass(frozen=True)
class PerformanceConfig:
    task: Task
    positive_label: str = "1"
    classes: tuple[str, ...] = ()
    #: Segment name -> values to report (None: every value, the most frequent MAX_SEGMENT_VALUES).
    segments: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    min_labelled: int = DEFAULT_MIN_LABELLED
    maturity_coverage: float = DEFAULT_MATURITY_COVERAGE
    maturity_age: timedelta = DEFAULT_MATURITY_AGE
    lookback: timedelta = DEFAULT_LOOKBACK
    reference: tuple[datetime, datetime] | None = None
    cbpe: bool = False
    score_bins: int = DEFAULT_SCORE_BINS
    calibration_bins: int = DEFAULT_CALIBRATION_BINS
    error_histogram: ErrorHistogram | None = None
    thresholds: tuple[MetricRule, ...] = ()


logger = logging.getLogger("mlmon.config")


def _segments(raw: Any) -> Any:
    """``[country]`` (every value) or ``{country: [DE, FR], plan: null}``."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        for i, name in enumerate(raw):
            if not is_name(name):
                raise fail(f"{name!r} is not a segment name (letters, digits, '_' or '-'{SEGMENT_SUFFIX})", at=i)
        return {str(name): None for name in raw}
    if not isinstance(raw, Mapping):
        raise fail(f"expected a list of segment names or a mapping name -> values, got {describe(raw)}")
    out: dict[str, list[str] | None] = {}
    for name, values in raw.items():
        if not is_name(name):
            raise fail(f"{name!r} is not a segment name (letters, digits, '_' or '-'{SEGMENT_SUFFIX})", at=str(name))
        if values is not None and (not isinstance(values, list) or not values):
            raise fail("expected a non-empty list of segment values (or nothing: every value)", at=str(name))
        out[str(name)] = None if values is None else [group_value(v) for v in values]
    return out


def _classes(raw: Any) -> Any:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail(f"expected a list of class names, got {describe(raw)}")
    for i, c in enumerate(raw):
        if isinstance(c, bool) or not isinstance(c, str | int) or str(c) == "":
            raise fail(f"expected a class label (string), got {c!r}", at=i)
    classes = [str(c) for c in raw]
    if len(set(classes)) != len(classes):
        raise fail("classes must be unique")
    if len(classes) < 3:
        raise fail("list classes only for multiclass models (3 or more); a binary model logs one "
                   "mlmon.prediction.score and sets positive_label")
    bad = [c for c in classes if not is_name(c)]
    if bad:
        raise fail(f"{bad[0]!r} cannot name a mlmon.prediction.scores.<class> field (letters, digits, '_' or '-')")
    return classes


class Maturity(Section):
    """When a window's performance stops being provisional: whichever comes first."""

    coverage: Share = Field(default=DEFAULT_MATURITY_COVERAGE, description="share of predictions labelled, in (0, 1]")
    age: Duration = Field(default="7d", validate_default=True,
                          description="time since the window ended (30s, 5m, 1h, 1d)")


def _reference_schema(schema: dict[str, Any]) -> None:
    props = schema.setdefault("properties", {})
    props["start"] = {**props.get("from", {}), "deprecated": True, "description": "deprecated: use 'from'"}
    props["end"] = {**props.get("to", {}), "deprecated": True, "description": "deprecated: use 'to'"}
    schema.pop("required", None)
    schema["oneOf"] = [{"required": ["from", "to"]}, {"required": ["start", "end"]}]



class ReferencePeriod(TimeRange):
    """A labelled reference period ``{from, to}``; the old ``{start, end}`` still works (deprecated)."""

    model_config = ConfigDict(json_schema_extra=_reference_schema)

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and ("start" in data or "end" in data):
            renamed = dict(data)
            for old, new in (("start", "from"), ("end", "to")):
                if old in renamed:
                    if new in renamed:
                        raise fail(f"give {new!r} (the old name {old!r} is deprecated), not both", at=old)
                    renamed[new] = renamed.pop(old)
            return renamed
        return data



class MetricThreshold(Section):
    """Thresholds of one metric: absolute, ``relative`` to the reference's value, or ``calibrated`` on it."""

    class_label: Label | None = Field(default=None, alias="class",
                                      description="the class of a per-class metric (default: positive / macro)")
    warning: Number | None = Field(default=None, description="warning level (an offset when relative)")
    alert: Number | None = Field(default=None, description="alert level (an offset when relative)")
    relative: Bool = Field(default=False, description="warning/alert are offsets from the reference period's value")
    calibrated: Bool = Field(default=False, description="levels from the reference period's windows (mean -/+ k sd)")
    warning_sd: Positive = Field(default=DEFAULT_WARNING_SD,
                                 description="calibrated: sds from the reference mean to warn")
    alert_sd: Positive = Field(default=DEFAULT_ALERT_SD, description="calibrated: sds from the reference mean to alert")

    @model_validator(mode="after")
    def _consistent(self) -> MetricThreshold:
        if self.relative and self.calibrated:
            raise fail("choose relative or calibrated, not both")
        if self.calibrated:
            if given(self, "warning") or given(self, "alert"):
                raise fail("calibrated thresholds come from the reference: give warning_sd / alert_sd, "
                           "not warning / alert")
            if self.alert_sd < self.warning_sd:
                raise fail(f"alert_sd ({self.alert_sd}) must not be below warning_sd ({self.warning_sd})")
        elif self.warning is None and self.alert is None:
            raise fail("give warning and/or alert")
        return self

    @property
    def mode(self) -> Mode:
        return "relative" if self.relative else "calibrated" if self.calibrated else "absolute"

    def rule(self, direction: Direction) -> Rule:
        if self.calibrated:
            return Rule(None, None, direction, calibrated_sd=(self.warning_sd, self.alert_sd))
        # Absolute levels come from the file; relative ones are the reference's value moved by them.
        return Rule(self.warning, self.alert, direction, relative=self.relative,
                    source="default" if self.relative else "config")


class PerformanceSpec(Section):
    """Performance against delayed ground truth (and CBPE estimates before labels arrive)."""

    task: Literal["classification", "regression"] = Field(
        description="classification or regression")
    positive_label: PositiveLabel = Field(default="1",
                                  description="binary: the class mlmon.prediction.score is the probability of")
    classes: list[str] = Field(
        default=[], description="multiclass (3 or more): classes with a mlmon.prediction.scores.<class> field",
        json_schema_extra={"items": {"type": ["string", "integer"]}, "minItems": 3, "uniqueItems": True})
    segments: dict[str, list[str] | None] = Field(
        default={}, description="also per value of mlmon.segment.<name>: [name] (the most frequent values) or "
                        "{name: [values]}", json_schema_extra=list_or_mapping(NAMES_SCHEMA))
    min_labelled: Int1 = Field(default=DEFAULT_MIN_LABELLED,
                               description="fewer labelled predictions: insufficient_data")
    maturity: Maturity = Field(default=Maturity(), description="provisional until either is reached",
                               json_schema_extra={"default": {"coverage": DEFAULT_MATURITY_COVERAGE, "age": "7d"}})
    lookback: Duration = Field(default="14d", validate_default=True,
                               description="windows this recent are recomputed while labels arrive")
    reference: ReferencePeriod | None = Field(default=None, description="a labelled reference period {from, to}")
    cbpe: Bool | None = Field(default=None, description="estimate performance before labels arrive (needs reference; "
                                                 "default: on for classification with a reference)")
    score_bins: Int10 = Field(default=DEFAULT_SCORE_BINS, description="bins of the score histogram")
    calibration_bins: Int2 = Field(default=DEFAULT_CALIBRATION_BINS, description="bins of the calibration curve")
    error_histogram: ErrorHistogram | None = Field(default=None,
                                                   description="regression: histogram of prediction - actual")
    thresholds: dict[str, MetricThreshold] = Field(
        default={}, description="metric -> {warning, alert} (absolute), {relative: true, ...} or {calibrated: true}",
        json_schema_extra={"propertyNames": {"enum": json_list(sorted(DIRECTIONS))}})

    _required = {"task": "classification or regression"}

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: Any) -> Any:
        return one_of(("classification", "regression"), "classification or regression")(value)

    @field_validator("segments", mode="before")
    @classmethod
    def _segments(cls, value: Any) -> Any:
        return _segments(value)

    @field_validator("classes", mode="before")
    @classmethod
    def _classes(cls, value: Any) -> Any:
        return _classes(value)

    @model_validator(mode="after")
    def _consistent(self) -> PerformanceSpec:
        task = self.task
        if self.classes and task != "classification":
            raise fail("classes are for classification models", at="classes")
        if self.maturity.age > self.lookback:
            raise fail(f"maturity age ({self.maturity.age}) exceeds the look-back ({self.lookback}): windows would "
                       "leave the look-back before they can become final", at=("maturity", "age"))
        if self.cbpe and task != "classification":
            raise fail("CBPE estimates classification metrics; set cbpe: false for regression", at="cbpe")
        if self.cbpe and self.reference is None:
            raise fail("CBPE needs a labelled reference period to calibrate on: add reference: "
                       "{from: ..., to: ...}", at="cbpe")
        if self.error_histogram is not None and task != "regression":
            raise fail("error histograms are for regression models", at="error_histogram")
        allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        for metric, rule in self.thresholds.items():
            at: KeyPath = ("thresholds", metric)
            if metric not in allowed:
                extra = " (bias is two-sided: watch mae/rmse, or alert on bias in Kibana)" if metric == "bias" else ""
                raise fail(f"no thresholds for this metric on a {task} model; expected one of "
                           f"{', '.join(sorted(allowed))}{extra}", at=at)
            if rule.mode != "absolute" and self.reference is None:
                raise fail(f"{rule.mode} thresholds need a reference period (performance.reference)", at=at)
            if rule.class_label is not None and metric not in PER_CLASS:
                raise fail(f"{metric} is not reported per class", at=(*at, "class"))
            w, a = rule.warning, rule.alert
            if rule.mode != "calibrated" and w is not None and a is not None:
                worse = a > w if DIRECTIONS[metric] == "below" else a < w
                if worse:
                    side = "above" if DIRECTIONS[metric] == "below" else "below"
                    raise fail(f"alert ({a}) must not be {side} warning ({w}): {metric} gets worse "
                               f"{DIRECTIONS[metric]}", at=at)
        return self

    def resolve(self) -> PerformanceConfig:
        rules = tuple(MetricRule(m, r.class_label, r.rule(DIRECTIONS[m])) for m, r in self.thresholds.items())
        cbpe = self.cbpe if self.cbpe is not None else (self.reference is not None and self.task == "classification")
        return PerformanceConfig(
            task=self.task, positive_label=self.positive_label, classes=tuple(self.classes),
            segments={k: None if v is None else tuple(v) for k, v in self.segments.items()},
            min_labelled=self.min_labelled, maturity_coverage=self.maturity.coverage, maturity_age=self.maturity.age,
            lookback=self.lookback, reference=None if self.reference is None else self.reference.span(), cbpe=cbpe,
            score_bins=self.score_bins, calibration_bins=self.calibration_bins, error_histogram=self.error_histogram,
            thresholds=rules)


def warn_old_reference(raw: Any, key: KeyPath, line: int | None = None, file: str | None = None) -> None:
    """Warn (DeprecationWarning and the ``mlmon.config`` logger) when a performance section spells its
    reference period ``{start, end}`` instead of ``{from, to}``."""
    ref = raw.get("reference") if isinstance(raw, Mapping) else None
    if isinstance(ref, Mapping) and ("start" in ref or "end" in ref):
        where = f"{file}:{line}: " if file and line is not None else f"{file}: " if file else ""
        message = (f"{where}{key_text((*key, 'reference'))}: 'start'/'end' are now 'from'/'to' "
                   "(like the CLI's --from/--to); the old names still work")
        logger.warning("%s", message)
        warnings.warn(message, DeprecationWarning, stacklevel=3)


def parse_performance(raw: Mapping[str, Any], where: Where) -> PerformanceConfig:
    """Validate a model's ``performance`` mapping; errors name ``where``'s file and key."""
    warn_old_reference(raw, prefix_of(where), file=where.file)
    try:
        return PerformanceSpec.model_validate(raw).resolve()
    except ValidationError as err:
        raise config_error(err, where.file, prefix_of(where)) from None
