"""Lay a :class:`Report` out as one self-contained HTML page."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape
from typing import Any

from mlmon.core.documents import SEVERITY
from mlmon.outputs.report import charts
from mlmon.outputs.report.data import ModelReport, Report

#: Per family, how many series one chart shows at most (the worst ones).
MAX_SERIES = 8
MAX_ALERT_ROWS = 40
_FAMILY_TITLES: dict[str, str] = {
    "drift": "Data drift",
    "data_quality": "Data quality",
    "prediction_drift": "Prediction drift",
    "performance": "Performance (realised, from ground truth)",
    "estimated_performance": "Estimated performance (CBPE, before labels arrive)",
    "label_coverage": "Label coverage",
    "explainability": "Explainability",
    "fairness": "Fairness",
    "volume": "Volume",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin-bottom:0} .sub{color:#666;margin-top:4px}
section{margin:28px 0;border-top:1px solid #ddd;padding-top:8px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:8px} .chart svg{max-width:100%;height:auto}
.legend{font-size:12px;color:#555}
"""


def _badge(status: str) -> str:
    colour = charts.STATUS_COLOURS.get(status, "#607d8b")
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _series_key(m: dict[str, Any]) -> str:
    metric = m["metric"]
    parts = [metric.get("feature") or "", metric.get("class") or ""]
    seg = metric.get("segment") or {}
    if seg.get("field"):
        parts.append(f"{seg['field']}={seg.get('value', '')}")
    return " ".join(p for p in parts if p) or metric["name"]


def _chart(svg: str, name: str) -> str:
    return f'<div class="chart" data-chart="{escape(name)}">{svg}</div>'


def render(report: Report) -> str:
    body = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="sub">Generated {escape(report.generated_at.isoformat(timespec="seconds"))} '
        f"from <code>{escape(report.store)}</code>. Hollow markers: provisional values (labels still arriving); "
        "dashed lines: warning / alert thresholds.</p>",
    ]
    if not report.models:
        body.append("<p>No metric documents in this store yet: run <code>mlmon run</code> first.</p>")
    for model in report.models:
        body.append(_model_section(model))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def _model_section(model: ModelReport) -> str:
    out = [f'<section class="model"><h2>Model {escape(model.model)} · version {escape(model.version)}</h2>']
    out.append(_summary(model))
    out.append(_alerts(model))
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in model.metrics:
        by_family[m["metric"]["family"]].append(m)
    for family, title in _FAMILY_TITLES.items():
        docs = by_family.get(family)
        if not docs:
            continue
        out.append(f'<section class="family" data-family="{family}"><h3>{escape(title)}</h3>')
        if family in ("drift", "data_quality", "prediction_drift", "fairness"):
            out.append(_heatmap(docs, family))
        out.append(_worst_table(docs))
        out.append('<div class="charts">' + "".join(_metric_charts(docs)) + "</div>")
        if family == "drift" and model.distributions:
            out.append(_distributions(model))
        out.append("</section>")
    out.append("</section>")
    return "\n".join(out)


def _latest_window(model: ModelReport) -> list[dict[str, Any]]:
    if not model.metrics:
        return []
    last = max(m["window"]["end"] for m in model.metrics)
    return [m for m in model.metrics if m["window"]["end"] == last]


def _summary(model: ModelReport) -> str:
    latest = _latest_window(model)
    counts: dict[str, int] = defaultdict(int)
    for m in latest:
        counts[m["metric"]["status"]] += 1
    windows = sorted({m["window"]["end"] for m in model.metrics})
    cells = " ".join(f"{_badge(s)} {n}" for s, n in sorted(counts.items(), key=lambda kv: -SEVERITY.get(kv[0], 0)))
    span = f"{windows[0]} → {windows[-1]}" if windows else "no windows"
    return (f'<p class="summary">{len(windows)} windows ({escape(span)}), {len(model.metrics)} metric documents. '
            f"Latest window: {cells or 'nothing computed'}.</p>")


def _alerts(model: ModelReport) -> str:
    """Alerts that changed something (fired, escalated, recovered); reminders are only counted."""
    if not model.alerts:
        return '<h3>Alerts</h3><p class="alerts">No alerts raised.</p>'
    changes = [a for a in model.alerts if a.get("alert", {}).get("action") != "renotified"]
    reminders = len(model.alerts) - len(changes)
    rows = []
    for a in changes[:MAX_ALERT_ROWS]:
        metric = a.get("metric") or {}
        rows.append(
            f"<tr><td>{escape(str(a.get('@timestamp', '')))}</td><td>{escape(str(a.get('alert', {}).get('action', '')))}</td>"
            f"<td>{escape(str(metric.get('family', '')))}</td><td>{escape(_describe_alert(a))}</td>"
            f"<td>{_badge(_alert_status(a))}</td></tr>")
    more = f" {len(changes) - MAX_ALERT_ROWS} more not shown." if len(changes) > MAX_ALERT_ROWS else ""
    note = f"<p class=\"legend\">{reminders} reminder(s) for alerts still open are not listed.{more}</p>"
    return ('<h3>Alerts</h3><table class="alerts"><tr><th>window end</th><th>action</th><th>family</th><th>what</th>'
            "<th>status</th></tr>" + "".join(rows) + "</table>" + note)


def _alert_status(a: dict[str, Any]) -> str:
    status = (a.get("alert", {}).get("status") or {})
    if isinstance(status, dict) and isinstance(status.get("new"), str):
        return status["new"]
    return status if isinstance(status, str) else "alert"


def _describe_alert(a: dict[str, Any]) -> str:
    alert = a.get("alert", {})
    for key in ("reason", "message"):
        if isinstance(alert.get(key), str):
            return alert[key]
    return str({k: v for k, v in a.items() if k != "@timestamp"})[:200]


def _heatmap(docs: list[dict[str, Any]], family: str) -> str:
    worst: dict[tuple[str, datetime], str] = {}
    for m in docs:
        key = (_series_key(m), _ts(m["window"]["end"]))
        s = m["metric"]["status"]
        if key not in worst or SEVERITY.get(s, 0) > SEVERITY.get(worst[key], 0):
            worst[key] = s
    rows = sorted({k[0] for k in worst}, key=lambda r: -max(SEVERITY.get(v, 0) for (rr, _), v in worst.items() if rr == r))
    windows = sorted({k[1] for k in worst})
    return _chart(charts.status_heatmap(rows[:30], windows, worst, "Status by window (worst metric per row)"),
                  f"{family}-heatmap")


def _worst_table(docs: list[dict[str, Any]]) -> str:
    last = max(m["window"]["end"] for m in docs)
    latest = [m for m in docs if m["window"]["end"] == last and m["metric"]["status"] not in ("no_threshold",)]
    latest.sort(key=lambda m: (-SEVERITY.get(m["metric"]["status"], 0), -(m["metric"]["value"] or 0)))
    if not latest:
        return ""
    rows = "".join(
        f"<tr><td>{escape(_series_key(m))}</td><td>{escape(m['metric']['name'])}</td>"
        f"<td>{_fmt(m['metric']['value'])}</td>"
        f"<td>{_badge(m['metric']['status'])}</td><td>{escape(str(m['metric'].get('maturity') or ''))}</td>"
        f"<td>{m['n']['current']}</td></tr>" for m in latest[:12])
    return (f"<p class=\"legend\">Latest window ending {escape(last)}:</p><table class=\"worst\"><tr><th>series</th>"
            "<th>metric</th><th>value</th><th>status</th><th>maturity</th><th>n</th></tr>" + rows + "</table>")


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _metric_charts(docs: list[dict[str, Any]]) -> list[str]:
    by_metric: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in docs:
        by_metric[m["metric"]["name"]].append(m)
    out = []
    for name, ms in sorted(by_metric.items()):
        series: dict[str, list[charts.Point]] = defaultdict(list)
        for m in ms:
            v = m["metric"]["value"]
            if v is None:
                continue
            series[_series_key(m)].append((_ts(m["window"]["end"]), float(v), m["metric"].get("maturity") != "provisional"))
        if not series:
            continue
        worst = sorted(series, key=lambda k: -max(abs(p[1]) for p in series[k]))[:MAX_SERIES]
        th = next((m["metric"].get("threshold") for m in ms if m["metric"].get("threshold")), None) or {}
        title = name if len(series) <= MAX_SERIES else f"{name} (worst {MAX_SERIES} of {len(series)})"
        out.append(_chart(charts.time_series({k: series[k] for k in worst}, title, name,
                                             th.get("warning"), th.get("alert")), f"series-{name}"))
    return out


def _distributions(model: ModelReport) -> str:
    window = ""
    if model.distribution_window:
        window = f" (window {model.distribution_window[0]:%Y-%m-%d %H:%M} → {model.distribution_window[1]:%Y-%m-%d %H:%M})"
    return (f"<h4>Reference vs latest window{escape(window)}</h4><div class=\"charts\">"
            + "".join(_chart(charts.distribution(d), f"dist-{d.feature}") for d in model.distributions) + "</div>")
