"""Metric and alert documents as flat pandas DataFrames: one row per document, one column per field.

Columns: model, version, family, metric, feature, class, segment (``field=value``; "" for all
traffic), window_start / window_end (UTC timestamps), value, status, maturity, n_current,
n_reference, the threshold, method and id, then one ``details.<key>`` column per scalar detail
(lists and mappings stay in ``details``, as stored).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from mlmon.outputs.report.series import segment_of

METRIC_COLUMNS = ("model", "version", "family", "metric", "feature", "class", "segment", "segment_field",
                  "segment_value", "window_start", "window_end", "value", "status", "maturity", "n_current",
                  "n_reference", "threshold_warning", "threshold_alert", "threshold_direction", "method", "id",
                  "computed_at")
ALERT_COLUMNS = ("window_end", "action", "status", "previous_status", "model", "version", "family", "metric",
                 "feature", "class", "segment", "window_start", "value", "bad_windows", "considered_windows",
                 "rule", "reason", "fired_at", "series_id", "id")
_TIMES = ("window_start", "window_end", "computed_at", "fired_at")


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def metrics_frame(docs: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Stored metric documents (``MetricDocument.to_source()`` shape) as a flat DataFrame."""
    rows = []
    for d in docs:
        m = d["metric"]
        th = m.get("threshold") or {}
        seg = m.get("segment") or {}
        seg_field = str(seg.get("field") or "")
        seg_value = str(seg.get("value") or "") if seg_field else ""
        row: dict[str, Any] = {
            "model": d["mlmon"]["model"]["name"], "version": d["mlmon"]["model"]["version"], "family": m["family"],
            "metric": m["name"], "feature": m.get("feature") or "", "class": m.get("class") or "", "segment": segment_of(d),
            "segment_field": seg_field, "segment_value": seg_value,
            "window_start": d["window"]["start"], "window_end": d["window"]["end"], "value": m.get("value"),
            "status": m["status"], "maturity": m.get("maturity"), "n_current": (d.get("n") or {}).get("current"),
            "n_reference": (d.get("n") or {}).get("reference"), "threshold_warning": th.get("warning"),
            "threshold_alert": th.get("alert"), "threshold_direction": th.get("direction"),
            "method": m.get("method") or "", "id": m.get("id"), "computed_at": (d.get("job") or {}).get("computed_at"),
        }
        details = m.get("details") or {}
        row.update({f"details.{k}": v for k, v in details.items() if _scalar(v)})
        rest = {k: v for k, v in details.items() if not _scalar(v)}
        if rest:
            row["details"] = rest
        rows.append(row)
    return _typed(pd.DataFrame(rows, columns=_columns(rows, METRIC_COLUMNS)))


def alerts_frame(alerts: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Stored alert documents (newest first, as read) as a flat DataFrame."""
    rows = []
    for a in alerts:
        alert = a.get("alert") or {}
        m = a.get("metric") or {}
        status = alert.get("status")
        new, previous = (status.get("new"), status.get("previous")) if isinstance(status, Mapping) else (status, None)
        windows = alert.get("windows") or {}
        model = (a.get("mlmon") or {}).get("model") or {}
        rows.append({
            "window_end": a.get("@timestamp"), "action": alert.get("action"), "status": new,
            "previous_status": previous, "model": model.get("name"), "version": model.get("version"),
            "family": m.get("family"), "metric": m.get("name"), "feature": m.get("feature") or "",
            "class": m.get("class") or "", "segment": segment_of(a),
            "window_start": (a.get("window") or {}).get("start"), "value": m.get("value"),
            "bad_windows": windows.get("bad"), "considered_windows": windows.get("considered"),
            "rule": (alert.get("rule") or {}).get("id"), "reason": alert.get("reason") or alert.get("message"),
            "fired_at": alert.get("fired_at"), "series_id": alert.get("series_id"), "id": alert.get("id")})
    return _typed(pd.DataFrame(rows, columns=list(ALERT_COLUMNS)))


def _columns(rows: list[dict[str, Any]], fixed: tuple[str, ...]) -> list[str]:
    extra = sorted({k for r in rows for k in r} - set(fixed))
    return [*fixed, *extra]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for col in _TIMES:
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    for col in ("value", "threshold_warning", "threshold_alert"):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame
