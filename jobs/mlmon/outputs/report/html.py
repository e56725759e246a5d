"""Lay a :class:`Report` out as one self-contained HTML page.

Top to bottom per model: the summary (what drifted, since when, how bad; performance now vs the
reference; fairness and attribution over threshold; open alerts), the per-feature drift table,
the alerts, then one section per family with its charts. A contents bar links every part.
Charts are Vega-Lite specs drawn by the one inlined bundle (see :mod:`mlmon.outputs.report.charts`);
a Content-Security-Policy forbids any network request, so the file behaves the same offline.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from mlmon.outputs.report import charts
from mlmon.outputs.report.assets import CSS, INIT_JS, javascript_bundle
from mlmon.outputs.report.data import Distribution, ModelReport, Report
from mlmon.outputs.report.preview import sparkline
from mlmon.outputs.report.series import ALL_TRAFFIC, Doc, Series, group_series, has_threshold, segment_of, series_label, severity, ts, window_status
from mlmon.outputs.report.summary import (FeatureDrift, ModelSummary, alerting_series, describe_value, fmt_time,
                                          fmt_value, summarise)

#: Per chart, how many series it shows at most: the worst by the metric's direction, alerting ones first.
MAX_SERIES = 8
#: Heat map rows at most (the worst first); the rest are counted in the subtitle.
MAX_HEATMAP_ROWS = 40
MAX_ALERT_ROWS = 40
MAX_IMPORTANCE_ROWS = 15
FAMILIES: dict[str, str] = {
    "drift": "Data drift",
    "prediction_drift": "Prediction drift",
    "data_quality": "Data quality",
    "performance": "Performance",
    "label_coverage": "Label coverage and delay",
    "explainability": "Explainability",
    "fairness": "Fairness",
    "volume": "Volume",
}
NAV = {"drift": "drift", "prediction_drift": "predictions", "data_quality": "data quality",
       "performance": "performance", "label_coverage": "labels", "explainability": "explainability",
       "fairness": "fairness", "volume": "volume"}
#: Metrics charted up front per family; the family's other metrics go under "more".
PRIMARY: dict[str, tuple[str, ...]] = {
    "drift": ("wasserstein", "psi", "l_infinity", "drifted_fields_share"),
    "prediction_drift": ("wasserstein", "psi", "l_infinity"),
    "data_quality": ("missing_share", "out_of_range_share", "unseen_share"),
    "label_coverage": ("label_coverage", "label_delay_seconds"),
    "explainability": ("attribution_drift", "importance_shift", "ranking_ndcg"),
    "fairness": ("demographic_parity_difference", "equalized_odds_difference", "equal_opportunity_difference",
                 "disparate_impact_ratio"),
    "volume": ("rows", "explanations"),
}


class _Charts:
    """Numbers the charts of one page and keeps their specs (embedded once, at the end)."""

    def __init__(self) -> None:
        self.specs: list[tuple[str, dict[str, Any]]] = []

    def add(self, spec: dict[str, Any] | None, name: str, css: str = "chart") -> str:
        if spec is None:
            return ""
        sid = f"spec-{len(self.specs)}"
        self.specs.append((sid, spec))
        return f'<div class="{css}" data-chart="{escape(name)}" data-spec="{sid}"></div>'

    def scripts(self) -> str:
        return "".join(f'<script type="application/json" id="{sid}">{_json(spec)}</script>' for sid, spec in self.specs)


def _json(value: object) -> str:
    # "</" would end the script element early; "<\/" is the same string to JSON.parse.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def badge(status: str) -> str:
    return f'<span class="badge s-{escape(status)}">{escape(status.replace("_", " "))}</span>'


def render(report: Report) -> str:
    page = _Charts()
    summaries = [(m, summarise(m)) for m in report.models]
    body = [_header(report, summaries)]
    if not report.models:
        body.append("<p>No metric documents in this store for the range: run <code>mlmon run</code> "
                    "(or <code>mlmon backfill</code>) first.</p>")
    for model, summary in summaries:
        body.append(_model(model, summary, page))
    return document(report.title, "\n".join(body), page)


def document(title: str, body: str, page: _Charts) -> str:
    """A whole page: the body, its charts' specs, the inlined bundle; no network allowed (CSP)."""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>" + body + page.scripts()
            + f"<script>{javascript_bundle()}</script><script>{INIT_JS}</script></body></html>")


def chart_page(title: str, intro: str, specs: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A small page of a few charts (the API's per-feature views); ``intro`` is trusted HTML."""
    page = _Charts()
    charts_html = "".join(page.add(spec, name) for name, spec in specs)
    return document(title, f"<h2>{escape(title)}</h2>{intro}<div class=\"charts\">{charts_html}</div>", page)


def _header(report: Report, summaries: Sequence[tuple[ModelReport, ModelSummary]]) -> str:
    span = f"{fmt_time(report.start) if report.start else 'the first window'} to " \
           f"{fmt_time(report.end) if report.end else 'the last window'}"
    left_out = (f' <strong>{report.metrics_left_out:,} older metric documents were left out</strong> '
                '(read limit); narrow the range with --from/--to.' if report.metrics_left_out else "")
    links = []
    for m, _ in summaries:
        anchor = slug(f"{m.model}-{m.version}")
        families = {d["metric"]["family"] for d in m.metrics}
        parts = [f'<a href="#{anchor}"><b>{escape(m.model)} v{escape(m.version)}</b></a>',
                 f'<a href="#{anchor}-drift-table">features</a>', f'<a href="#{anchor}-alerts">alerts</a>']
        parts += [f'<a href="#{anchor}-{f}">{escape(NAV[f])}</a>' for f in FAMILIES if f in families]
        links.append('<span class="navmodel">' + " ".join(parts) + "</span>")
    return (f'<header><h1>{escape(report.title)}</h1><p class="sub">Store <code>{escape(report.store)}</code> · '
            f"range {escape(span)} · generated {escape(fmt_time(report.generated_at))}.{left_out}</p>"
            f'<nav class="contents">{"".join(links)}</nav></header>')


def _model(model: ModelReport, summary: ModelSummary, page: _Charts) -> str:
    anchor = slug(f"{model.model}-{model.version}")
    alerting = alerting_series(model.alerts)
    colours = _colours(model, alerting)
    by_family: dict[str, list[Doc]] = defaultdict(list)
    for d in model.metrics:
        by_family[d["metric"]["family"]].append(d)
    out = [f'<section class="model" id="{anchor}"><h2>Model {escape(model.model)} · version {escape(model.version)}</h2>',
           _summary(summary, model), _drift_table(summary, model.distributions, anchor),
           _alerts(model, anchor)]
    for family, title in FAMILIES.items():
        docs = by_family.get(family)
        if not docs:
            continue
        out.append(f'<section class="family" id="{anchor}-{family}" data-family="{family}"><h3>{escape(title)}</h3>')
        out.append(_family(family, docs, by_family, model, summary, page, colours, alerting))
        out.append("</section>")
    out.append("</section>")
    return "\n".join(out)


def _colours(model: ModelReport, alerting: set[tuple[str, str]]) -> dict[str, str]:
    """One colour per series label across the model's charts, the worst series first."""
    worst: dict[str, int] = defaultdict(int)
    for d in model.metrics:
        label = series_label(d)
        worst[label] = max(worst[label], severity(d["metric"]["status"]))
    alerting_labels = {label for _, label in alerting}
    order = sorted(worst, key=lambda lbl: (lbl not in alerting_labels, -worst[lbl], lbl))
    return charts.colours_for(order)


# --- the summary ---------------------------------------------------------------------------------


def _summary(s: ModelSummary, model: ModelReport) -> str:
    cards = [_drift_card(s), _performance_card(s), _alerts_card(s)]
    notes = "".join(f"<li>{escape(n)}</li>" for n in model.notes)
    return ('<div class="summary" data-summary>' + "".join(cards) + "</div>"
            + (f'<ul class="notes">{notes}</ul>' if notes else ""))


def _drift_card(s: ModelSummary) -> str:
    judged = [f for f in s.drift if f.status in ("ok", "warning", "alert")]
    drifted = sorted(s.drifted, key=lambda f: (-severity(f.status), f.feature))
    window = f" in the window ending {fmt_time(s.newest.evaluated_end)}" if s.newest and s.newest.evaluated_end else ""
    head = (f"<h4>What drifted</h4><p class=\"big\"><b>{len(drifted)}</b> of {len(judged)} features{escape(window)}</p>"
            if s.drift else "<h4>What drifted</h4><p>No drift documents in the range (no reference profile?).</p>")
    items = "".join(f'<li data-feature="{escape(f.feature)}">{badge(f.status)} <b>{escape(f.feature)}</b> since '
                    f"{escape(fmt_time(f.since))} · {escape(describe_value(f))}{_segment_note(s, f.feature)}</li>"
                    for f in drifted)
    pred = [f for f in s.prediction if f.status in ("warning", "alert")]
    pred_html = ("<p>Predictions: " + ", ".join(f"{badge(f.status)} {escape(f.feature)} since {escape(fmt_time(f.since))}"
                                                for f in pred) + "</p>") if pred else ""
    note = f'<p class="warn">{escape(s.newest.note)}</p>' if s.newest and s.newest.note else ""
    return f'<div class="card" data-card="drift">{head}<ul class="drifted">{items}</ul>{pred_html}{note}</div>'


def _segment_note(s: ModelSummary, feature: str) -> str:
    bad = [f for f in s.segments.get(feature, []) if f.status in ("warning", "alert")]
    if not bad:
        return ""
    return ' <span class="seg">(' + ", ".join(escape(f.segment) for f in bad) + ")</span>"


def _performance_card(s: ModelSummary) -> str:
    if not s.performance:
        return '<div class="card" data-card="performance"><h4>Performance</h4><p>No labelled performance documents.</p></div>'
    rows = []
    for p in s.performance:
        r = p.realised
        est = p.estimated["metric"] if p.estimated else None
        band = ""
        if est and (est.get("details") or {}).get("lower") is not None:
            band = f' <span class="dim">[{fmt_value(est["details"]["lower"])}, {fmt_value(est["details"]["upper"])}]</span>'
        worse = "".join(f"<div class=\"seg\">{badge(d['metric']['status'])} {escape(segment_of(d))} "
                        f"{fmt_value(d['metric']['value'])}</div>" for d in p.worse_segments)
        rows.append(
            f"<tr><td><b>{escape(p.name)}</b></td>"
            f"<td>{fmt_value(r['metric']['value']) if r else '-'}"
            f"{' <span class=dim>' + escape(r['metric'].get('maturity') or '') + '</span>' if r else ''}</td>"
            f"<td>{'-' if p.coverage is None else f'{p.coverage:.0%}'}</td>"
            f"<td>{fmt_value(est['value']) if est else '-'}{band}</td>"
            f"<td>{fmt_value(p.reference)}</td><td>{badge(p.status)}{worse}</td>"
            f"<td>{escape(fmt_time(p.since))}</td></tr>")
    when = next((fmt_time(ts(p.realised["window"]["end"])) for p in s.performance if p.realised), "-")
    return ('<div class="card" data-card="performance"><h4>Performance now vs reference</h4>'
            f'<p class="dim">realised: window ending {escape(when)}; estimated: newest window</p>'
            '<table><tr><th>metric</th><th>realised</th><th>labelled</th><th>estimated</th><th>reference</th>'
            "<th>status</th><th>since</th></tr>" + "".join(rows) + "</table></div>")


def _alerts_card(s: ModelSummary) -> str:
    by_family: dict[str, int] = defaultdict(int)
    for a in s.open_alerts:
        by_family[a.family] += 1
    counts = ", ".join(f"{escape(f)} {n}" for f, n in sorted(by_family.items()))
    findings = [("Fairness gaps over threshold", s.fairness), ("Attribution drift over threshold", s.attribution),
                ("Data quality over threshold", s.quality)]
    parts = [f"<h4>Open alerts</h4><p class=\"big\"><b>{len(s.open_alerts)}</b> <span class=dim>{counts}</span></p>"]
    for title, items in findings:
        if items:
            parts.append(f"<h4>{title}</h4><ul>" + "".join(
                f"<li>{badge(f.doc['metric']['status'])} {escape(f.doc['metric']['name'])} "
                f"{escape(f.label if f.label != ALL_TRAFFIC else '')} "
                f"{fmt_value(f.doc['metric']['value'])} since {escape(fmt_time(f.since))}</li>" for f in items[:4])
                + (f"<li class=dim>{len(items) - 4} more</li>" if len(items) > 4 else "") + "</ul>")
    return '<div class="card" data-card="alerts">' + "".join(parts) + "</div>"


# --- the drift table ------------------------------------------------------------------------------


def _drift_table(s: ModelSummary, distributions: Sequence[Distribution], anchor: str) -> str:
    if not s.drift and not s.prediction:
        return ""
    previews = {d.feature: d for d in distributions}
    head = ("<tr><th data-sort=text>feature</th><th data-sort=text>kind</th><th data-sort=text>statistic</th>"
            "<th data-sort=num>value</th><th data-sort=num>p (adjusted)</th><th>threshold</th>"
            "<th data-sort=num>status</th><th data-sort=text>since</th><th>reference vs current</th></tr>")
    rows = []
    for f in sorted([*s.drift, *s.prediction], key=lambda f: (-severity(f.status), f.feature)):
        segs = s.segments.get(f.feature, [])
        toggle = (f' <button class="expand" data-expand="{escape(slug(f.feature))}" title="segments">'
                  f"+{len(segs)}</button>") if segs else ""
        rows.append(_drift_row(f, toggle, previews.get(f.feature), ""))
        rows += [_drift_row(g, "", None, slug(f.feature)) for g in segs]
    return (f'<h3 id="{anchor}-drift-table">Per-feature drift <span class="dim">(click a header to sort, '
            '+N for segments)</span></h3><table class="drift sortable">' + head + "".join(rows) + "</table>")


def _drift_row(f: FeatureDrift, toggle: str, preview: Distribution | None, parent: str) -> str:
    det = f.details
    th = (f.decided_by or {}).get("metric", {}).get("threshold") or {}
    p_adj = det.get("p_adjusted")
    threshold = " / ".join(fmt_value(th.get(k)) for k in ("warning", "alert") if th.get(k) is not None)
    unit = " σ" if f.metric in ("wasserstein", "mean_shift") else ""
    name = f.feature if not parent else f"  {f.segment}"
    attrs = f' class="segrow" data-parent="{parent}" hidden' if parent else f' data-feature="{escape(f.feature)}"'
    test = str(det.get("test") or "")
    return (f"<tr{attrs}><td data-v=\"{escape(f.feature)}\">{escape(name)}{toggle}</td><td>{escape(f.kind)}</td>"
            f"<td>{escape(f.metric)}{' <span class=dim>(' + escape(test) + ' test)</span>' if test else ''}</td>"
            f"<td data-v=\"{f.value if f.value is not None else ''}\">{fmt_value(f.value)}{unit}</td>"
            f"<td data-v=\"{p_adj if p_adj is not None else ''}\">{_p(p_adj)}</td>"
            f"<td>{escape(threshold) or '-'}</td><td data-v=\"{severity(f.status)}\">{badge(f.status)}</td>"
            f"<td data-v=\"{f.since.isoformat() if f.since else ''}\">{escape(fmt_time(f.since))}</td>"
            f"<td>{sparkline(preview) if preview else ''}</td></tr>")


def _p(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return "< 1e-16" if value < 1e-16 else f"{value:.2g}"


# --- alerts -----------------------------------------------------------------------------------


def _alerts(model: ModelReport, anchor: str) -> str:
    """Alerts that changed something (fired, escalated, recovered), short; reminders only counted."""
    head = f'<h3 id="{anchor}-alerts">Alerts</h3>'
    if not model.alerts:
        return head + '<p class="alerts">No alerts raised in the range.</p>'
    from mlmon.outputs.report.summary import alert_subject

    changes = [a for a in model.alerts if a.get("alert", {}).get("action") != "renotified"]
    reminders = len(model.alerts) - len(changes)
    rows = []
    for a in changes[:MAX_ALERT_ROWS]:
        alert = a.get("alert", {})
        windows = alert.get("windows") or {}
        evidence = f"{windows.get('bad')} of {windows.get('considered')}" if windows.get("considered") else ""
        status = (alert.get("status") or {}).get("new") if isinstance(alert.get("status"), dict) else alert.get("status")
        rows.append(
            f"<tr><td>{escape(fmt_time(ts(a['@timestamp'])) if a.get('@timestamp') else '-')}</td>"
            f"<td>{escape(str(alert.get('action', '')))}</td><td>{escape(str((a.get('metric') or {}).get('family', '')))}</td>"
            f"<td>{escape(alert_subject(a))}</td><td>{badge(str(status or 'alert'))}</td><td>{escape(evidence)}</td>"
            f"<td><details><summary>why</summary>{escape(str(alert.get('reason') or alert.get('message') or ''))}"
            "</details></td></tr>")
    more = f" {len(changes) - MAX_ALERT_ROWS} older changes not listed." if len(changes) > MAX_ALERT_ROWS else ""
    note = f'<p class="dim">{reminders} reminder(s) for alerts still open are not listed.{more}</p>'
    return (head + '<table class="alerts"><tr><th>window end</th><th>action</th><th>family</th><th>what</th>'
            "<th>status</th><th>bad windows</th><th>reason</th></tr>" + "".join(rows) + "</table>" + note)


# --- per family -------------------------------------------------------------------------------


def _family(family: str, docs: list[Doc], by_family: dict[str, list[Doc]], model: ModelReport, s: ModelSummary,
            page: _Charts, colours: dict[str, str], alerting: set[tuple[str, str]]) -> str:
    out: list[str] = []
    anchor = slug(f"{model.model}-{model.version}")
    if family in ("drift", "data_quality", "fairness"):
        out.append(_heatmap(docs, family, page, anchor))
    if family == "performance":
        out.append(_performance_extras(docs, by_family, model, page, colours, alerting, anchor))
        primary = tuple(sorted({d["metric"]["name"] for d in docs if has_threshold(d)}))
    elif family == "explainability":
        out.append(_importance(docs, page, anchor))
        primary = PRIMARY[family]
    else:
        primary = PRIMARY.get(family, ())
    grouped = group_series(d for d in docs if d["metric"]["name"] != "confusion_matrix")
    first = [m for m in grouped if m in primary]
    rest = [m for m in grouped if m not in primary]
    out.append('<div class="charts">' + "".join(_series_chart(grouped[m], m, family, page, colours, alerting, anchor)
                                                for m in first) + "</div>")
    if family in ("drift", "prediction_drift") and model.distributions:
        out.append(_distributions(model, s, family, page, anchor))
    if rest:
        out.append(f"<details class=\"more\"><summary>{len(rest)} more {escape(family.replace('_', ' '))} metrics: "
                   f"{escape(', '.join(rest))}</summary><div class=\"charts\">"
                   + "".join(_series_chart(grouped[m], m, family, page, colours, alerting, anchor) for m in rest)
                   + "</div></details>")
    return "\n".join(out)


def _series_chart(series: list[Series], metric: str, family: str, page: _Charts, colours: dict[str, str],
                  alerting: set[tuple[str, str]], anchor: str) -> str:
    series = [s for s in series if s.values()]
    if not series:
        return ""
    shown = _worst(series, alerting)
    direction = "lowest" if shown[0].higher_is_better else "highest"
    subtitle = (f"worst {len(shown)} of {len(series)} series ({direction} values; alerting ones always shown) · "
                "click the legend to toggle, drag or scroll to zoom") if len(series) > len(shown) else \
        "click the legend to toggle a series, drag or scroll to zoom"
    subtitle += " · hollow points: provisional (labels still arriving)" if any(
        d["metric"].get("maturity") == "provisional" for s in shown for d in s.docs) else ""
    return page.add(charts.time_series(shown, metric, f"{metric}", colours, subtitle),
                    f"{anchor}-{family}-{metric}")


def _worst(series: list[Series], alerting: set[tuple[str, str]]) -> list[Series]:
    from mlmon.outputs.report.series import worst

    return worst(series, MAX_SERIES, keep=[s.label for s in series if (s.docs[0]["metric"]["name"], s.label) in alerting])


def _heatmap(docs: list[Doc], family: str, page: _Charts, anchor: str) -> str:
    """Series x windows, the worst status of the series' metrics per window (thresholded ones only)."""
    per: dict[tuple[str, str], list[Doc]] = defaultdict(list)
    for d in docs:
        if d["metric"].get("feature") or segment_of(d) or family == "fairness":
            label = series_label(d) if family != "fairness" else f"{d['metric']['name']} · {series_label(d)}"
            per[(label, d["window"]["end"])].append(d)
    status = {key: window_status(ds)[0] for key, ds in per.items()}
    if family == "fairness":
        status = {k: v for k, v in status.items() if v != "no_threshold"}
    rows_all = sorted({k[0] for k in status}, key=lambda r: (-max(severity(v) for (rr, _), v in status.items() if rr == r), r))
    windows = sorted({k[1] for k in status})
    if not rows_all:
        return ""
    rows = rows_all[:MAX_HEATMAP_ROWS]
    subtitle = "worst status of the row's thresholded metrics per window"
    if len(rows_all) > len(rows):
        subtitle += f"; the {len(rows)} worst of {len(rows_all)} rows shown"
    return page.add(charts.status_heatmap(rows, windows, status, "Status by window", subtitle),
                    f"{anchor}-{family}-heatmap", "chart wide")


def _distributions(model: ModelReport, s: ModelSummary, family: str, page: _Charts, anchor: str) -> str:
    prediction = family == "prediction_drift"
    chosen = [d for d in model.distributions if d.feature.startswith("prediction.") == prediction]
    if not chosen:
        return ""
    ranked = _rank_by_drift(s, chosen)
    window = ""
    if model.distribution_window:
        window = f" (window {fmt_time(model.distribution_window[0])} to {fmt_time(model.distribution_window[1])})"
    cells = "".join(page.add(charts.distribution(d), f"{anchor}-dist-{d.feature}", "chart small") for d in ranked[:12])
    more = f'<p class="dim">{len(ranked) - 12} more features: previews in the table above.</p>' if len(ranked) > 12 else ""
    return (f"<h4>Reference vs latest evaluated window{escape(window)}, most drifted first</h4>"
            f'<div class="charts">{cells}</div>{more}')


def _rank_by_drift(s: ModelSummary, dists: Iterable[Distribution]) -> list[Distribution]:
    status = {f.feature: (severity(f.status), f.value or 0.0) for f in [*s.drift, *s.prediction]}
    return sorted(dists, key=lambda d: tuple(-x for x in status.get(d.feature, (0, 0.0))))


def _performance_extras(docs: list[Doc], by_family: dict[str, list[Doc]], model: ModelReport, page: _Charts,
                        colours: dict[str, str], alerting: set[tuple[str, str]], anchor: str) -> str:
    out = []
    estimated = group_series(d for d in by_family.get("estimated_performance", []) if not segment_of(d))
    realised = group_series(d for d in docs if not segment_of(d))
    for metric in sorted({d["metric"]["name"] for d in docs if has_threshold(d)}):
        for est in estimated.get(metric, []):
            real = next((r for r in realised.get(metric, []) if r.label == est.label), None)
            label = f"{metric}" + (f" · {est.label}" if est.label != metric else "")
            out.append(page.add(charts.estimate_vs_realised(real, est, label), f"{anchor}-estimate-{slug(label)}"))
    periods = model.labelled
    out.append(page.add(charts.confusion_matrices(periods), f"{anchor}-confusion", "chart wide"))
    out.append(page.add(charts.roc_pr_curves(periods), f"{anchor}-roc-pr", "chart wide"))
    out.append(page.add(charts.error_histograms(periods), f"{anchor}-errors", "chart wide"))
    return '<div class="charts">' + "".join(out) + "</div>"


def _importance(docs: list[Doc], page: _Charts, anchor: str) -> str:
    """Latest vs reference importance shares, from the newest attribution-drift documents."""
    drift = [d for d in docs if d["metric"]["name"] == "attribution_drift" and not segment_of(d)
             and (d["metric"].get("details") or {}).get("share") is not None]
    if not drift:
        return ""
    last = max(d["window"]["end"] for d in drift)
    latest = [d for d in drift if d["window"]["end"] == last]
    rows = sorted(((d["metric"]["feature"], float(d["metric"]["details"]["share"]),
                    float(d["metric"]["details"].get("reference_share") or 0.0)) for d in latest),
                  key=lambda r: -max(r[1], r[2]))[:MAX_IMPORTANCE_ROWS]
    title = f"Feature importance, window ending {fmt_time(ts(last))} vs reference (top {len(rows)} of {len(latest)})"
    return page.add(charts.importance_bars(rows, title), f"{anchor}-importance", "chart wide")
