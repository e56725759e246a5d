"""The answers first: per model version, what drifted, how performance compares with the reference,
which fairness gaps and attribution shifts are over their thresholds, which alerts are open, each
with "since when". Pure functions over a :class:`ModelReport`'s documents.

Every family is judged on its own newest *evaluated* window: a newest window with no traffic (or
too little to judge) is named as such, never summarised as "insufficient data" for everything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

from mlmon.outputs.report.data import ModelReport
from mlmon.outputs.report.series import ALL_TRAFFIC, JUDGED, Doc, has_threshold, segment_of, series_label, severity, since, ts, window_status

#: The window is "small" when it has less than this share of the range's median rows per window.
SMALL_WINDOW_SHARE = 0.5
BAD = ("warning", "alert")


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's (or prediction field's) drift in one window, as decided by its worst metric."""

    feature: str
    segment: str                 # "" = all traffic
    kind: str                    # "numeric" or "categorical"
    status: str
    decided_by: Doc | None       # the document whose status is the feature's (None: nothing judged)
    since: datetime | None       # first window of the run of windows in this status
    window_start: datetime
    window_end: datetime
    rows: int

    @property
    def metric(self) -> str:
        return "" if self.decided_by is None else str(self.decided_by["metric"]["name"])

    @property
    def value(self) -> float | None:
        return None if self.decided_by is None else self.decided_by["metric"]["value"]

    @property
    def details(self) -> dict[str, object]:
        return {} if self.decided_by is None else dict(self.decided_by["metric"].get("details") or {})


@dataclass(frozen=True)
class NewestWindow:
    """The newest window of a family and, when it could not be judged or is small, what that means."""

    start: datetime
    end: datetime
    rows: int
    evaluated_end: datetime | None   # newest window with a judgement (== end when the newest was judged)
    note: str = ""


@dataclass(frozen=True)
class PerformanceNow:
    metric: str
    class_label: str
    realised: Doc | None         # newest judged realised document (all traffic)
    coverage: float | None       # label coverage of that window
    estimated: Doc | None        # newest estimate (CBPE), usually of a younger window
    reference: float | None      # the metric over the labelled reference period
    since: datetime | None
    worse_segments: tuple[Doc, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.metric}[{self.class_label}]" if self.class_label else self.metric

    @property
    def status(self) -> str:
        return "no_data" if self.realised is None else str(self.realised["metric"]["status"])


@dataclass(frozen=True)
class Finding:
    """A series whose newest judged window is over a threshold (fairness, attribution, data quality)."""

    family: str
    label: str
    doc: Doc
    since: datetime | None


@dataclass(frozen=True)
class OpenAlert:
    family: str
    what: str
    status: str
    since: datetime              # window end of the alert that opened it
    reason: str


@dataclass
class ModelSummary:
    model: str
    version: str
    newest: NewestWindow | None = None
    drift: list[FeatureDrift] = field(default_factory=list)           # features, all traffic
    segments: dict[str, list[FeatureDrift]] = field(default_factory=dict)  # feature -> per segment value
    prediction: list[FeatureDrift] = field(default_factory=list)
    performance: list[PerformanceNow] = field(default_factory=list)
    fairness: list[Finding] = field(default_factory=list)
    attribution: list[Finding] = field(default_factory=list)
    quality: list[Finding] = field(default_factory=list)
    open_alerts: list[OpenAlert] = field(default_factory=list)

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.drift if f.status in BAD]

    def lines(self) -> list[str]:
        """Three lines: what drifted (since when, how bad); performance vs reference; alerts and gaps."""
        return [self.drift_line(), self.performance_line(), self.alerts_line()]

    def drift_line(self) -> str:
        head = f"{self.model} v{self.version}: "
        if not self.drift:
            return head + "drift: not computed (no reference profile or no drift documents in the range)"
        judged = [f for f in self.drift if f.status in JUDGED]
        drifted = sorted(self.drifted, key=lambda f: (-severity(f.status), f.feature))
        window = self.newest.evaluated_end if self.newest else None
        where = f" in the window ending {fmt_time(window)}" if window else ""
        if not drifted:
            text = f"no drift: 0 of {len(judged)} features drifted{where}"
        else:
            items = ", ".join(f"{f.feature} ({f.status} since {fmt_time(f.since)}, {describe_value(f)})"
                              for f in drifted)
            text = f"{len(drifted)} of {len(judged)} features drifted{where}: {items}"
        if self.newest and self.newest.note:
            text += f"; {self.newest.note}"
        return head + text

    def performance_line(self) -> str:
        if not self.performance:
            return "  performance: no labelled performance documents in the range"
        parts = []
        for p in self.performance:
            bits = []
            if p.realised is not None:
                r = p.realised
                cov = f", {p.coverage:.0%} labelled" if p.coverage is not None else ""
                bits.append(f"realised {fmt_value(r['metric']['value'])} ({r['metric']['status']}{cov}, "
                            f"window ending {fmt_time(ts(r['window']['end']))})")
            else:
                bits.append("realised: no labelled window yet")
            if p.estimated is not None:
                e = p.estimated["metric"]
                details = e.get("details") or {}
                band = (f" [{fmt_value(details['lower'])}, {fmt_value(details['upper'])}]"
                        if details.get("lower") is not None and details.get("upper") is not None else "")
                bits.append(f"estimated {fmt_value(e['value'])}{band}")
            if p.reference is not None:
                bits.append(f"reference {fmt_value(p.reference)}")
            if p.worse_segments:
                bits.append("worse in " + ", ".join(
                    f"{segment_of(d)} {fmt_value(d['metric']['value'])} ({d['metric']['status']})"
                    for d in p.worse_segments))
            parts.append(f"{p.name} " + ", ".join(bits))
        return "  performance: " + "; ".join(parts)

    def alerts_line(self) -> str:
        by_family: dict[str, int] = defaultdict(int)
        for a in self.open_alerts:
            by_family[a.family] += 1
        alerts = (f"{len(self.open_alerts)} open alerts ("
                  + ", ".join(f"{f} {n}" for f, n in sorted(by_family.items())) + ")") if self.open_alerts \
            else "no open alerts"
        extra = []
        if self.fairness:
            extra.append("fairness gaps over threshold: " + ", ".join(
                f"{f.doc['metric']['name']} {segment_of(f.doc)} {fmt_value(f.doc['metric']['value'])}".replace("  ", " ")
                for f in self.fairness))
        if self.attribution:
            extra.append("attribution drift over threshold: " + ", ".join(
                f.doc["metric"]["name"] + ("" if f.label == ALL_TRAFFIC else f" {f.label}") for f in self.attribution))
        return "  " + "; ".join([alerts, *extra])


def fmt_time(t: datetime | None) -> str:
    """``2026-11-28 06:00 UTC``: minutes are the windows' resolution; the timezone is always said."""
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


def fmt_value(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def describe_value(f: FeatureDrift) -> str:
    """``wasserstein 1.00 σ > alert 0.15`` — the deciding statistic against its threshold."""
    if f.decided_by is None:
        return "not judged"
    m = f.decided_by["metric"]
    th = m.get("threshold") or {}
    unit = " σ" if m["name"] in ("wasserstein", "mean_shift") else ""
    limit = th.get(f.status) if f.status in BAD else th.get("warning")
    op = "<" if th.get("direction") == "below" else ">"
    return f"{m['name']} {fmt_value(m['value'])}{unit}" + (f" {op} {f.status} {fmt_value(limit)}" if limit is not None else "")


# --- building the summary ----------------------------------------------------------------------


def summarise(mr: ModelReport) -> ModelSummary:
    by_family: dict[str, list[Doc]] = defaultdict(list)
    for d in mr.metrics:
        by_family[d["metric"]["family"]].append(d)
    out = ModelSummary(mr.model, mr.version)
    drift_docs = [d for d in by_family.get("drift", []) if d["metric"].get("feature")]
    out.newest = newest_window(drift_docs, by_family.get("volume", []))
    at = out.newest.evaluated_end if out.newest else None
    out.drift = feature_states(drift_docs, "", at)
    for seg in sorted({segment_of(d) for d in drift_docs} - {""}):
        for f in feature_states(drift_docs, seg, at):
            out.segments.setdefault(f.feature, []).append(f)
    pred = by_family.get("prediction_drift", [])
    out.prediction = feature_states(pred, "", latest_judged_end(pred))
    out.performance = performance_now(by_family, mr.reference_metrics)
    out.fairness = findings(by_family.get("fairness", []), "fairness")
    out.attribution = findings(by_family.get("explainability", []), "explainability")
    out.quality = findings(by_family.get("data_quality", []), "data_quality")
    out.open_alerts = open_alerts(mr.alerts)
    return out


def latest_judged_end(docs: Iterable[Doc]) -> datetime | None:
    ends = [ts(d["window"]["end"]) for d in docs if d["metric"]["status"] in JUDGED and not segment_of(d)]
    return max(ends, default=None)


def newest_window(drift_docs: Sequence[Doc], volume_docs: Sequence[Doc]) -> NewestWindow | None:
    """The newest drift window, its rows, and the newest window that could be judged."""
    all_traffic = [d for d in drift_docs if not segment_of(d)]
    if not all_traffic:
        return None
    rows: dict[datetime, int] = {}
    starts: dict[datetime, datetime] = {}
    for d in all_traffic:
        end = ts(d["window"]["end"])
        rows[end] = max(rows.get(end, 0), int(d["n"]["current"] or 0))
        starts[end] = ts(d["window"]["start"])
    for d in volume_docs:
        if not segment_of(d) and d["metric"]["value"] is not None:
            end = ts(d["window"]["end"])
            if end in rows:
                rows[end] = int(d["metric"]["value"])
    newest = max(rows)
    evaluated = latest_judged_end(all_traffic)
    note = ""
    if evaluated is None:
        note = f"no window in the range could be judged (the newest, ending {fmt_time(newest)}, has {rows[newest]} rows)"
    elif evaluated != newest:
        note = (f"the newest window ({fmt_time(starts[newest])} to {fmt_time(newest)}) has "
                f"{'no traffic' if rows[newest] == 0 else f'only {rows[newest]} rows'}, too few to judge; "
                f"figures are from the window ending {fmt_time(evaluated)}")
    else:
        usual = median(rows.values())
        if usual > 0 and rows[newest] < SMALL_WINDOW_SHARE * usual:
            note = (f"the newest window is small: {rows[newest]} rows against a median of {usual:.0f} "
                    "per window, so its statistics are noisier")
    return NewestWindow(starts[newest], newest, rows[newest], evaluated, note)


def feature_states(docs: Sequence[Doc], segment: str, at: datetime | None) -> list[FeatureDrift]:
    """Each feature's state in the window ending ``at`` (within ``segment``), with since when."""
    if at is None:
        return []
    per: dict[str, dict[datetime, list[Doc]]] = defaultdict(lambda: defaultdict(list))
    for d in docs:
        if segment_of(d) == segment and d["metric"].get("feature"):
            per[d["metric"]["feature"]][ts(d["window"]["end"])].append(d)
    out = []
    for feature, windows in sorted(per.items()):
        if at not in windows:
            continue
        history = [(ts(ds[0]["window"]["start"]), window_status(ds)[0]) for _, ds in sorted(windows.items())]
        status, decided = window_status(windows[at])
        current = windows[at][0]
        start = ts(current["window"]["start"])
        out.append(FeatureDrift(
            feature=feature, segment=segment, kind=_kind(windows[at]), status=status, decided_by=decided,
            since=since(history, start) if status in JUDGED else None, window_start=start, window_end=at,
            rows=int(current["n"]["current"] or 0)))
    return out


def _kind(docs: Sequence[Doc]) -> str:
    for d in docs:
        test = (d["metric"].get("details") or {}).get("test")
        if test:
            return "categorical" if test == "chi_square" else "numeric"
    return "categorical" if any(d["metric"]["name"] in ("chi_square", "l_infinity") for d in docs) else "numeric"


def performance_now(by_family: dict[str, list[Doc]], reference: dict[str, float]) -> list[PerformanceNow]:
    realised = by_family.get("performance", [])
    keys = sorted({(d["metric"]["name"], d["metric"].get("class") or "") for d in realised
                   if has_threshold(d) and not segment_of(d)})
    coverage = {d["window"]["end"]: d["metric"]["value"] for d in by_family.get("label_coverage", [])
                if d["metric"]["name"] == "label_coverage" and not segment_of(d)}
    estimated = by_family.get("estimated_performance", [])
    out = []
    for name, cls in keys:
        mine = [d for d in realised if d["metric"]["name"] == name and (d["metric"].get("class") or "") == cls]
        judged = sorted((d for d in mine if d["metric"]["status"] in JUDGED and not segment_of(d)),
                        key=lambda d: d["window"]["end"])
        last = judged[-1] if judged else None
        est = sorted((d for d in estimated if d["metric"]["name"] == name and (d["metric"].get("class") or "") == cls
                      and not segment_of(d) and d["metric"]["value"] is not None), key=lambda d: d["window"]["end"])
        worse: list[Doc] = []
        if last is not None:
            at = last["window"]["end"]
            worse = sorted((d for d in mine if segment_of(d) and d["window"]["end"] == at
                            and d["metric"]["status"] in BAD), key=lambda d: -severity(d["metric"]["status"]))
        history = [(ts(d["window"]["start"]), d["metric"]["status"]) for d in judged]
        out.append(PerformanceNow(
            metric=name, class_label=cls, realised=last,
            coverage=coverage.get(last["window"]["end"]) if last else None,
            estimated=est[-1] if est else None,
            reference=reference.get(f"{name}|{cls}"),
            since=since(history, history[-1][0]) if history else None, worse_segments=tuple(worse)))
    return out


def findings(docs: Sequence[Doc], family: str) -> list[Finding]:
    """Series whose newest judged window is a warning or an alert."""
    by: dict[tuple[str, str], list[Doc]] = defaultdict(list)
    for d in docs:
        by[(d["metric"]["name"], series_label(d))].append(d)
    out = []
    for (_, label), ds in sorted(by.items()):
        judged = sorted((d for d in ds if d["metric"]["status"] in JUDGED), key=lambda d: d["window"]["end"])
        if not judged or judged[-1]["metric"]["status"] not in BAD:
            continue
        history = [(ts(d["window"]["start"]), d["metric"]["status"]) for d in judged]
        out.append(Finding(family, label, judged[-1], since(history, history[-1][0])))
    out.sort(key=lambda f: (-severity(f.doc["metric"]["status"]), f.label))
    return out


def open_alerts(alerts: Sequence[Doc]) -> list[OpenAlert]:
    """Series whose newest alert is not a recovery; since = the window end of the alert that opened it."""
    by: dict[str, list[Doc]] = defaultdict(list)
    for a in alerts:
        by[str(a.get("alert", {}).get("series_id") or a.get("alert", {}).get("id"))].append(a)
    out = []
    for history in by.values():
        history.sort(key=lambda a: (a.get("@timestamp", ""), a.get("alert", {}).get("fired_at", "")))
        newest = history[-1]
        if newest.get("alert", {}).get("action") == "recovered":
            continue
        opened = newest
        for a in reversed(history):
            if a.get("alert", {}).get("action") == "recovered":
                break
            opened = a
        metric = newest.get("metric") or {}
        status = (newest.get("alert", {}).get("status") or {}).get("new") or "alert"
        out.append(OpenAlert(family=str(metric.get("family", "")), what=alert_subject(newest), status=str(status),
                             since=ts(opened["@timestamp"]), reason=str(newest.get("alert", {}).get("reason", ""))))
    out.sort(key=lambda a: (-severity(a.status), a.family, a.what))
    return out


def alert_subject(alert: Doc) -> str:
    """``f1 · class 1 · region=rural`` — the metric and its series, without the long reason."""
    metric = alert.get("metric") or {}
    if not metric.get("name"):
        return str(alert.get("alert", {}).get("rule", {}).get("name") or "?")
    fake = {"metric": {"name": metric["name"], "feature": metric.get("feature"), "class": metric.get("class"),
                       "segment": metric.get("segment") or {}}}
    label = series_label(fake)
    return metric["name"] if label == ALL_TRAFFIC else f"{metric['name']} · {label}"


def alerting_series(alerts: Sequence[Doc]) -> set[tuple[str, str]]:
    """(metric name, series label) of every series with an alert in the range: charts always show them."""
    out = set()
    for a in alerts:
        metric = a.get("metric") or {}
        if metric.get("name") and a.get("alert", {}).get("action") != "recovered":
            fake = {"metric": {"name": metric["name"], "feature": metric.get("feature"), "class": metric.get("class"),
                               "segment": metric.get("segment") or {}}}
            out.add((str(metric["name"]), series_label(fake)))
    return out
