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
          reference: {start: 2025-01-01T00:00:00Z, end: 2025-01-08T00:00:00Z}  # labelled reference period
          cbpe: true                    # estimate performance before labels arrive (needs reference)
          score_bins: 1000
          calibration_bins: 10
          error_histogram: {low: -50, high: 50, bins: 100}   # regression
          thresholds:
            accuracy: {warning: 0.85, alert: 0.8}                           # absolute
            f1: {class: "1", relative: true, warning: -0.05, alert: -0.1}   # offsets from the reference's value
            roc_auc: {calibrated: true}                                     # from the reference's windows

Wiring: ``mlmon.config.model`` calls :func:`parse_performance` for the section
(``SECTION_PARSERS["performance"] = parse_performance``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from mlmon.config.values import (Where, boolean, integer_at_least, mapping_of, no_unknown_keys, optional_float,
                                 parse_duration)
from mlmon.core.labels import Task
from mlmon_logging import contract

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
_KEYS = {"task", "positive_label", "classes", "segments", "min_labelled", "maturity", "lookback", "reference", "cbpe",
         "score_bins", "calibration_bins", "error_histogram", "thresholds"}


@dataclass(frozen=True)
class MetricRule:
    """Thresholds of one metric (and class): absolute values, offsets from the reference, or calibrated."""

    metric: str
    class_label: str | None          # None: the default class (binary: positive; multiclass: macro)
    mode: Mode
    warning: float | None = None
    alert: float | None = None
    warning_sd: float = DEFAULT_WARNING_SD
    alert_sd: float = DEFAULT_ALERT_SD

    @property
    def direction(self) -> Direction:
        return DIRECTIONS[self.metric]


@dataclass(frozen=True)
class ErrorHistogram:
    low: float
    high: float
    bins: int


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


def parse_performance(raw: Mapping[str, Any], where: Where) -> PerformanceConfig:
    """Validate a model's ``performance`` mapping (``mlmon.config.model.SectionParser``)."""
    unknown = sorted(set(map(str, raw)) - _KEYS)
    if unknown:
        raise where.at(unknown[0]).fail(f"unknown key; expected one of {', '.join(sorted(_KEYS))}")
    task = raw.get("task")
    if task not in ("classification", "regression"):
        raise where.at("task").fail(f"expected classification or regression, got {task!r}")
    classes = _classes(raw.get("classes"), where.at("classes"))
    if classes and task != "classification":
        raise where.at("classes").fail("classes are for classification models")
    positive = _name_or_label(raw.get("positive_label", "1"), where.at("positive_label"))
    maturity = mapping_of(raw.get("maturity"), where.at("maturity"))
    no_unknown_keys(maturity, {"coverage", "age"}, where.at("maturity"))
    coverage = _fraction(maturity.get("coverage", DEFAULT_MATURITY_COVERAGE), where.at("maturity").at("coverage"))
    age = (parse_duration(maturity["age"], where.at("maturity").at("age")) if "age" in maturity
           else DEFAULT_MATURITY_AGE)
    lookback = parse_duration(raw["lookback"], where.at("lookback")) if "lookback" in raw else DEFAULT_LOOKBACK
    if age > lookback:
        raise where.at("maturity").at("age").fail(
            f"maturity age ({age}) exceeds the look-back ({lookback}): windows would leave the look-back "
            "before they can become final")
    reference = _reference(raw.get("reference"), where.at("reference"))
    cbpe = boolean(raw.get("cbpe", reference is not None and task == "classification"), where.at("cbpe"))
    if cbpe and task != "classification":
        raise where.at("cbpe").fail("CBPE estimates classification metrics; set cbpe: false for regression")
    if cbpe and reference is None:
        raise where.at("cbpe").fail("CBPE needs a labelled reference period to calibrate on: add reference: "
                                    "{start: ..., end: ...}")
    if "error_histogram" in raw and task != "regression":
        raise where.at("error_histogram").fail("error histograms are for regression models")
    thresholds = _thresholds(raw.get("thresholds"), where.at("thresholds"), task, reference is not None)
    return PerformanceConfig(
        task=task, positive_label=positive, classes=classes, segments=_segments(raw.get("segments"),
                                                                              where.at("segments")),
        min_labelled=integer_at_least(raw.get("min_labelled", DEFAULT_MIN_LABELLED), where.at("min_labelled"), 1),
        maturity_coverage=coverage, maturity_age=age, lookback=lookback, reference=reference, cbpe=cbpe,
        score_bins=integer_at_least(raw.get("score_bins", DEFAULT_SCORE_BINS), where.at("score_bins"), 10),
        calibration_bins=integer_at_least(raw.get("calibration_bins", DEFAULT_CALIBRATION_BINS),
                                          where.at("calibration_bins"), 2),
        error_histogram=_error_histogram(raw.get("error_histogram"), where.at("error_histogram")),
        thresholds=thresholds)


def _thresholds(raw: Any, where: Where, task: str, has_reference: bool) -> tuple[MetricRule, ...]:
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    rules: list[MetricRule] = []
    for metric, spec in mapping_of(raw, where).items():
        mw = where.at(str(metric))
        if metric not in allowed:
            extra = " (bias is two-sided: watch mae/rmse, or alert on bias in Kibana)" if metric == "bias" else ""
            raise mw.fail(f"no thresholds for this metric on a {task} model; expected one of "
                          f"{', '.join(sorted(allowed))}{extra}")
        body = mapping_of(spec, mw)
        no_unknown_keys(body, {"class", "warning", "alert", "relative", "calibrated", "warning_sd", "alert_sd"}, mw)
        relative = boolean(body.get("relative", False), mw.at("relative"))
        calibrated = boolean(body.get("calibrated", False), mw.at("calibrated"))
        if relative and calibrated:
            raise mw.fail("choose relative or calibrated, not both")
        mode: Mode = "relative" if relative else "calibrated" if calibrated else "absolute"
        if mode != "absolute" and not has_reference:
            raise mw.fail(f"{mode} thresholds need a reference period (performance.reference)")
        class_label = None
        if "class" in body:
            if metric not in PER_CLASS:
                raise mw.at("class").fail(f"{metric} is not reported per class")
            class_label = _name_or_label(body["class"], mw.at("class"))
        if mode == "calibrated":
            if "warning" in body or "alert" in body:
                raise mw.fail("calibrated thresholds come from the reference: give warning_sd / alert_sd, "
                              "not warning / alert")
            w_sd = _positive(body.get("warning_sd", DEFAULT_WARNING_SD), mw.at("warning_sd"))
            a_sd = _positive(body.get("alert_sd", DEFAULT_ALERT_SD), mw.at("alert_sd"))
            if a_sd < w_sd:
                raise mw.fail(f"alert_sd ({a_sd}) must not be below warning_sd ({w_sd})")
            rules.append(MetricRule(str(metric), class_label, mode, warning_sd=w_sd, alert_sd=a_sd))
            continue
        warning = optional_float(body.get("warning"), mw.at("warning"))
        alert = optional_float(body.get("alert"), mw.at("alert"))
        if warning is None and alert is None:
            raise mw.fail("give warning and/or alert")
        if warning is not None and alert is not None:
            worse = alert > warning if DIRECTIONS[str(metric)] == "below" else alert < warning
            if worse:
                side = "above" if DIRECTIONS[str(metric)] == "below" else "below"
                raise mw.fail(f"alert ({alert}) must not be {side} warning ({warning}): "
                              f"{metric} gets worse {DIRECTIONS[str(metric)]}")
        rules.append(MetricRule(str(metric), class_label, mode, warning, alert))
    return tuple(rules)


def _segments(raw: Any, where: Where) -> dict[str, tuple[str, ...] | None]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        return {_segment_name(s, where): None for s in raw}
    out: dict[str, tuple[str, ...] | None] = {}
    for name, values in mapping_of(raw, where).items():
        sw = where.at(str(name))
        seg = _segment_name(name, sw)
        if values is None:
            out[seg] = None
        elif isinstance(values, list) and values:
            out[seg] = tuple(str(v) for v in values)
        else:
            raise sw.fail("expected a non-empty list of segment values (or nothing: every value)")
    return out


def _segment_name(value: Any, where: Where) -> str:
    if not isinstance(value, str) or not re.match(contract.NAME_PATTERN, value):
        raise where.fail(f"{value!r} is not a segment name (letters, digits, '_' or '-'; the field is "
                         "mlmon.segment.<name>)")
    return value


def _classes(raw: Any, where: Where) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise where.fail(f"expected a list of class names, got {raw!r}")
    classes = tuple(_name_or_label(c, where) for c in raw)
    if len(set(classes)) != len(classes):
        raise where.fail("classes must be unique")
    if len(classes) < 3:
        raise where.fail("list classes only for multiclass models (3 or more); a binary model logs one "
                         "mlmon.prediction.score and sets positive_label")
    bad = [c for c in classes if not re.match(contract.NAME_PATTERN, c)]
    if bad:
        raise where.fail(f"{bad[0]!r} cannot name a mlmon.prediction.scores.<class> field "
                         "(letters, digits, '_' or '-')")
    return classes


def _reference(raw: Any, where: Where) -> tuple[datetime, datetime] | None:
    if raw is None:
        return None
    body = mapping_of(raw, where)
    no_unknown_keys(body, {"start", "end"}, where)
    start, end = _time(body.get("start"), where.at("start")), _time(body.get("end"), where.at("end"))
    if not start < end:
        raise where.fail(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    return start, end


def _time(value: Any, where: Where) -> datetime:
    from datetime import timezone

    if isinstance(value, datetime):  # YAML parses unquoted ISO times itself
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise where.fail(f"expected an ISO 8601 time like 2025-01-31T00:00:00Z, got {value!r}")
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise where.fail(f"expected an ISO 8601 time like 2025-01-31T00:00:00Z, got {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _error_histogram(raw: Any, where: Where) -> ErrorHistogram | None:
    if raw is None:
        return None
    body = mapping_of(raw, where)
    no_unknown_keys(body, {"low", "high", "bins"}, where)
    low = optional_float(body.get("low"), where.at("low"))
    high = optional_float(body.get("high"), where.at("high"))
    if low is None or high is None or not low < high:
        raise where.fail("expected low < high (errors are prediction - actual, in the target's unit)")
    return ErrorHistogram(low, high, integer_at_least(body.get("bins", 50), where.at("bins"), 1))


def _name_or_label(value: Any, where: Where) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise where.fail(f"expected a class label (string), got {value!r}")
    return str(value)




def _fraction(value: Any, where: Where) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise where.fail(f"expected a share in (0, 1], got {value!r}")
    return float(value)


def _positive(value: Any, where: Where) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise where.fail(f"expected a number > 0, got {value!r}")
    return float(value)
