"""Smaller views for a notebook: one feature's drift over time (all traffic and each segment)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from html import escape
from typing import Any

import pandas as pd

from mlmon.api.frames import metrics_frame
from mlmon.outputs.report import charts
from mlmon.outputs.report.html import chart_page
from mlmon.outputs.report.series import group_series, has_threshold, segment_of

#: Height of the inline frame in a notebook.
INLINE_HEIGHT_PX = 560


class FeatureView:
    """One feature's drift documents: ``frame`` (a DataFrame, oldest window first), ``specs`` (a
    Vega-Lite chart per thresholded metric, one line per segment), shown inline in Jupyter."""

    def __init__(self, model: str, feature: str, docs: Sequence[dict[str, Any]], total: int | None = None) -> None:
        self.model = model
        self.feature = feature
        self.docs = list(docs)
        #: Documents that matched; more than ``len(docs)`` when the read's limit kept the newest only.
        self.total = len(self.docs) if total is None else total

    @property
    def cut(self) -> str:
        """'' or what the limit left out, said wherever the view is shown."""
        if self.total <= len(self.docs):
            return ""
        return (f"the newest {len(self.docs)} of {self.total} documents (older windows left out: "
                "pass start= to look further back)")

    @cached_property
    def frame(self) -> pd.DataFrame:
        frame = metrics_frame(self.docs)
        return frame.sort_values(["window_end", "metric", "segment"], kind="stable").reset_index(drop=True)

    @cached_property
    def specs(self) -> list[tuple[str, dict[str, Any]]]:
        judged = [d for d in self.docs if has_threshold(d)]
        grouped = group_series(judged)
        labels = sorted({s.label for ss in grouped.values() for s in ss}, key=lambda lbl: (" · " in lbl, lbl))
        colours = charts.colours_for(labels)
        return [(f"{self.feature}-{metric}", charts.time_series(series, metric, f"{self.feature}: {metric}", colours,
                                                                "all traffic and each segment"))
                for metric, series in sorted(grouped.items())]

    def latest(self) -> pd.DataFrame:
        """The newest window's rows (all traffic first)."""
        frame = self.frame
        if frame.empty:
            return frame
        newest = frame[frame["window_end"] == frame["window_end"].max()]
        return newest.sort_values(["segment", "metric"]).reset_index(drop=True)

    @property
    def html(self) -> str:
        rows = self.latest()
        table = "" if rows.empty else rows[["segment", "metric", "value", "status", "n_current"]].to_html(
            index=False, float_format=lambda v: f"{v:.4g}", border=0)
        shown = escape(self.cut) if self.cut else f"{len(self.frame)} documents"
        intro = (f"<p>{shown} of {escape(self.model)}; newest window: "
                 f"{escape(str(rows['window_end'].iloc[0]) if not rows.empty else '-')}</p>{table}")
        return chart_page(f"{self.model}: drift of {self.feature}", intro, self.specs)

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{escape(self.html, quote=True)}" style="width:100%;height:{INLINE_HEIGHT_PX}px;'
                'border:1px solid #ddd" sandbox="allow-scripts"></iframe>')

    def __repr__(self) -> str:
        segments = sorted({segment_of(d) or "all traffic" for d in self.docs})
        shown = self.cut or f"{len(self.docs)} documents"
        return f"<FeatureView {self.model} {self.feature}: {shown} ({', '.join(segments)})>"
