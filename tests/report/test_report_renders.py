"""The HTML report renders in a real browser (headless Chromium) with its plots drawn."""

from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlmon.core.documents import MetricDocument, Threshold
from mlmon.outputs.report.data import CategoricalDistribution, ModelReport, NumericDistribution, Report
from mlmon.outputs.report.html import render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _doc(family: str, metric: str, feature: str, i: int, value: float, status: str, maturity: str | None = None) -> dict:
    return MetricDocument(
        model="churn", model_version="3", family=family, metric=metric, feature=feature,
        window_start=T0 + timedelta(hours=i), window_end=T0 + timedelta(hours=i + 1),
        value=value, status=status, n_current=1000, run_id="r", code_version="t", maturity=maturity,
        threshold=Threshold(0.1, 0.2),
    ).to_source()


def sample_report() -> Report:
    metrics = []
    for i in range(12):
        shifted = i >= 8
        metrics.append(_doc("drift", "wasserstein", "age", i, 0.3 if shifted else 0.02, "alert" if shifted else "ok"))
        metrics.append(_doc("drift", "wasserstein", "income", i, 0.01, "ok"))
        metrics.append(_doc("performance", "accuracy", "", i, 0.9 - 0.1 * shifted, "ok",
                            "provisional" if i > 9 else "final"))
    model = ModelReport(
        model="churn", version="3", metrics=metrics,
        alerts=[{"@timestamp": "2026-11-01T09:00:00Z", "metric": {"family": "drift"},
                 "alert": {"action": "fired", "status": {"new": "alert"}, "reason": "age drifted"}},
                {"@timestamp": "2026-11-01T10:00:00Z", "metric": {"family": "drift"},
                 "alert": {"action": "renotified", "status": {"new": "alert"}, "reason": "age still drifted"}}],
        distributions=[
            NumericDistribution("age", edges=[float(e) for e in range(20, 61)],
                                reference=[1.0] * 42, current=[0.0] * 10 + [3.0] * 32),
            CategoricalDistribution("plan", {"pro": 60, "free": 40}, {"pro": 30, "free": 70}),
        ],
    )
    return Report(title="mlmon report", generated_at=T0, store="duckdb:///x", models=[model])


def test_report_html_is_self_contained() -> None:
    html = render(sample_report())
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//""", html)
    assert html.count("<svg") >= 5
    assert "age drifted" in html and "age still drifted" not in html
    assert "1 reminder(s) for alerts still open" in html


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true", reason="Debian's chromium is not installed")
def test_report_plots_render_in_headless_chromium(tmp_path: Path) -> None:
    assert CHROMIUM, "CI must install Debian's chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report.html"
    out.write_text(render(sample_report()), encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(out.as_uri())
        charts = page.evaluate("""() => [...document.querySelectorAll('div.chart')].map(d => {
            const svg = d.querySelector('svg'); const box = svg ? svg.getBoundingClientRect() : null;
            return {name: d.dataset.chart, w: box ? box.width : 0, h: box ? box.height : 0,
                    marks: svg ? svg.querySelectorAll('path, rect, image, use').length : 0}; })""")
        png = page.screenshot(full_page=True)
        browser.close()
    names = {c["name"] for c in charts}
    assert {"drift-heatmap", "series-wasserstein", "series-accuracy", "dist-age", "dist-plan"} <= names
    for c in charts:
        assert c["w"] > 100 and c["h"] > 50 and c["marks"] > 5, c
    assert not failed, f"the report fetched something: {failed}"
    assert len(png) > 20_000
