"""The HTML report, looked at as a user would: the demo's report in headless Chromium (Debian's).

Screenshots of the top and of each section are written to ``out/report-screenshots/`` (or
``$MLMON_REPORT_SCREENSHOTS``) for a reviewer to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmon.cli.main import main
from mlmon.demo.run import DemoResult, run_demo
from mlmon.demo.traffic import DRIFTED_CATEGORICAL, DRIFTED_NUMERIC
from mlmon.outputs.report.data import CategoricalDistribution, ModelReport, NumericDistribution, Report
from mlmon.outputs.report.html import render
from tests.report.docs import T0, alert, doc

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("MLMON_REPORT_SCREENSHOTS", Path(__file__).resolve().parents[2] / "out" / "report-screenshots"))
MAX_BYTES = 5_000_000
needs_chromium = pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                                    reason="Debian's chromium is not installed")


def sample_report() -> Report:
    metrics = []
    for i in range(12):
        shifted = i >= 8
        metrics.append(doc("drift", "wasserstein", i, 0.3 if shifted else 0.02, "alert" if shifted else "ok",
                           feature="age", details={"test": "ks", "p_adjusted": 1e-6}))
        metrics.append(doc("drift", "wasserstein", i, 0.01, "ok", feature="income", details={"test": "ks"}))
        metrics.append(doc("performance", "accuracy", i, 0.9 - 0.1 * shifted, "ok",
                           maturity="provisional" if i > 9 else "final"))
    model = ModelReport(
        model="churn", version="3", metrics=metrics,
        alerts=[alert(8, "fired", "wasserstein", "drift", feature="age", series="a"),
                alert(9, "renotified", "wasserstein", "drift", feature="age", series="a")],
        distributions=[
            NumericDistribution("age", edges=[float(e) for e in range(20, 61)], reference=[1.0] * 42,
                                current=[0.0] * 10 + [3.0] * 32),
            CategoricalDistribution("plan", {"pro": 60, "free": 40}, {"pro": 30, "free": 70}),
        ],
    )
    return Report(title="mlmon report", generated_at=T0, store="duckdb:///x", models=[model])


def test_report_html_is_self_contained() -> None:
    html = render(sample_report())
    page, _, scripts = html.partition('<script type="application/json"')
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//""", page)
    assert "window.vegaEmbed" in scripts and "<script src" not in html
    assert "fired: wasserstein is alert" in html and "renotified: wasserstein" not in html
    assert "1 reminder(s) for alerts still open" in html
    assert html.count("data-spec=") >= 4


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoResult]:
    out = tmp_path_factory.mktemp("report-demo") / "out"
    yield run_demo(out, days=4, per_day=1400, drift_day=2, seed=11)
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.slow
def test_demo_prints_where_the_report_is_and_its_summary(demo: DemoResult) -> None:
    from mlmon.demo.run import summary

    text = summary(demo)
    assert f"report: {demo.report.resolve()}" in text
    lines = text.splitlines()
    first = lines[lines.index(f"report: {demo.report.resolve()}") + 1]
    assert first.startswith("cancer-screen v1: 4 of 31 features drifted")
    assert len(demo.report_summary) == 3


@pytest.mark.slow
def test_report_command_writes_to_stdout_and_filters_the_range(demo: DemoResult, capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    store = f"duckdb:///{demo.store}"
    assert main(["report", "--store", store, "--out", "-", "--model", "cancer-screen"]) == 0
    html = capsys.readouterr().out
    assert html.startswith("<!doctype html>") and "Model cancer-screen" in html
    out = tmp_path / "r.html"
    assert main(["report", "--store", store, "--out", str(out), "--from", "2000-01-01T00:00:00Z",
                 "--to", "2000-01-02T00:00:00Z"]) == 0
    captured = capsys.readouterr()
    assert "no metric documents" in captured.err and "Model cancer-screen" not in out.read_text()
    assert main(["report", "--store", store, "--from", "soon"]) == 2
    assert capsys.readouterr().err.startswith("mlmon report: 'soon' is not an ISO 8601 time")


@pytest.mark.slow
@needs_chromium
def test_demo_report_in_headless_chromium(demo: DemoResult) -> None:
    assert CHROMIUM, "CI must install Debian's chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    assert demo.report.stat().st_size < MAX_BYTES
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors: list[str] = []
            network: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: network.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto(demo.report.as_uri())
            page.wait_for_function("""() => [...document.querySelectorAll('div[data-spec]')]
                                        .every(d => d.dataset.rendered || d.textContent.startsWith('chart failed'))""",
                                   timeout=120_000)
            page.screenshot(path=str(SHOTS / "top.png"))
            page.add_style_tag(content="header{position:static}")  # section shots without the sticky bar
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            for selector, name in (("div.summary", "summary"), ("table.drift", "drift-table"),
                                   ("table.alerts", "alerts")):
                page.locator(selector).first.screenshot(path=str(SHOTS / f"{name}.png"))
            for section in page.query_selector_all("section.family"):
                section.screenshot(path=str(SHOTS / f"{section.get_attribute('id')}.png"))
            drifted = page.eval_on_selector_all("[data-card=drift] li[data-feature]", "els => els.map(e => e.dataset.feature)")
            charts = page.evaluate("""() => [...document.querySelectorAll('div[data-spec]')].map(d => {
                const svg = d.querySelector('svg'); const box = svg ? svg.getBoundingClientRect() : null;
                return {name: d.dataset.chart, w: box ? box.width : 0, h: box ? box.height : 0,
                        marks: svg ? svg.querySelectorAll('path, rect, line').length : 0,
                        text: svg ? svg.textContent : ''}; })""")
            failures = page.evaluate("window.mlmonChartFailures")
        finally:
            browser.close()
    assert not errors, errors
    assert not network, f"the report fetched something: {network}"
    assert not failures
    assert sorted(drifted) == sorted([*DRIFTED_NUMERIC, *DRIFTED_CATEGORICAL])
    assert len(charts) >= 20
    for c in charts:
        assert c["w"] > 100 and c["h"] > 50 and c["marks"] > 5, c
    f1 = next(c for c in charts if c["name"] == "cancer-screen-1-performance-f1")
    assert "class 1 · region=rural" in f1["text"]
    shots = {p.name for p in SHOTS.glob("*.png")}
    assert {"top.png", "summary.png", "drift-table.png", "cancer-screen-1-drift.png",
            "cancer-screen-1-performance.png"} <= shots
