"""The values the alert engine works with: series keys, alerts, notification state."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from mlmon.core.documents import MetricDocument, iso

Action = Literal["fired", "escalated", "renotified", "recovered"]
#: An outbox entry's state: ``pending`` until a channel accepted it, or ``expired`` once given up.
DeliveryState = Literal["pending", "delivered", "expired"]


@dataclass(frozen=True, order=True)
class SeriesKey:
    """What a metric measures, without the window: one time series of metric documents."""

    model: str
    model_version: str
    family: str
    metric: str
    feature: str = ""
    class_label: str = ""
    segment_field: str = ""
    segment_value: str = ""

    @classmethod
    def of(cls, doc: MetricDocument) -> SeriesKey:
        return cls(doc.model, doc.model_version, doc.family, doc.metric, doc.feature, doc.class_label,
                   doc.segment_field, doc.segment_value)

    def describe(self) -> str:
        """Short human form, e.g. ``churn v3 drift/psi feature=age``."""
        parts = [f"{self.model} v{self.model_version}", f"{self.family}/{self.metric}"]
        if self.feature:
            parts.append(f"feature={self.feature}")
        if self.class_label:
            parts.append(f"class={self.class_label}")
        if self.segment_field:
            parts.append(f"{self.segment_field}={self.segment_value}")
        return " ".join(parts)


@dataclass(frozen=True)
class LastNotification:
    """The most recent alert a rule raised for a series: the engine's only memory.

    Derived from the newest stored alert document of (rule, series), so the
    engine itself stays stateless and a restart loses nothing.
    """

    action: Action
    window_end: datetime
    #: Metric status at the time of that notification (for escalation).
    status: str

    @property
    def firing(self) -> bool:
        return self.action != "recovered"


@dataclass(frozen=True)
class Alert:
    """One notification: a (rule, series) changed state, or is still bad after the re-notify interval."""

    rule_id: str
    rule_name: str
    action: Action
    series: SeriesKey
    metric: MetricDocument  # the metric document of the window that caused it
    previous_status: str    # metric status of the preceding window ("" for the first window seen)
    bad_windows: int
    considered_windows: int
    fired_at: datetime

    @property
    def series_id(self) -> str:
        """Identifies (rule, series): the key under which the engine's memory is read back."""
        return series_id(self.rule_id, self.series)

    @property
    def id(self) -> str:
        """Deterministic: rule, series, window and action. Re-running a window fires nothing new."""
        return _hash(self.series_id, iso(self.metric.window_start), iso(self.metric.window_end), self.action)

    @property
    def reason(self) -> str:
        m = self.metric
        th = m.threshold
        limit = ""
        if th is not None:
            bounds = [f"{name} {v:g}" for name, v in (("warning", th.warning), ("alert", th.alert)) if v is not None]
            limit = f" ({th.direction}: {', '.join(bounds)})" if bounds else ""
        value = "n/a" if m.value is None else f"{m.value:.4g}"
        return (f"{self.action}: {self.series.describe()} is {m.status}{limit}, value {value}, "
                f"window {iso(m.window_start)}..{iso(m.window_end)}; "
                f"{self.bad_windows} of the last {self.considered_windows} windows bad [rule {self.rule_id}]")

    def to_source(self) -> dict[str, Any]:
        """The alert as stored (nested; field names in :data:`mlmon.core.alert_schema.ALERT_FIELDS`)."""
        m = self.metric
        th = m.threshold
        return {
            "@timestamp": iso(m.window_end),
            "alert": {
                "id": self.id,
                "series_id": self.series_id,
                "source": "mlmon-jobs",
                "action": self.action,
                "rule": {"id": self.rule_id, "name": self.rule_name},
                "status": {"previous": self.previous_status, "new": m.status},
                "fired_at": iso(self.fired_at),
                "reason": self.reason,
                "group": "",
                "windows": {"bad": self.bad_windows, "considered": self.considered_windows},
            },
            "mlmon": {"model": {"name": m.model, "version": m.model_version}},
            "metric": {
                "id": m.id,
                "family": m.family,
                "name": m.metric,
                "feature": m.feature,
                "class": m.class_label,
                "segment": {"field": m.segment_field, "value": m.segment_value},
                "value": m.value,
                "maturity": m.maturity,
                "threshold": None if th is None else {
                    "warning": th.warning, "alert": th.alert, "direction": th.direction},
            },
            "window": {"start": iso(m.window_start), "end": iso(m.window_end)},
        }


@dataclass(frozen=True)
class SeriesWindow:
    """One window of a series as the engine judges it: its status, without the metric document.

    The store reads these for the context of the "N of M" rules; a full document is
    only built for a window that raises an alert.
    """

    series: SeriesKey
    window_start: datetime
    window_end: datetime
    status: str
    computed_at: datetime
    metric_id: str


@dataclass(frozen=True)
class Delivery:
    """An outbox entry: one alert's notification on one channel, kept until delivered or expired.

    Written with the alert (same transaction on DuckDB), so a crash between storing and
    sending loses nothing; ``payload`` and ``alert_id`` (the receiver's idempotency key)
    are the same on every attempt.
    """

    alert_id: str
    channel: str
    model: str
    series_id: str
    window_end: datetime
    payload: Mapping[str, Any]
    created_at: datetime
    expires_at: datetime
    next_attempt_at: datetime
    state: DeliveryState = "pending"
    #: Delivery rounds that tried it (each round may POST more than once for transient errors).
    attempts: int = 0
    last_error: str = ""
    delivered_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.alert_id}:{self.channel}"

    @classmethod
    def of(cls, alert: Alert, channel: str, *, created_at: datetime, expires_at: datetime) -> Delivery:
        return cls(alert_id=alert.id, channel=channel, model=alert.series.model, series_id=alert.series_id,
                   window_end=alert.metric.window_end, payload=alert_payload(alert), created_at=created_at,
                   expires_at=expires_at, next_attempt_at=created_at)

    def delivered(self, at: datetime) -> Delivery:
        return replace(self, state="delivered", attempts=self.attempts + 1, delivered_at=at, last_error="")

    def failed(self, error: str, retry_at: datetime) -> Delivery:
        """A failed round: retried at ``retry_at``, or expired when that is past the expiry."""
        state: DeliveryState = "expired" if retry_at >= self.expires_at else "pending"
        return replace(self, state=state, attempts=self.attempts + 1, last_error=error[:1000],
                       next_attempt_at=retry_at)

    def expired(self, error: str) -> Delivery:
        return replace(self, state="expired", last_error=error[:1000] or self.last_error)


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body a channel sends: ``text`` for Slack-style hooks, ``alert`` the full document."""
    return {"text": alert.reason, "alert": alert.to_source()}


def series_id(rule_id: str, series: SeriesKey) -> str:
    s = series
    return _hash(rule_id, s.model, s.model_version, s.family, s.metric, s.feature, s.class_label,
                 s.segment_field, s.segment_value)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
