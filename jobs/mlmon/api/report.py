"""The report as an object: shown inline in Jupyter, saved as the same file ``mlmon report`` writes."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from html import escape
from pathlib import Path

from mlmon.config.model import Config
from mlmon.outputs.report.data import Report
from mlmon.outputs.report.gather import gather
from mlmon.outputs.report.html import render
from mlmon.outputs.report.summary import ModelSummary, summarise
from mlmon.stores.url import open_store

#: Height of the inline frame in a notebook (the report scrolls inside it).
INLINE_HEIGHT_PX = 900


class ReportView:
    """A gathered report: ``html`` (rendered once, on first use), ``save(path)``, ``summary_lines()``;
    in Jupyter it displays itself (in a sandboxed frame: the page keeps its own styles and scripts)."""

    def __init__(self, report: Report) -> None:
        self.report = report

    @cached_property
    def html(self) -> str:
        return render(self.report)

    @property
    def models(self) -> list[str]:
        return [f"{m.model} v{m.version}" for m in self.report.models]

    @property
    def documents(self) -> int:
        return sum(len(m.metrics) for m in self.report.models)

    def summaries(self) -> list[ModelSummary]:
        return [summarise(m) for m in self.report.models]

    def summary_lines(self) -> list[str]:
        """Three lines per model version: what drifted (since when, how bad), performance, alerts."""
        return [line for s in self.summaries() for line in s.lines()]

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.write_text(self.html, encoding="utf-8")
        return out

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{escape(self.html, quote=True)}" style="width:100%;height:{INLINE_HEIGHT_PX}px;'
                'border:1px solid #ddd" sandbox="allow-scripts"></iframe>')

    def __repr__(self) -> str:
        return f"<ReportView {', '.join(self.models) or 'no models'}: {self.documents} metric documents>"


def build_report(store_url: str, *, model: str | None = None, start: datetime | None = None,
                 end: datetime | None = None, config: Config | None = None,
                 title: str = "mlmon model monitoring report") -> ReportView:
    """Read the report of ``[start, end)`` from the store (opened read-only, closed before returning)."""
    store = open_store(store_url, read_only=True)
    try:
        return ReportView(gather(store, store_url, model=model, title=title, start=start, end=end, config=config))
    finally:
        store.close()
