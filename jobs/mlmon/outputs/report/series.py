"""Stored metric documents as series: keys, directions, statuses per window, and the worst N of M.

Pure functions over ``MetricDocument.to_source()`` dicts, shared by the summary, the tables,
the charts and the Python API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlmon.core.documents import SEVERITY

Doc = Mapping[str, Any]

#: Metrics (of any family) for which a larger value is better; any other metric: larger is worse.
#: Used when a document carries no threshold (whose ``direction`` says it otherwise).
HIGHER_IS_BETTER = frozenset({
    "accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "average_precision", "r2",
    "label_coverage", "ranking_ndcg", "disparate_impact_ratio", "true_positive_rate", "selection_rate",
    "support", "rows", "explanations",
})
#: The label of a series with no feature, class or segment.
ALL_TRAFFIC = "all traffic"
#: Statuses that carry a judgement (the others say why there is none).
JUDGED = ("ok", "warning", "alert")


def ts(value: str | datetime) -> datetime:
    """A stored ISO timestamp (``...Z``) as an aware datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def segment_of(doc: Doc) -> str:
    """``region=rural``, ``across region`` (a comparison between groups) or "" (all traffic)."""
    seg = (doc.get("metric") or {}).get("segment") or {}
    if not seg.get("field"):
        return ""
    return f"{seg['field']}={seg['value']}" if seg.get("value") else f"across {seg['field']}"


def series_label(doc: Doc) -> str:
    """What a series measures besides its metric: feature, class and segment ("all traffic" when none)."""
    m = doc["metric"]
    parts = [m.get("feature") or "", f"class {m['class']}" if m.get("class") else "", segment_of(doc)]
    return " · ".join(p for p in parts if p) or ALL_TRAFFIC


def has_threshold(doc: Doc) -> bool:
    """Whether the document was judged against levels (stores may keep an all-null threshold object)."""
    th = doc["metric"].get("threshold") or {}
    return th.get("warning") is not None or th.get("alert") is not None


def higher_is_better(doc: Doc) -> bool:
    th = doc["metric"].get("threshold") or {}
    if th.get("direction") in ("above", "below"):
        return bool(th["direction"] == "below")
    return doc["metric"]["name"] in HIGHER_IS_BETTER


def severity(status: str) -> int:
    return SEVERITY.get(status, 0)


@dataclass(frozen=True)
class Series:
    """One metric's documents for one feature/class/segment, oldest window first."""

    label: str
    docs: tuple[Doc, ...]

    @property
    def worst_severity(self) -> int:
        return max((severity(d["metric"]["status"]) for d in self.docs), default=0)

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.docs[0])

    def values(self) -> list[float]:
        return [float(d["metric"]["value"]) for d in self.docs if d["metric"]["value"] is not None]

    def badness(self) -> float:
        """How bad the series' worst value is, in the metric's own direction (larger = worse)."""
        values = self.values()
        if not values:
            return float("-inf")
        return -min(values) if self.higher_is_better else max(values)


def group_series(docs: Iterable[Doc]) -> dict[str, list[Series]]:
    """Metric name -> its series (one per feature/class/segment), windows in time order."""
    by: dict[tuple[str, str], list[Doc]] = defaultdict(list)
    for d in docs:
        by[(d["metric"]["name"], series_label(d))].append(d)
    out: dict[str, list[Series]] = defaultdict(list)
    for (name, label), ds in sorted(by.items()):
        out[name].append(Series(label, tuple(sorted(ds, key=lambda d: d["window"]["end"]))))
    return dict(out)


def worst(series: Sequence[Series], n: int, keep: Iterable[str] = ()) -> list[Series]:
    """The ``n`` worst series: first those whose label is in ``keep`` (e.g. alerting), then by worst
    status, then by worst value in the metric's direction (the lowest accuracy, the highest PSI)."""
    must = set(keep)
    ranked = sorted(series, key=lambda s: (s.label not in must, -s.worst_severity, -s.badness(), s.label))
    return ranked[:n]


def window_status(docs: Iterable[Doc]) -> tuple[str, Doc | None]:
    """The status of a feature (or series group) in one window: the worst judged status among its
    documents, with the document that decided it; ``insufficient_data`` when none was judged and one
    said so; ``no_threshold`` when nothing carries a threshold."""
    decided: Doc | None = None
    status = "no_threshold"
    for d in docs:
        s = d["metric"]["status"]
        if s in JUDGED:
            if decided is None or _rank(d) > _rank(decided):
                decided, status = d, s
        elif s == "insufficient_data" and decided is None:
            status = s
    return status, decided


def _rank(doc: Doc) -> tuple[int, float]:
    """Worse status first, then how far past its alert level the value is."""
    m = doc["metric"]
    th = m.get("threshold") or {}
    value, limit = m.get("value"), th.get("alert") or th.get("warning")
    ratio = 0.0
    if value is not None and limit:
        ratio = value / limit if th.get("direction") != "below" else limit / value if value else float("inf")
    return severity(m["status"]), ratio


def since(statuses: Sequence[tuple[datetime, str]], at: datetime) -> datetime | None:
    """Start of the run of windows, ending at the window starting ``at``, that share its status.

    ``statuses``: (window start, status) in time order. Windows without a judgement
    (insufficient data) neither break nor extend the run: they are skipped.
    """
    judged = [(start, s) for start, s in statuses if s in JUDGED and start <= at]
    if not judged:
        return None
    current = judged[-1][1]
    first = judged[-1][0]
    for start, s in reversed(judged):
        if s != current:
            break
        first = start
    return first
