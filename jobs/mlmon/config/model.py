"""``mlmon.yaml``: which models to monitor and how, as ONE typed model validated by pydantic.

The shortest useful file::

    models:
      churn: {}

monitors every feature of the latest ``churn`` reference profile in 1-hour
windows with the default thresholds. Everything else is optional::

    store: duckdb:///mlmon.duckdb      # or https://host:9200 ; --store overrides
    models:
      churn:
        version: "3"                   # events and reference of this model version (default: latest reference)
        reference: churn-3-0123abcd    # a profile id (default: the latest for model/version)
        window: 1h                     # 30s, 5m, 1h, 1d
        lateness: 1m                   # wait this long after a window ends for late events
        drift:
          features: [age, plan]        # default: every feature of the reference
          # or per feature thresholds: {age: {wasserstein: {alert: 0.3}}, plan: {}}
          prediction: true             # drift of scores / predicted labels too
          thresholds: {wasserstein: {warning: 0.1, alert: 0.2}}
          min_rows: 500
          alpha: 0.01
          correction: holm             # holm | bh | none
          calibrate: false             # thresholds from resampling the reference
          segments: {country: [DE, FR]}
        performance: {...}             # mlmon.config.performance
        explainability: {...}          # mlmon.config.explainability
        fairness: {...}                # mlmon.config.explainability
        alerts: {...}                  # mlmon.config.alerts

:class:`MlmonYaml` is the model of the whole file (``mlmon config schema`` prints its
JSON Schema). :func:`load` / :func:`parse` validate a file and give the :class:`Config`
the jobs read; every error is one line ``file:line: key.path: what was expected``.
Time ranges are ``{from, to}`` everywhere, like the CLI's ``--from`` / ``--to``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from mlmon.config.alerts import AlertsConfigError, AlertsSpec
from mlmon.config.explainability import (ExplainabilityConfig, ExplainabilitySpec, FairnessConfig, FairnessSpec,
                                         parse_explainability, parse_fairness)
from mlmon.config.loader import read_yaml
from mlmon.config.performance import PerformanceSpec, warn_old_reference
from mlmon.config.prometheus import ExporterSettings, ExporterSpec
from mlmon.config.values import (Bool, ConfigError, Duration, Int1, Int20, KeyPath, Number, Probability,
                                 Section, Text, Where, config_error, describe, fail, given, is_name, list_or_mapping,
                                 one_of, parse_duration, segments_to_monitor)
from mlmon.metrics.registry import DRIFT_METRIC_NAMES
from mlmon.metrics.thresholds import (CORRECTIONS, DEFAULT_ALPHA, DEFAULT_MIN_ROWS, DEFAULT_RULES, Correction, Policy,
                                      Rule, default_policy)
from mlmon_logging import contract

__all__ = ["Config", "ConfigError", "DriftConfig", "ModelConfig", "MlmonYaml", "Where", "explainability_config",
           "fairness_config", "json_schema", "load", "parse", "parse_duration", "render_schema"]

T = TypeVar("T")
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_LATENESS = timedelta(minutes=1)
SECTIONS = ("drift", "performance", "fairness", "explainability", "alerts")
#: Drift metrics a threshold can be set for: the drift metric registry's names (a live view: a metric
#: registered at run time is accepted too), not a list of their own here.
DRIFT_METRICS: AbstractSet[str] = DRIFT_METRIC_NAMES


@dataclass(frozen=True)
class DriftConfig:
    #: Feature names (not dotted); empty = every feature of the reference profile.
    features: tuple[str, ...] = ()
    prediction: bool = True
    policy: Policy = field(default_factory=default_policy)
    segments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    version: str | None = None
    reference: str | None = None
    window: timedelta = DEFAULT_WINDOW
    lateness: timedelta = DEFAULT_LATENESS
    drift: DriftConfig = field(default_factory=DriftConfig)
    #: The file has a ``drift:`` section (even an empty one): drift is wanted, so no reference profile is an error.
    drift_configured: bool = False
    #: Parsed sections of other jobs (PerformanceConfig, FairnessConfig, ...), by section name.
    sections: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...]
    store: str | None = None
    path: str = "<config>"
    #: What ``mlmon serve-metrics`` exports (the ``prometheus:`` section).
    prometheus: ExporterSettings = field(default_factory=ExporterSettings.defaults)


# --- the typed model of the file -------------------------------------------------------------------

class DriftThreshold(Section):
    """Warning / alert levels of one drift metric; a level left out keeps the metric's default."""

    warning: Number | None = Field(default=None, description="warning level (null: none)")
    alert: Number | None = Field(default=None, description="alert level (null: none; not below warning)")
    gated: Bool | None = Field(default=None, description="also need the field's test to be significant (default: true)")

    def rule(self, metric: str) -> Rule:
        base = DEFAULT_RULES.get(metric, Rule(None, None))
        return Rule(self.warning if given(self, "warning") else base.warning,
                    self.alert if given(self, "alert") else base.alert,
                    relative=base.relative, gated=base.gated if self.gated is None else self.gated, source="config")


Thresholds = dict[str, DriftThreshold | None]


def _thresholds_schema(schema: dict[str, Any]) -> None:
    schema["propertyNames"] = {"enum": sorted(DRIFT_METRICS)}  # when the schema is made: registered metrics too



def _known_metrics(raw: Any, at: KeyPath = ()) -> Any:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise fail(f"expected a mapping metric -> {{warning, alert}}, got {describe(raw)}", at=at or None)
    for metric in raw:
        if metric not in DRIFT_METRICS:
            raise fail(f"unknown metric {metric!r}; expected one of {', '.join(sorted(DRIFT_METRICS))}",
                       at=(*at, str(metric)))
    return raw


def _rules(thresholds: Thresholds) -> dict[str, Rule]:
    return {m: (spec or DriftThreshold()).rule(m) for m, spec in thresholds.items()}


class DriftSpec(Section):
    """Drift of features and predictions against the reference profile."""

    features: dict[str, Thresholds | None] = Field(
        default={}, description="default: every feature of the reference; a list of names, or a mapping "
                        "name -> per-feature thresholds", json_schema_extra=list_or_mapping(
                            {"type": "array", "items": {"type": "string", "pattern": contract.NAME_PATTERN}}))
    prediction: Bool = Field(default=True, description="drift of scores / predicted labels too")
    thresholds: Thresholds = Field(default={}, description="metric -> {warning, alert, gated}; metrics left out keep "
                                                   "their default rule", json_schema_extra=_thresholds_schema)
    min_rows: Int1 = Field(default=DEFAULT_MIN_ROWS, description="smaller windows: insufficient_data")
    alpha: Probability = Field(default=DEFAULT_ALPHA, description="significance level of the gating tests")
    correction: Correction = Field(default="holm", description="multiple-testing correction across a window's tests")
    calibrate: Bool = Field(default=False, description="thresholds from resampling the reference at the window's size")
    calibration_samples: Int20 = Field(default=200, description="resamples of the reference when calibrating")
    segments: dict[str, list[str]] = Field(
        default={}, description="also per value of mlmon.segment.<name>: {name: [values]}",
        json_schema_extra={"additionalProperties": {"type": "array", "minItems": 1}})

    @field_validator("features", mode="before")
    @classmethod
    def _features(cls, raw: Any) -> Any:
        if raw is None:
            return {}
        if isinstance(raw, list):
            for i, name in enumerate(raw):
                if not is_name(name):
                    raise fail(f"{name!r} is not a feature name (letters, digits, '_' or '-')", at=i)
            return {name: None for name in raw}
        if not isinstance(raw, Mapping):
            raise fail("expected a list of feature names or a mapping name -> thresholds")
        for name, spec in raw.items():
            if not is_name(name):
                raise fail(f"{name!r} is not a feature name (letters, digits, '_' or '-')", at=str(name))
            _known_metrics(spec, (str(name),))
        return raw

    @field_validator("thresholds", mode="before")
    @classmethod
    def _metrics(cls, raw: Any) -> Any:
        return _known_metrics(raw)

    @field_validator("correction", mode="before")
    @classmethod
    def _correction(cls, value: Any) -> Any:
        return one_of(CORRECTIONS)(value)

    @field_validator("segments", mode="before")
    @classmethod
    def _segments(cls, raw: Any) -> Any:
        return segments_to_monitor(raw)

    @model_validator(mode="after")
    def _ordered(self) -> DriftSpec:
        for at, thresholds in [(("thresholds",), self.thresholds),
                               *((("features", f), t) for f, t in self.features.items() if t)]:
            for metric, rule in _rules(thresholds).items():
                if rule.warning is not None and rule.alert is not None and rule.alert < rule.warning:
                    raise fail(f"alert ({rule.alert}) must not be below warning ({rule.warning})", at=(*at, metric))
        return self

    def resolve(self) -> DriftConfig:
        rules = dict(DEFAULT_RULES)
        rules.update(_rules(self.thresholds))
        policy = Policy(rules=rules, per_feature={f: _rules(t) for f, t in self.features.items() if t is not None},
                        min_rows=self.min_rows, alpha=self.alpha, correction=self.correction,
                        calibrate=self.calibrate, calibration_samples=self.calibration_samples)
        return DriftConfig(features=tuple(self.features), prediction=self.prediction, policy=policy,
                           segments={k: tuple(v) for k, v in self.segments.items()})


class ModelSpec(Section):
    """One monitored model (the key is the model name of its logged events)."""

    version: Text | None = Field(default=None, description="events and reference of this model version "
                                                   "(default: the latest reference)")
    reference: Text | None = Field(default=None, description="a reference profile id (default: the latest for "
                                                     "model/version)")
    window: Duration = Field(default="1h", validate_default=True, description="length of a window (30s, 5m, 1h, 1d)")
    lateness: Duration = Field(default="1m", validate_default=True, description="wait this long after a window ends "
                                                                        "for late events")
    drift: DriftSpec | None = Field(default=None, description="drift of features and predictions")
    performance: PerformanceSpec | None = Field(default=None, description="performance against delayed labels")
    fairness: FairnessSpec | None = Field(default=None, description="gaps between groups of sensitive attributes")
    explainability: ExplainabilitySpec | None = Field(default=None, description="drift of feature attributions")
    alerts: AlertsSpec | None = Field(default=None, description="alert rules and the webhook")

    @field_validator(*SECTIONS, mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value  # `performance:` with nothing under it is an empty section

    def resolve(self, name: str) -> ModelConfig:
        sections: dict[str, Any] = {s: spec.resolve() for s in SECTIONS[1:]
                                    if (spec := getattr(self, s)) is not None}
        return ModelConfig(name=name, version=self.version, reference=self.reference, window=self.window,
                           lateness=self.lateness, drift=(self.drift or DriftSpec()).resolve(),
                           drift_configured=self.drift is not None, sections=sections)


class MlmonYaml(Section):
    """mlmon.yaml: which models mlmon monitors, and how."""

    model_config = ConfigDict(title="mlmon.yaml")

    store: str | None = Field(default=None, description="store URL: duckdb:///mlmon.duckdb or https://host:9200 "
                                                "(--store overrides)")
    prometheus: ExporterSpec | None = Field(default=None, description="what mlmon serve-metrics exports")
    models: dict[str, ModelSpec | None] = Field(description="model name -> how to monitor it (null: the defaults)",
                                         json_schema_extra={"propertyNames": {"pattern": contract.NAME_PATTERN},
                                                            "minProperties": 1})

    _required = {"models": "a mapping model name -> how to monitor it, e.g. models: {churn: {}}"}

    @field_validator("store", mode="before")
    @classmethod
    def _store(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise fail(f"expected a store URL string, got {value!r}")
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, raw: Any) -> Any:
        if raw is not None and not isinstance(raw, Mapping):
            raise fail(f"expected a mapping model name -> its monitoring, got {describe(raw)}")
        if not raw:
            raise fail("no models configured")
        for name in raw:
            if not is_name(str(name)):
                raise fail("model names use letters, digits, '_' and '-'", at=str(name))
        return {str(name): {} if spec is None else spec for name, spec in raw.items()}

    def resolve(self, path: str) -> Config:
        return Config(models=tuple((spec or ModelSpec()).resolve(name) for name, spec in self.models.items()),
                      store=self.store, path=path,
                      prometheus=self.prometheus.resolve() if self.prometheus else ExporterSettings.defaults())


# --- loading ----------------------------------------------------------------------------------------

def not_utf8(err: UnicodeDecodeError) -> str:
    """What a user reads of a file that is not UTF-8 text, and the fix."""
    return f"not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); save it as UTF-8"


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{p}: {not_utf8(err)}") from err
    raw, lines = read_yaml(text, str(p))
    return parse(raw, str(p), lines=lines)


def parse(raw: Any, file: str = "<config>", *, lines: Mapping[KeyPath, int] | None = None) -> Config:
    """Validate a parsed ``mlmon.yaml``. ``lines``: the line of each key path, for error messages."""
    _warn_deprecated(raw, file, lines or {})
    try:
        return MlmonYaml.model_validate(raw).resolve(file)
    except ValidationError as err:
        first = err.errors()[0]["loc"] if err.errors() else ()
        kind = AlertsConfigError if first[2:3] == ("alerts",) else ConfigError
        raise config_error(err, file, (), lines, kind=kind) from None


def _warn_deprecated(raw: Any, file: str, lines: Mapping[KeyPath, int]) -> None:
    models = raw.get("models") if isinstance(raw, Mapping) else None
    for name, spec in models.items() if isinstance(models, Mapping) else ():
        if isinstance(spec, Mapping):
            key = ("models", str(name), "performance")
            warn_old_reference(spec.get("performance"), key, lines.get((*key, "reference")), file)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``mlmon.yaml`` (for editors: YAML language servers read it)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **MlmonYaml.model_json_schema()}


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


# --- sections of a ModelConfig built in code -------------------------------------------------------

def explainability_config(model: ModelConfig, file: str = "<config>") -> ExplainabilityConfig | None:
    """The model's parsed ``explainability`` section (parsing it here if it was given as a raw mapping)."""
    return _section(model, "explainability", parse_explainability, ExplainabilityConfig, file)


def fairness_config(model: ModelConfig, file: str = "<config>") -> FairnessConfig | None:
    return _section(model, "fairness", parse_fairness, FairnessConfig, file)


def _section(model: ModelConfig, name: str, parser: Callable[[Mapping[str, Any], Where], T], kind: type[T],
             file: str) -> T | None:
    value = model.sections.get(name)
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        return parser(value, Where(file, f"models.{model.name}.{name}"))
    raise TypeError(f"model {model.name}: section {name} holds {type(value).__name__}, not a mapping")
