"""Metric and alert documents for the report tests, made the way the jobs make them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from mlmon.core.documents import MetricDocument, Threshold

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def doc(family: str, metric: str, i: int, value: float | None, status: str, *, feature: str = "",
        class_label: str = "", segment: tuple[str, str] = ("", ""), maturity: str | None = None,
        threshold: Threshold | None = Threshold(0.1, 0.2), n: int = 1000, details: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    return MetricDocument(
        model="churn", model_version="3", family=family, metric=metric, feature=feature,  # type: ignore[arg-type]
        class_label=class_label, segment_field=segment[0], segment_value=segment[1],
        window_start=T0 + i * HOUR, window_end=T0 + (i + 1) * HOUR, value=value, status=status,  # type: ignore[arg-type]
        n_current=n, run_id="r", code_version="t", maturity=maturity,  # type: ignore[arg-type]
        threshold=threshold, details=details or {},
    ).to_source()


def alert(i: int, action: str, metric: str, family: str, *, feature: str = "", class_label: str = "",
          segment: tuple[str, str] = ("", ""), series: str = "s1", status: str = "alert") -> dict[str, Any]:
    end = T0 + (i + 1) * HOUR
    return {"@timestamp": end.isoformat().replace("+00:00", "Z"),
            "alert": {"id": f"{series}-{i}-{action}", "series_id": series, "action": action,
                      "status": {"previous": "ok", "new": status}, "reason": f"{action}: {metric} is {status}",
                      "windows": {"bad": 2, "considered": 3}, "rule": {"id": family}},
            "mlmon": {"model": {"name": "churn", "version": "3"}},
            "metric": {"family": family, "name": metric, "feature": feature, "class": class_label,
                       "segment": {"field": segment[0], "value": segment[1]}, "value": 0.5},
            "window": {"start": (end - HOUR).isoformat(), "end": end.isoformat()}}
