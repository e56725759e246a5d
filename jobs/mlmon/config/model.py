"""``mlmon.yaml``: which models to monitor and how, validated with errors naming the file and key.

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
        performance: {...}             # sections of other jobs: see SECTION_PARSERS

Sections other than ``drift`` are parsed by the job that owns them: it adds
its parser to :data:`SECTION_PARSERS`; until then the raw mapping is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mlmon.config.values import (ConfigError, Where, boolean, integer_at_least, mapping_of, no_unknown_keys,
                                 optional_float, optional_str, parse_duration, probability)
from mlmon.metrics.thresholds import (CORRECTIONS, DEFAULT_ALPHA, DEFAULT_MIN_ROWS, DEFAULT_RULES, Policy, Rule,
                                     default_policy)
from mlmon.config.alerts import section_parser as alerts_section
from mlmon.config.explainability import ExplainabilityConfig, FairnessConfig, parse_explainability, parse_fairness
from mlmon.config.performance import parse_performance
from mlmon_logging import contract

T = TypeVar("T")
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_LATENESS = timedelta(minutes=1)
SECTIONS = ("drift", "performance", "fairness", "explainability", "alerts")


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
    #: Parsed sections of other jobs (performance, fairness, ...), by section name.
    sections: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...]
    store: str | None = None
    path: str = "<config>"


#: Parsers of the other sections: ``(raw mapping, Where) -> parsed object``. Raise ConfigError via ``where.fail``.
SectionParser = Callable[[Mapping[str, Any], "Where"], Any]
SECTION_PARSERS: dict[str, SectionParser] = {
    "performance": parse_performance,
    "explainability": parse_explainability,
    "fairness": parse_fairness,
    "alerts": alerts_section,
}


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read: {err.strerror}") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from err
    return parse(raw, str(p))


def parse(raw: Any, file: str = "<config>") -> Config:
    root = Where(file, "")
    top = mapping_of(raw, Where(file, "(top level)"))
    no_unknown_keys(top, {"store", "models"}, Where(file, "(top level)"))
    store = top.get("store")
    if store is not None and not isinstance(store, str):
        raise root.at("store").fail(f"expected a store URL string, got {store!r}")
    models_raw = mapping_of(top.get("models"), root.at("models"))
    if not models_raw:
        raise root.at("models").fail("no models configured")
    models = tuple(_model(str(name), spec, root.at("models").at(str(name))) for name, spec in models_raw.items())
    return Config(models=models, store=store, path=file)


def _model(name: str, spec: Any, where: Where) -> ModelConfig:
    if not re.match(contract.NAME_PATTERN, name):
        raise where.fail("model names use letters, digits, '_' and '-'")
    body = mapping_of(spec if spec is not None else {}, where)
    no_unknown_keys(body, {"version", "reference", "window", "lateness", *SECTIONS}, where)
    sections: dict[str, Any] = {}
    for section in SECTIONS[1:]:
        if section in body:
            raw = mapping_of(body[section], where.at(section))
            parser = SECTION_PARSERS.get(section)
            sections[section] = parser(raw, where.at(section)) if parser else raw
    window = parse_duration(body["window"], where.at("window")) if "window" in body else DEFAULT_WINDOW
    lateness = parse_duration(body["lateness"], where.at("lateness")) if "lateness" in body else DEFAULT_LATENESS
    return ModelConfig(
        name=name,
        version=optional_str(body.get("version"), where.at("version")),
        reference=optional_str(body.get("reference"), where.at("reference")),
        window=window,
        lateness=lateness,
        drift=_drift(body.get("drift") or {}, where.at("drift")),
        sections=sections,
    )


def _drift(raw: Any, where: Where) -> DriftConfig:
    body = mapping_of(raw, where)
    no_unknown_keys(body, {"features", "prediction", "thresholds", "min_rows", "alpha", "correction", "calibrate",
                           "calibration_samples", "segments"}, where)
    features: tuple[str, ...] = ()
    per_feature: dict[str, dict[str, Rule]] = {}
    feats = body.get("features")
    if isinstance(feats, list):
        features = tuple(_feature_name(f, where.at("features")) for f in feats)
    elif isinstance(feats, Mapping):
        features = tuple(_feature_name(f, where.at("features")) for f in feats)
        for fname, fspec in feats.items():
            fw = where.at("features").at(str(fname))
            per_feature[str(fname)] = _rules(fspec or {}, fw)
    elif feats is not None:
        raise where.at("features").fail("expected a list of feature names or a mapping name -> thresholds")
    rules = dict(DEFAULT_RULES)
    rules.update(_rules(body.get("thresholds") or {}, where.at("thresholds")))
    correction = body.get("correction", "holm")
    if correction not in CORRECTIONS:
        raise where.at("correction").fail(f"expected one of {', '.join(CORRECTIONS)}, got {correction!r}")
    policy = Policy(
        rules=rules,
        per_feature=per_feature,
        min_rows=integer_at_least(body.get("min_rows", DEFAULT_MIN_ROWS), where.at("min_rows"), minimum=1),
        alpha=probability(body.get("alpha", DEFAULT_ALPHA), where.at("alpha")),
        correction=correction,
        calibrate=boolean(body.get("calibrate", False), where.at("calibrate")),
        calibration_samples=integer_at_least(body.get("calibration_samples", 200), where.at("calibration_samples"),
                                             minimum=20),
    )
    segments: dict[str, tuple[str, ...]] = {}
    for seg, values in mapping_of(body.get("segments") or {}, where.at("segments")).items():
        sw = where.at("segments").at(str(seg))
        if not re.match(contract.NAME_PATTERN, str(seg)):
            raise sw.fail("segment names use letters, digits, '_' and '-' (the field is mlmon.segment.<name>)")
        if not isinstance(values, list) or not values:
            raise sw.fail("expected a non-empty list of segment values to monitor")
        segments[str(seg)] = tuple(str(v) for v in values)
    return DriftConfig(features=features, prediction=boolean(body.get("prediction", True), where.at("prediction")),
                       policy=policy, segments=segments)


_KNOWN_METRICS = {"wasserstein", "ks", "psi", "jensen_shannon", "hellinger", "mean_shift", "chi_square",
                  "l_infinity", "missing_share", "out_of_range_share", "unseen_share"}


def _rules(raw: Any, where: Where) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for metric, spec in mapping_of(raw, where).items():
        mw = where.at(str(metric))
        if metric not in _KNOWN_METRICS:
            raise mw.fail(f"unknown metric; expected one of {', '.join(sorted(_KNOWN_METRICS))}")
        body = mapping_of(spec, mw)
        no_unknown_keys(body, {"warning", "alert", "gated"}, mw)
        base = DEFAULT_RULES.get(str(metric), Rule(None, None))
        warning = optional_float(body.get("warning", base.warning), mw.at("warning"))
        alert = optional_float(body.get("alert", base.alert), mw.at("alert"))
        if warning is not None and alert is not None and alert < warning:
            raise mw.fail(f"alert ({alert}) must not be below warning ({warning})")
        out[str(metric)] = Rule(warning, alert, relative=base.relative,
                                gated=boolean(body.get("gated", base.gated), mw.at("gated")), source="config")
    return out


def _feature_name(value: Any, where: Where) -> str:
    if not isinstance(value, str) or not re.match(contract.NAME_PATTERN, value):
        raise where.fail(f"{value!r} is not a feature name (letters, digits, '_' or '-')")
    return value


def explainability_config(model: ModelConfig, file: str = "<config>") -> ExplainabilityConfig | None:
    """The model's parsed ``explainability`` section (parsing it here if the config was loaded before registration)."""
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
