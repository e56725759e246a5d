"""Charts as Vega-Lite specifications, built with Altair.

Why Vega-Lite (through Altair): the report must be interactive where it helps (hover values, zoom on
time series, series toggled from the legend) yet stay one file that opens offline and stays small.
Vega-Lite specs are data, not code: Altair builds and validates them against the Vega-Lite schema, and
one inlined copy of Vega + Vega-Lite + vega-embed (``vl_convert.javascript_bundle()``, ~0.9 MB,
the same Vega-Lite version Altair targets) draws every chart. Plotly's inlined library alone is
~4.6 MB, most of the 5 MB budget; matplotlib SVG has no hover, zoom or toggling.

Conventions: the Okabe-Ito colour-blind-safe palette, one colour per series across a model's
charts (the caller passes the mapping), legends outside the plot, times in UTC and said so,
Wasserstein and mean shift in reference standard deviations, delays in hours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from mlmon.core.perf_stats import ClassificationStats, ScoreBins
from mlmon.outputs.report.data import CategoricalDistribution, LabelledPeriod, NumericDistribution
from mlmon.outputs.report.series import Series, has_threshold, ts
from mlmon.outputs.report.summary import fmt_time

Spec = dict[str, Any]

#: Okabe & Ito's palette (colour-blind safe) with Tol's wine instead of yellow, which is too faint on white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255")
#: Status -> colour, shared by heat maps and the HTML badges; "no data" and "no threshold" stay apart from ok.
STATUS_COLOURS: dict[str, str] = {
    "ok": "#009E73", "warning": "#E69F00", "alert": "#D55E00",
    "insufficient_data": "#8c8c8c", "no_threshold": "#d9d9d9", "no data": "#ffffff",
}
#: Units of metrics whose values are not plain ratios.
UNITS: dict[str, str] = {
    "wasserstein": "reference standard deviations (σ)",
    "mean_shift": "reference standard deviations (σ)",
    "label_delay_seconds": "hours",
    "rows": "predictions per window",
    "explanations": "explanations per window",
}
_SCALE_HOURS = {"label_delay_seconds": 1 / 3600}
#: Axis titles that say what a metric's value is better than its name does.
_TITLES = {"label_delay_seconds": "median label delay"}
WIDTH = 520
TIME_AXIS = alt.Axis(title="window end (UTC)", format="%m-%d %H:%M", labelAngle=-30)


def colours_for(labels: Sequence[str]) -> dict[str, str]:
    """One colour per label, in the given order (the worst first), cycling past the palette."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def _spec(chart: alt.TopLevelMixin) -> Spec:
    spec: Spec = chart.to_dict()
    return spec


def time_series(series: Sequence[Series], metric: str, title: str, colours: Mapping[str, str],
                subtitle: str = "") -> Spec:
    """One line per series; hollow points for provisional values; dashed threshold rules; zoom on x
    (drag, wheel), series toggled by clicking the legend, values on hover."""
    scale = _SCALE_HOURS.get(metric, 1.0)
    rows = []
    for s in series:
        for d in s.docs:
            m = d["metric"]
            if m["value"] is None:
                continue
            end = ts(d["window"]["end"])
            rows.append({"end": end.isoformat(), "when": fmt_time(end), "series": s.label,
                         "value": float(m["value"]) * scale, "status": m["status"],
                         "maturity": m.get("maturity") or "-", "n": d["n"]["current"],
                         "filled": "final" if m.get("maturity") != "provisional" else "provisional"})
    frame = pd.DataFrame(rows)
    labels = [s.label for s in series]
    series_scale = alt.Scale(domain=labels, range=[colours[lbl] for lbl in labels])
    colour = alt.Color("series:N", scale=series_scale, legend=alt.Legend(orient="right", title=None, labelLimit=260))
    pick = alt.selection_point(fields=["series"], bind="legend")
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    unit = UNITS.get(metric)
    name = _TITLES.get(metric, metric)
    y = alt.Y("value:Q", title=f"{name} ({unit})" if unit else name, scale=alt.Scale(zero=False))
    x = alt.X("end:T", axis=TIME_AXIS, scale=alt.Scale(type="utc"))
    base = alt.Chart(frame)
    lines = base.mark_line(strokeWidth=1.6).encode(
        x=x, y=y, color=colour, opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)))
    points = base.mark_point(size=30, filled=True, strokeWidth=1.3).encode(
        x=x, y=y, color=colour, stroke=alt.Stroke("series:N", scale=series_scale, legend=None),
        fill=alt.condition("datum.filled == 'provisional'", alt.value("white"),
                           alt.Fill("series:N", scale=series_scale, legend=None)),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
        tooltip=[alt.Tooltip("series:N"), alt.Tooltip("when:N", title="window end"),
                 alt.Tooltip("value:Q", format=".4g", title=metric), alt.Tooltip("status:N"),
                 alt.Tooltip("maturity:N"), alt.Tooltip("n:Q", title="rows")])
    layers: list[Any] = [lines.add_params(pick, zoom), points]
    rules = _threshold_rules(series, scale)
    if rules is not None:
        layers.append(rules)
    chart = alt.layer(*layers).resolve_scale(color="independent").properties(
        width=WIDTH, height=200, title=alt.Title(title, subtitle=subtitle or alt.Undefined, anchor="start"))
    return _spec(chart)


def _threshold_rules(series: Sequence[Series], scale: float) -> alt.Chart | None:
    """Dashed warning / alert levels, when every shown series shares them (else they would mislead)."""
    thresholds = [d["metric"]["threshold"] for s in series for d in s.docs if has_threshold(d)]
    levels = {(th.get("warning"), th.get("alert")) for th in thresholds}
    if len(levels) != 1 or not thresholds:
        return None
    th = thresholds[-1]
    rows = [{"level": name, "y": float(th[name]) * scale} for name in ("warning", "alert") if th.get(name) is not None]
    if not rows:
        return None
    return alt.Chart(pd.DataFrame(rows)).mark_rule(strokeDash=[4, 3], strokeWidth=1).encode(
        y="y:Q", color=alt.Color("level:N", scale=alt.Scale(domain=["warning", "alert"],
                                                            range=[STATUS_COLOURS["warning"], STATUS_COLOURS["alert"]]),
                                 legend=None),
        tooltip=[alt.Tooltip("level:N", title="threshold"), alt.Tooltip("y:Q", format=".4g", title="level")])


def status_heatmap(rows: Sequence[str], windows: Sequence[str], status: Mapping[tuple[str, str], str],
                   title: str, subtitle: str = "") -> Spec:
    """Rows x windows (window end, ISO), each cell coloured by its status; missing cells say "no data"."""
    cells = [{"row": r, "end": w, "when": fmt_time(ts(w)), "status": status.get((r, w), "no data")}
             for r in rows for w in windows]
    domain = list(STATUS_COLOURS)
    chart = alt.Chart(pd.DataFrame(cells)).mark_rect(stroke="#ffffff", strokeWidth=0.5).encode(
        x=alt.X("when:O", title="window end (UTC)", sort=None, axis=alt.Axis(labelAngle=-45, labelOverlap=True)),
        y=alt.Y("row:N", title=None, sort=list(rows), axis=alt.Axis(labelLimit=240)),
        color=alt.Color("status:N", scale=alt.Scale(domain=domain, range=[STATUS_COLOURS[s] for s in domain]),
                        legend=alt.Legend(orient="right", title="status")),
        tooltip=[alt.Tooltip("row:N", title="series"), alt.Tooltip("when:N", title="window end"),
                 alt.Tooltip("status:N")],
    ).properties(width=WIDTH, height=max(60, 14 * len(rows)), title=alt.Title(title, subtitle=subtitle or alt.Undefined,
                                                                             anchor="start"))
    return _spec(chart)


def numeric_distribution(d: NumericDistribution, max_bins: int = 40) -> Spec:
    """Reference vs current as densities (share per unit of the feature) over merged reference bins, so
    the reference shape shows even where its quantile bins are narrow; the open outer bins are stated."""
    edges = np.asarray(d.edges, dtype=float)
    ref = np.asarray(d.reference, dtype=float)
    cur = np.asarray(d.current, dtype=float)
    inner_ref, inner_cur = ref[1:-1], cur[1:-1]
    if len(edges) < 2:
        return _note_chart(d.feature, "a single reference value: no inner bins to draw")
    group = max(1, int(np.ceil(len(inner_ref) / max_bins)))
    cut = np.arange(0, len(inner_ref), group)
    lefts = edges[cut]
    rights = np.append(edges[cut[1:]], edges[-1])
    width = np.maximum(rights - lefts, np.finfo(float).tiny)
    rows = []
    for name, inner, total in (("reference", inner_ref, ref.sum()), ("current", inner_cur, cur.sum())):
        share = np.add.reduceat(inner, cut) / max(total, 1.0)
        for lo, hi, s, w in zip(lefts, rights, share, width):
            rows.append({"from": float(lo), "to": float(hi), "density": float(s / w), "share": float(s), "which": name})
    below = (ref[0] / max(ref.sum(), 1), cur[0] / max(cur.sum(), 1))
    above = (ref[-1] / max(ref.sum(), 1), cur[-1] / max(cur.sum(), 1))
    subtitle = (f"outside the reference range: below {below[0]:.1%} ref / {below[1]:.1%} current, "
                f"above {above[0]:.1%} ref / {above[1]:.1%} current")
    frame = pd.DataFrame(rows)
    colour = alt.Color("which:N", scale=alt.Scale(domain=["reference", "current"], range=["#999999", PALETTE[0]]),
                       legend=alt.Legend(orient="bottom", title=None))
    tooltip = [alt.Tooltip("which:N"), alt.Tooltip("from:Q", format=".4g"), alt.Tooltip("to:Q", format=".4g"),
               alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("density:Q", format=".3g")]
    refs = alt.Chart(frame).transform_filter("datum.which == 'reference'").mark_rect(opacity=0.45).encode(
        x=alt.X("from:Q", title=d.feature), x2="to:Q", y=alt.Y("density:Q", title="density (share per unit)"),
        y2=alt.datum(0), color=colour, tooltip=tooltip)
    curs = alt.Chart(frame).transform_filter("datum.which == 'current'").mark_line(interpolate="step-after",
                                                                                   strokeWidth=1.8).encode(
        x="from:Q", y="density:Q", color=colour, tooltip=tooltip)
    chart = alt.layer(refs, curs).properties(width=280, height=150, title=alt.Title(d.feature, subtitle=subtitle,
                                                                                    anchor="start", fontSize=12))
    return _spec(chart)


def categorical_distribution(d: CategoricalDistribution, top: int = 12) -> Spec:
    cats = sorted(set(d.reference) | set(d.current), key=lambda k: -(d.reference.get(k, 0) + d.current.get(k, 0)))
    shown = cats[:top]
    rt, ct = max(sum(d.reference.values()), 1), max(sum(d.current.values()), 1)
    rows = [{"category": k, "which": w, "share": src.get(k, 0) / tot}
            for k in shown for w, src, tot in (("reference", d.reference, rt), ("current", d.current, ct))]
    subtitle = f"{len(cats) - top} more categories not shown" if len(cats) > top else ""
    chart = alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=alt.X("category:N", sort=shown, title=d.feature, axis=alt.Axis(labelAngle=-30)),
        xOffset=alt.XOffset("which:N", sort=["reference", "current"]),
        y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%")),
        color=alt.Color("which:N", scale=alt.Scale(domain=["reference", "current"], range=["#999999", PALETTE[0]]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=[alt.Tooltip("category:N"), alt.Tooltip("which:N"), alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=280, height=150, title=alt.Title(d.feature, subtitle=subtitle or alt.Undefined, anchor="start",
                                                        fontSize=12))
    return _spec(chart)


def distribution(d: NumericDistribution | CategoricalDistribution) -> Spec:
    return numeric_distribution(d) if isinstance(d, NumericDistribution) else categorical_distribution(d)


def _note_chart(title: str, text: str) -> Spec:
    return _spec(alt.Chart(pd.DataFrame([{"t": text}])).mark_text(align="left").encode(text="t:N").properties(
        width=280, height=40, title=title))


def confusion_matrices(periods: Sequence[LabelledPeriod]) -> Spec | None:
    """Actual x predicted counts per period side by side, coloured by the share of the actual class."""
    panels = []
    for p in periods:
        c = p.classification
        if c is None or not c.confusion.classes:
            continue
        matrix = c.confusion.matrix()
        rows = []
        for i, actual in enumerate(c.confusion.classes):
            total = float(matrix[i].sum())
            for j, predicted in enumerate(c.confusion.classes):
                n = float(matrix[i][j])
                rows.append({"actual": actual, "predicted": predicted, "n": n, "share": n / total if total else 0.0})
        base = alt.Chart(pd.DataFrame(rows)).encode(
            x=alt.X("predicted:N", title="predicted class", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("actual:N", title="actual class"))
        cells = base.mark_rect().encode(
            color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                            legend=alt.Legend(title="share of actual class", format="%")),
            tooltip=[alt.Tooltip("actual:N"), alt.Tooltip("predicted:N"), alt.Tooltip("n:Q", format=",.0f"),
                     alt.Tooltip("share:Q", format=".1%")])
        text = base.mark_text(fontSize=12).encode(
            text=alt.Text("n:Q", format=",.0f"),
            color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")))
        total = float(matrix.sum())
        panels.append(alt.layer(cells, text).properties(width=150, height=150, title=alt.Title(
            f"{p.name} confusion matrix", subtitle=[f"{fmt_time(p.start)} to", f"{fmt_time(p.end)}, {total:,.0f} labelled"],
            anchor="start", fontSize=12)))
    if not panels:
        return None
    return _spec(alt.hconcat(*panels, spacing=30))


def _curves(bins: ScoreBins) -> tuple[list[float], list[float], list[float], list[float]]:
    """ROC (fpr, tpr) and precision-recall points from score bins, threshold sweeping down bin by bin."""
    pos = np.asarray(bins.positives)[::-1].cumsum()
    neg = np.asarray(bins.negatives)[::-1].cumsum()
    p_total, n_total = max(pos[-1], 1e-12), max(neg[-1], 1e-12)
    keep = np.r_[True, (np.diff(pos) + np.diff(neg)) > 0]  # empty bins add no point
    tpr = np.r_[0.0, (pos / p_total)[keep]]
    fpr = np.r_[0.0, (neg / n_total)[keep]]
    predicted = (pos + neg)[keep]
    precision = np.where(predicted > 0, pos[keep] / np.maximum(predicted, 1e-12), 1.0)
    return fpr.tolist(), tpr.tolist(), tpr[1:].tolist(), precision.tolist()


def roc_pr_curves(periods: Sequence[LabelledPeriod]) -> Spec | None:
    """ROC and precision-recall curves per period and class, from the score bins the label join keeps."""
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    for p in periods:
        c: ClassificationStats | None = p.classification
        if c is None:
            continue
        for cls, bins in c.scores.items():
            if bins.n_positive <= 0 or bins.n_negative <= 0:
                continue
            name = f"{p.name} (class {cls})"
            fpr, tpr, recall, precision = _curves(bins)
            roc += [{"curve": name, "fpr": x, "tpr": y, "order": i} for i, (x, y) in enumerate(zip(fpr, tpr))]
            pr += [{"curve": name, "recall": x, "precision": y, "order": i}
                   for i, (x, y) in enumerate(zip(recall, precision))]
    if not roc:
        return None
    names = sorted({str(r["curve"]) for r in roc}, key=lambda n: (not n.startswith("latest"), n))
    colour = alt.Color("curve:N", scale=alt.Scale(domain=names, range=list(PALETTE[:len(names)])),
                       legend=alt.Legend(orient="bottom", title=None))
    roc_chart = alt.Chart(pd.DataFrame(roc)).mark_line().encode(
        x=alt.X("fpr:Q", title="false positive rate", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("tpr:Q", title="true positive rate", scale=alt.Scale(domain=[0, 1])), order="order:Q", color=colour,
        tooltip=[alt.Tooltip("curve:N"), alt.Tooltip("fpr:Q", format=".3f"), alt.Tooltip("tpr:Q", format=".3f")],
    ).properties(width=240, height=220, title="ROC curve")
    pr_chart = alt.Chart(pd.DataFrame(pr)).mark_line().encode(
        x=alt.X("recall:Q", title="recall", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("precision:Q", title="precision", scale=alt.Scale(domain=[0, 1])), order="order:Q", color=colour,
        tooltip=[alt.Tooltip("curve:N"), alt.Tooltip("recall:Q", format=".3f"),
                 alt.Tooltip("precision:Q", format=".3f")],
    ).properties(width=240, height=220, title="Precision-recall curve")
    return _spec(alt.hconcat(roc_chart, pr_chart))


def error_histograms(periods: Sequence[LabelledPeriod]) -> Spec | None:
    """Regression: error (prediction - actual) histograms as shares, and mean predicted vs mean actual."""
    rows, means = [], []
    for p in periods:
        r = p.regression
        if r is None or r.n <= 0:
            continue
        mean_actual = r.shift + r.sum_actual / r.n
        means += [{"period": p.name, "what": "mean actual", "value": mean_actual},
                  {"period": p.name, "what": "mean predicted", "value": mean_actual + r.sum_error / r.n}]
        h = r.error_histogram
        if h is not None and h.total > 0:
            for lo, hi, n in zip(h.edges, h.edges[1:], h.counts):
                rows.append({"period": p.name, "from": lo, "to": hi, "share": n / h.total})
    if not means:
        return None
    bars = alt.Chart(pd.DataFrame(means)).mark_bar().encode(
        x=alt.X("what:N", title=None), xOffset="period:N", y=alt.Y("value:Q", title="target unit"),
        color=alt.Color("period:N", scale=alt.Scale(range=list(PALETTE)), legend=alt.Legend(orient="bottom")),
        tooltip=["period:N", "what:N", alt.Tooltip("value:Q", format=".4g")],
    ).properties(width=160, height=200, title="Predicted vs actual (means)")
    if not rows:
        return _spec(bars)
    hist = alt.Chart(pd.DataFrame(rows)).mark_line(interpolate="step-after").encode(
        x=alt.X("from:Q", title="error = prediction - actual (target unit)"),
        y=alt.Y("share:Q", title="share of labelled predictions", axis=alt.Axis(format="%")),
        color=alt.Color("period:N", scale=alt.Scale(range=list(PALETTE)), legend=alt.Legend(orient="bottom")),
        tooltip=["period:N", alt.Tooltip("from:Q", format=".4g"), alt.Tooltip("to:Q", format=".4g"),
                 alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=320, height=200, title="Error histogram")
    return _spec(alt.hconcat(hist, bars))


def estimate_vs_realised(realised: Series | None, estimated: Series, metric: str) -> Spec:
    """CBPE's estimate with its confidence band, and the realised value where labels arrived."""
    est_rows, real_rows = [], []
    for d in estimated.docs:
        m = d["metric"]
        if m["value"] is None:
            continue
        det = m.get("details") or {}
        end = ts(d["window"]["end"])
        est_rows.append({"end": end.isoformat(), "when": fmt_time(end), "value": m["value"],
                         "lower": det.get("lower", m["value"]), "upper": det.get("upper", m["value"]),
                         "which": "estimated (CBPE)"})
    for d in realised.docs if realised is not None else ():
        m = d["metric"]
        if m["value"] is None or m["status"] == "insufficient_data":
            continue
        end = ts(d["window"]["end"])
        real_rows.append({"end": end.isoformat(), "when": fmt_time(end), "value": m["value"], "which": "realised",
                          "maturity": m.get("maturity") or "-",
                          "coverage": (m.get("details") or {}).get("coverage")})
    colour = alt.Color("which:N", scale=alt.Scale(domain=["estimated (CBPE)", "realised"], range=[PALETTE[0], PALETTE[1]]),
                       legend=alt.Legend(orient="right", title=None))
    x = alt.X("end:T", axis=TIME_AXIS, scale=alt.Scale(type="utc"))
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    est = alt.Chart(pd.DataFrame(est_rows))
    band = est.mark_area(opacity=0.2, color=PALETTE[0]).encode(x=x, y=alt.Y("lower:Q", title=metric,
                                                                            scale=alt.Scale(zero=False)), y2="upper:Q")
    line = est.mark_line(point=True).encode(
        x=x, y="value:Q", color=colour,
        tooltip=[alt.Tooltip("when:N", title="window end"), alt.Tooltip("value:Q", format=".4g", title="estimate"),
                 alt.Tooltip("lower:Q", format=".4g"), alt.Tooltip("upper:Q", format=".4g")])
    layers: list[Any] = [band.add_params(zoom), line]
    if real_rows:
        layers.append(alt.Chart(pd.DataFrame(real_rows)).mark_line(point=True, strokeDash=[5, 2]).encode(
            x=x, y="value:Q", color=colour,
            tooltip=[alt.Tooltip("when:N", title="window end"), alt.Tooltip("value:Q", format=".4g", title="realised"),
                     alt.Tooltip("maturity:N")]))
    chart = alt.layer(*layers).properties(width=WIDTH, height=200, title=alt.Title(
        f"{metric}: estimated vs realised", subtitle="band: the estimate's 95% interval", anchor="start"))
    return _spec(chart)


def importance_bars(rows: Sequence[tuple[str, float, float]], title: str) -> Spec:
    """Feature importance shares, latest vs reference (rows: feature, latest share, reference share)."""
    data = [{"feature": f, "which": w, "share": v} for f, latest, ref in rows
            for w, v in (("latest", latest), ("reference", ref))]
    order = [r[0] for r in rows]
    chart = alt.Chart(pd.DataFrame(data)).mark_bar().encode(
        y=alt.Y("feature:N", sort=order, title=None),
        yOffset=alt.YOffset("which:N", sort=["reference", "latest"]),
        x=alt.X("share:Q", title="share of total |attribution|", axis=alt.Axis(format="%")),
        color=alt.Color("which:N", scale=alt.Scale(domain=["reference", "latest"], range=["#999999", PALETTE[0]]),
                        legend=alt.Legend(orient="right", title=None)),
        tooltip=["feature:N", "which:N", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=360, height=max(80, 22 * len(rows)), title=alt.Title(title, anchor="start"))
    return _spec(chart)
