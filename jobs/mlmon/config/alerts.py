"""Alert rules and the ``alerts:`` section of mlmon.yaml.

Shape (per model, all keys optional)::

    alerts:
      enabled: true
      renotify_every: 24h          # default for every rule
      use_default_rules: true      # append DEFAULT_RULES after the rules below
      webhook:
        url: https://hooks.example.com/mlmon
        timeout_seconds: 5
        max_attempts: 4
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from mlmon.core.alerts import SeriesKey
from mlmon.config.values import ConfigError, Where, parse_duration
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


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    timeout_seconds: float = 5.0
    max_attempts: int = 4
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertsConfig:
    enabled: bool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES
    webhook: WebhookConfig | None = None

    def rule_for(self, series: SeriesKey) -> Rule | None:
        """The first rule that matches the series, if any."""
        return next((r for r in self.rules if r.matches(series)), None)


def parse_alerts_config(section: Mapping[str, Any] | None, *, source: str, key: str = "alerts") -> AlertsConfig:
    """Validate and parse one model's ``alerts:`` section.

    ``source`` is the config file's path and ``key`` the section's dotted path in
    it (e.g. ``models.churn.alerts``); both appear in every error message.
    """
    if section is None:
        return AlertsConfig()
    p = _Parser(source)
    sec = p.mapping(section, key, {"enabled", "renotify_every", "use_default_rules", "webhook", "rules"})
    renotify = p.renotify(sec.get("renotify_every", "24h"), f"{key}.renotify_every")
    user_rules = [p.rule(r, f"{key}.rules[{i}]", renotify)
                  for i, r in enumerate(p.sequence(sec.get("rules", []), f"{key}.rules"))]
    seen: dict[str, int] = {}
    for i, rule in enumerate(user_rules):
        if rule.id in seen:
            raise p.error(f"{key}.rules[{i}].id", f"duplicate rule id {rule.id!r} (also rules[{seen[rule.id]}])")
        seen[rule.id] = i
    rules = list(user_rules)
    if p.boolean(sec.get("use_default_rules", True), f"{key}.use_default_rules"):
        rules += [_with_renotify(r, renotify) for r in DEFAULT_RULES if r.id not in seen]
    webhook = sec.get("webhook")
    return AlertsConfig(
        enabled=p.boolean(sec.get("enabled", True), f"{key}.enabled"),
        rules=tuple(rules),
        webhook=None if webhook is None else p.webhook(webhook, f"{key}.webhook"),
    )


def section_parser(raw: Mapping[str, Any], where: Where) -> AlertsConfig:
    """The ``alerts`` entry of :data:`mlmon.config.model.SECTION_PARSERS`."""
    return parse_alerts_config(raw, source=where.file, key=where.key)


def _with_renotify(rule: Rule, renotify: timedelta | None) -> Rule:
    return Rule(rule.id, rule.families, rule.metrics, rule.features, rule.min_status, rule.n, rule.m,
                renotify, rule.notify_recovery, rule.name)


class _Parser:
    """Small typed readers that turn a wrong value into an error naming file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, message: str) -> AlertsConfigError:
        return AlertsConfigError(f"{self.source}: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.error(f"{key}.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
        return value

    def sequence(self, value: Any, key: str) -> Sequence[Any]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise self.error(key, f"expected a list, got {type(value).__name__}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        items = self.sequence(value, key)
        if not items:
            raise self.error(key, "expected at least one entry")
        return tuple(self.string(v, f"{key}[{i}]") for i, v in enumerate(items))

    def renotify(self, value: Any, key: str) -> timedelta | None:
        if value == "never":
            return None
        try:
            return parse_duration(self.string(value, key), Where(self.source, key))
        except ConfigError as exc:
            raise AlertsConfigError(f"{exc} (or 'never')") from None

    def rule(self, value: Any, key: str, renotify: timedelta | None) -> Rule:
        r = self.mapping(value, key, {"id", "name", "families", "metrics", "features", "min_status", "n_of_m",
                                      "renotify_every", "notify_recovery"})
        if "id" not in r:
            raise self.error(f"{key}.id", "required")
        rule_id = self.string(r["id"], f"{key}.id")
        if not _RULE_ID.match(rule_id):
            raise self.error(f"{key}.id", f"{rule_id!r} must be lowercase letters, digits, '-' or '_'")
        if "families" not in r:
            raise self.error(f"{key}.families", f"required; one or more of {', '.join(_FAMILIES)}")
        families = self.strings(r["families"], f"{key}.families")
        for i, fam in enumerate(families):
            if fam not in _FAMILIES:
                raise self.error(f"{key}.families[{i}]", f"unknown family {fam!r}; one of {', '.join(_FAMILIES)}")
        min_status = r.get("min_status", "alert")
        if min_status not in _MIN_STATUSES:
            raise self.error(f"{key}.min_status", f"expected 'warning' or 'alert', got {min_status!r}")
        n, m = self.n_of_m(r.get("n_of_m", [1, 1]), f"{key}.n_of_m")
        return Rule(
            id=rule_id,
            name=self.string(r["name"], f"{key}.name") if "name" in r else "",
            families=families,
            metrics=self.strings(r.get("metrics", ["*"]), f"{key}.metrics"),
            features=self.strings(r.get("features", ["*"]), f"{key}.features"),
            min_status=min_status,
            n=n,
            m=m,
            renotify_every=self.renotify(r["renotify_every"], f"{key}.renotify_every")
            if "renotify_every" in r else renotify,
            notify_recovery=self.boolean(r.get("notify_recovery", True), f"{key}.notify_recovery"),
        )

    def n_of_m(self, value: Any, key: str) -> tuple[int, int]:
        pair = self.sequence(value, key)
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise self.error(key, f"expected [n, m] (two integers), got {value!r}")
        n, m = pair
        if not 1 <= n <= m <= 1000:
            raise self.error(key, f"need 1 <= n <= m <= 1000, got n={n}, m={m}")
        return n, m

    def webhook(self, value: Any, key: str) -> WebhookConfig:
        w = self.mapping(value, key, {"url", "timeout_seconds", "max_attempts", "headers"})
        if "url" not in w:
            raise self.error(f"{key}.url", "required")
        url = self.string(w["url"], f"{key}.url")
        if not re.match(r"^https?://[^/\s]+", url):
            raise self.error(f"{key}.url", f"expected an http(s) URL, got {url!r}")
        timeout = w.get("timeout_seconds", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
            raise self.error(f"{key}.timeout_seconds", f"expected a number of seconds in (0, 300], got {timeout!r}")
        attempts = w.get("max_attempts", 4)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise self.error(f"{key}.max_attempts", f"expected an integer in [1, 10], got {attempts!r}")
        headers = self.mapping(w.get("headers", {}), f"{key}.headers", set(w.get("headers", {}) or {}))
        for name, val in headers.items():
            self.string(val, f"{key}.headers.{name}")
        return WebhookConfig(url=url, timeout_seconds=float(timeout), max_attempts=attempts,
                             headers={str(k): str(v) for k, v in headers.items()})
