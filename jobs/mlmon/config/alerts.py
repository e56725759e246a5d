"""Alert rules and the ``alerts:`` section of mlmon.yaml.

Shape (per model, all keys optional)::

    alerts:
      enabled: true
      renotify_every: 24h          # default for every rule
      use_default_rules: true      # append DEFAULT_RULES after the rules below
      webhook:
        url: https://hooks.example.com/mlmon
        timeout_seconds: 5         # one POST in all (connect, send, the whole answer)
        round_timeout_seconds: 30  # all of this webhook's POSTs in one round; the rest wait for the next
        max_attempts: 4            # POSTs per round for a transient failure (429, 5xx, no connection)
        retry_backoff: 1m          # a failed alert is tried again on a later round, this long after,
        max_retry_backoff: 1h      #   doubling up to this
        expire_after: 1d           # then given up: logged and counted as expired
        headers: {Authorization: "Bearer ..."}
      rules:
        - id: drift-critical-features
          families: [drift]
          features: [age, income]  # fnmatch patterns; default ["*"]
          metrics: ["*"]
          min_status: warning      # warning | alert (default alert)
          n_of_m: [2, 3]           # bad in at least 2 of the last 3 windows
          renotify_every: 12h      # or "never"
          notify_recovery: true

A series is handled by the FIRST rule that matches it, so a specific user rule
placed before the defaults replaces the default for that series instead of
notifying twice.

The defaults are chosen not to cry wolf: only ``alert`` status counts, a single
bad window never fires (2 of the last 3 for drift and performance), and a
still-bad series is re-notified once a day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, WithJsonSchema, field_validator, model_validator

from mlmon.core.alerts import SeriesKey
from mlmon.config.values import (DURATION_PATTERN, Bool, ConfigError, Duration, Section, Where, config_error,
                                 duration, fail, given, json_list, prefix_of)
from mlmon.core.documents import SEVERITY

_FAMILIES: tuple[str, ...] = ("drift", "data_quality", "prediction_drift", "performance", "estimated_performance",
                              "label_coverage", "explainability", "fairness", "volume")
_MIN_STATUSES: tuple[str, ...] = ("warning", "alert")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


class AlertsConfigError(ConfigError):
    """An invalid ``alerts:`` section; the message names the file and the key."""


@dataclass(frozen=True)
class Rule:
    id: str
    families: tuple[str, ...]
    metrics: tuple[str, ...] = ("*",)
    features: tuple[str, ...] = ("*",)
    min_status: str = "alert"
    n: int = 1
    m: int = 1
    renotify_every: timedelta | None = timedelta(hours=24)
    notify_recovery: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.n <= self.m:
            raise ValueError(f"rule {self.id!r}: need 1 <= n <= m, got n={self.n}, m={self.m}")
        if self.min_status not in _MIN_STATUSES:
            raise ValueError(f"rule {self.id!r}: min_status must be one of {_MIN_STATUSES}")

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def matches(self, series: SeriesKey) -> bool:
        return (series.family in self.families
                and any(fnmatchcase(series.metric, p) for p in self.metrics)
                and any(fnmatchcase(series.feature, p) for p in self.features))

    def is_bad(self, status: str) -> bool:
        return SEVERITY.get(status, 0) >= SEVERITY[self.min_status]


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("drift", ("drift", "prediction_drift"), n=2, m=3, name="Data drift"),
    Rule("data-quality", ("data_quality",), n=2, m=3, name="Data quality"),
    Rule("performance", ("performance", "estimated_performance"), n=2, m=3, name="Performance drop"),
    # Coverage that stays low for three windows in a row means labels stopped arriving.
    Rule("label-coverage", ("label_coverage",), n=3, m=3, name="Label coverage stalled"),
    Rule("volume", ("volume",), n=2, m=2, name="Event volume drop"),
    Rule("fairness", ("fairness",), n=2, m=3, name="Fairness gap"),
    Rule("explainability", ("explainability",), n=2, m=3, name="Attribution drift"),
)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"expected a non-empty string, got {value!r}")
    if not re.match(r"^https?://[^/\s]+", value):
        raise fail(f"expected an http(s) URL, got {value!r}")
    return value


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise fail(f"expected a number of seconds in (0, 300], got {value!r}")
    return float(value)


def _round_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise fail(f"expected a number of seconds in (0, 3600], got {value!r}")
    return float(value)


def _attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise fail(f"expected an integer in [1, 10], got {value!r}")
    return value


def _headers(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(f"expected a mapping, got {type(value).__name__}")
    for name, val in value.items():
        if not isinstance(val, str) or not val:
            raise fail(f"expected a non-empty string, got {val!r}", at=str(name))
    return {str(k): v for k, v in value.items()}


class WebhookConfig(Section):
    """Where alerts are POSTed (JSON): each alert is kept in the store's outbox and retried on later
    rounds until the webhook accepts it (2xx) or it expires."""

    url: Annotated[str, BeforeValidator(_url)] = Field(description="an http(s) URL",
                                                        json_schema_extra={"pattern": r"^https?://[^/\s]+"})
    timeout_seconds: Annotated[float, BeforeValidator(_timeout)] = Field(
        default=5.0, gt=0, le=300, description="one POST in all: connect, send and the whole answer, in (0, 300]")
    round_timeout_seconds: Annotated[float, BeforeValidator(_round_timeout)] = Field(
        default=30.0, gt=0, le=3600, description="all of this webhook's POSTs in one round, in (0, 3600]; "
                                                 "alerts not sent by then wait for the next round")
    max_attempts: Annotated[int, BeforeValidator(_attempts)] = Field(
        default=4, ge=1, le=10, description="POSTs per round for a transient failure (429, 5xx, no connection), "
                                            "in [1, 10]")
    retry_backoff: Duration = Field(default="1m", validate_default=True,
                                    description="wait before trying a failed alert again on a later round; "
                                                "doubles after each failed round")
    max_retry_backoff: Duration = Field(default="1h", validate_default=True,
                                        description="the longest wait between two rounds' tries")
    expire_after: Duration = Field(default="1d", validate_default=True,
                                   description="give up an alert not delivered this long after it fired "
                                               "(logged and counted as expired)")
    headers: Annotated[dict[str, str], BeforeValidator(_headers)] = Field(
        default_factory=dict, description="extra HTTP headers, e.g. {Authorization: Bearer ...}")


@dataclass(frozen=True)
class AlertsConfig:
    enabled: bool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES
    webhook: WebhookConfig | None = None

    def rule_for(self, series: SeriesKey) -> Rule | None:
        """The first rule that matches the series, if any."""
        return next((r for r in self.rules if r.matches(series)), None)


def _renotify(value: Any) -> timedelta | None:
    if value == "never" or value is None or isinstance(value, timedelta):
        return None if value == "never" else value
    if not isinstance(value, str) or not value:
        raise fail(f"expected a non-empty string, got {value!r}")
    try:
        return duration(value)
    except ValueError as err:
        raise fail(f"{err} (or 'never')") from None


def _strings(value: Any) -> Any:
    if isinstance(value, str | bytes) or not isinstance(value, list):
        raise fail(f"expected a list, got {type(value).__name__}")
    if not value:
        raise fail("expected at least one entry")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            raise fail(f"expected a non-empty string, got {v!r}", at=i)
    return value


def _n_of_m(value: Any) -> Any:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise fail(f"expected a list, got {type(value).__name__}")
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise fail(f"expected [n, m] (two integers), got {value!r}")
    n, m = value
    if not 1 <= n <= m <= 1000:
        raise fail(f"need 1 <= n <= m <= 1000, got n={n}, m={m}")
    return (n, m)


def _families(value: Any) -> Any:
    families = _strings(value)
    for i, fam in enumerate(families):
        if fam not in _FAMILIES:
            raise fail(f"unknown family {fam!r}; one of {', '.join(_FAMILIES)}", at=i)
    return families


_RENOTIFY_SCHEMA = {"anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, {"const": "never"}],
                    "examples": ["12h", "1d", "never"]}
Renotify = Annotated[timedelta | None, BeforeValidator(_renotify), WithJsonSchema(_RENOTIFY_SCHEMA)]
Strings = Annotated[list[str], BeforeValidator(_strings)]


class RuleSpec(Section):
    """One alert rule; a series is handled by the first rule that matches it."""

    id: str = Field(description="lowercase letters, digits, '-' or '_' (unique)",
                    json_schema_extra={"pattern": _RULE_ID.pattern})
    name: str | None = Field(default=None, description="shown in notifications (default: the id)",
                             json_schema_extra={"minLength": 1})
    families: Annotated[list[str], BeforeValidator(_families)] = Field(
        description="metric families the rule watches", json_schema_extra={"items": {"enum": json_list(_FAMILIES)},
                                                                           "minItems": 1})
    metrics: Strings = Field(default=["*"], description="metric names (fnmatch patterns)", validate_default=True)
    features: Strings = Field(default=["*"], description="feature names (fnmatch patterns)", validate_default=True)
    min_status: str = Field(default="alert", description="the least status that counts as bad",
                            json_schema_extra={"enum": json_list(_MIN_STATUSES)})
    n_of_m: Annotated[tuple[int, int], BeforeValidator(_n_of_m)] = Field(
        default=(1, 1), description="bad in at least n of the last m windows (1 <= n <= m <= 1000)")
    renotify_every: Renotify = Field(default=None, description="re-notify a still-bad series this often, or 'never' "
                                                       "(default: the section's renotify_every)")
    notify_recovery: Bool = Field(default=True, description="notify when the series is good again")

    _required = {"id": "a rule id (lowercase letters, digits, '-' or '_')",
                 "families": f"one or more of {', '.join(_FAMILIES)}"}

    @field_validator("id", "name", mode="before")
    @classmethod
    def _string(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise fail(f"expected a non-empty string, got {value!r}")
        return value

    @field_validator("id", mode="after")
    @classmethod
    def _rule_id(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise fail(f"{value!r} must be lowercase letters, digits, '-' or '_'")
        return value

    @field_validator("min_status", mode="before")
    @classmethod
    def _min_status(cls, value: Any) -> Any:
        if value not in _MIN_STATUSES:
            raise fail(f"expected 'warning' or 'alert', got {value!r}")
        return value

    def resolve(self, renotify: timedelta | None) -> Rule:
        n, m = self.n_of_m
        return Rule(id=self.id, name=self.name or "", families=tuple(self.families), metrics=tuple(self.metrics),
                    features=tuple(self.features), min_status=self.min_status, n=n, m=m,
                    renotify_every=self.renotify_every if given(self, "renotify_every") else renotify,
                    notify_recovery=self.notify_recovery)


class AlertsSpec(Section):
    """Who is notified of what: rules over the metric series, and a webhook."""

    enabled: Bool = Field(default=True, description="evaluate the rules and notify")
    renotify_every: Renotify = Field(default="24h", validate_default=True,
                                     description="default of every rule: re-notify a still-bad series this often, "
                                                 "or 'never'")
    use_default_rules: Bool = Field(default=True, description="append the default rules after the rules below")
    webhook: WebhookConfig | None = Field(default=None, description="POST alerts to this URL")
    rules: list[RuleSpec] = Field(default=[], description="checked in order before the default rules")

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, list):
            raise fail(f"expected a list, got {type(value).__name__}")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> AlertsSpec:
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise fail(f"duplicate rule id {rule.id!r} (also rules[{seen[rule.id]}])", at=("rules", i, "id"))
            seen[rule.id] = i
        return self

    def resolve(self) -> AlertsConfig:
        rules = [r.resolve(self.renotify_every) for r in self.rules]
        if self.use_default_rules:
            ids = {r.id for r in rules}
            rules += [_with_renotify(r, self.renotify_every) for r in DEFAULT_RULES if r.id not in ids]
        return AlertsConfig(enabled=self.enabled, rules=tuple(rules), webhook=self.webhook)


def parse_alerts_config(section: Mapping[str, Any] | None, *, source: str, key: str = "alerts") -> AlertsConfig:
    """Validate and parse one model's ``alerts:`` section.

    ``source`` is the config file's path and ``key`` the section's dotted path in
    it (e.g. ``models.churn.alerts``); both appear in every error message.
    """
    if section is None:
        return AlertsConfig()
    try:
        return AlertsSpec.model_validate(section).resolve()
    except ValidationError as err:
        raise config_error(err, source, prefix_of(Where(source, key)), kind=AlertsConfigError) from None


def _with_renotify(rule: Rule, renotify: timedelta | None) -> Rule:
    return Rule(rule.id, rule.families, rule.metrics, rule.features, rule.min_status, rule.n, rule.m,
                renotify, rule.notify_recovery, rule.name)
