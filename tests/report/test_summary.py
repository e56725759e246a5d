"""The report's answers: what drifted and since when, not built from an empty newest window; the worst
series by the metric's direction; open alerts; performance now vs the reference."""

from __future__ import annotations

import json

from mlmon.core.documents import Threshold
from mlmon.outputs.report.data import ModelReport, Report
from mlmon.outputs.report.html import render
from mlmon.outputs.report.series import group_series, worst
from mlmon.outputs.report.summary import open_alerts, summarise
from tests.report.docs import HOUR, T0, alert, doc

BELOW = Threshold(0.9, 0.85, direction="below")


def drift_history(windows: int = 12, shift_from: int = 8) -> list[dict]:
    docs = []
    for i in range(windows):
        shifted = i >= shift_from
        docs.append(doc("drift", "wasserstein", i, 0.3 if shifted else 0.02, "alert" if shifted else "ok",
                        feature="age", details={"test": "ks", "p_adjusted": 1e-9}))
        docs.append(doc("drift", "wasserstein", i, 0.01, "ok", feature="income", details={"test": "ks"}))
        docs.append(doc("drift", "l_infinity", i, 0.01, "ok", feature="plan", details={"test": "chi_square"}))
    return docs


def test_drifted_features_with_since_when_and_how_bad() -> None:
    s = summarise(ModelReport("churn", "3", metrics=drift_history()))
    assert [f.feature for f in s.drifted] == ["age"]
    assert s.drifted[0].since == T0 + 8 * HOUR
    assert {f.feature: f.kind for f in s.drift} == {"age": "numeric", "income": "numeric", "plan": "categorical"}
    line = s.drift_line()
    assert "1 of 3 features drifted" in line and "age (alert since 2026-11-01 08:00 UTC, wasserstein 0.3 σ > alert 0.2)" in line


def test_an_empty_newest_window_is_named_not_summarised() -> None:
    # Today's report built its headline from the newest window: "insufficient_data 244" for a window
    # with no traffic. The summary must judge the newest window that has data, and say why.
    docs = drift_history()
    docs += [doc("drift", "wasserstein", 12, None, "insufficient_data", feature=f, n=0) for f in ("age", "income")]
    docs.append(doc("drift", "l_infinity", 12, None, "insufficient_data", feature="plan", n=0))
    s = summarise(ModelReport("churn", "3", metrics=docs))
    assert s.newest is not None and s.newest.rows == 0
    assert s.newest.evaluated_end == T0 + 12 * HOUR
    assert [f.feature for f in s.drifted] == ["age"]
    assert "has no traffic, too few to judge; figures are from the window ending 2026-11-01 12:00 UTC" in s.drift_line()
    html = render(Report("r", T0, "duckdb:///x", [ModelReport("churn", "3", metrics=docs)]))
    assert "insufficient data</span> 3" not in html and "has no traffic" in html


def test_a_small_newest_window_is_said_to_be_small() -> None:
    docs = drift_history()
    docs += [doc("drift", "wasserstein", 12, 0.3, "alert", feature="age", n=120),
             doc("drift", "wasserstein", 12, 0.01, "ok", feature="income", n=120)]
    s = summarise(ModelReport("churn", "3", metrics=docs))
    assert s.newest is not None and "small: 120 rows against a median of 1000" in s.newest.note


def test_worst_series_follow_the_metrics_direction() -> None:
    # Accuracy: lower is worse. The old ranking (largest |value| first) showed the best series and hid
    # the one that alerted.
    docs = []
    for k in range(10):
        value = 0.80 if k == 7 else 0.95 + k * 0.002
        for i in range(4):
            docs.append(doc("performance", "accuracy", i, value, "alert" if k == 7 and i == 3 else "ok",
                            segment=("region", f"r{k}"), threshold=BELOW))
    (series,) = group_series(docs).values()
    shown = [s.label for s in worst(series, 3)]
    assert shown[0] == "region=r7" and "region=r9" not in shown
    drift = group_series([doc("drift", "psi", 0, v, "ok", feature=f) for f, v in (("a", 0.5), ("b", 0.1))])["psi"]
    assert [s.label for s in worst(drift, 1)] == ["a"]


def test_alerting_series_is_always_charted() -> None:
    docs = []
    for k in range(12):
        for i in range(3):  # region=r3 alerted on accuracy yet is not among the 8 lowest
            docs.append(doc("performance", "accuracy", i, 0.5 + 0.01 * k if k != 3 else 0.99, "ok",
                            segment=("region", f"r{k}"), threshold=BELOW))
    mr = ModelReport("churn", "3", metrics=docs,
                     alerts=[alert(2, "fired", "accuracy", "performance", segment=("region", "r3"))])
    html = render(Report("r", T0, "duckdb:///x", [mr]))
    spec = _spec_of(html, "churn-3-performance-accuracy")
    labels = {row["series"] for rows in spec["datasets"].values() for row in rows if "series" in row}
    assert "region=r3" in labels and len(labels) == 8


def test_open_alerts_and_since_when() -> None:
    alerts = [alert(2, "fired", "psi", "drift", feature="age", series="a"),
              alert(5, "renotified", "psi", "drift", feature="age", series="a"),
              alert(3, "fired", "f1", "performance", class_label="1", segment=("region", "rural"), series="b"),
              alert(6, "recovered", "f1", "performance", class_label="1", segment=("region", "rural"), series="b",
                    status="ok")]
    (open_,) = open_alerts(alerts)
    assert open_.what == "psi · age" and open_.since == T0 + 3 * HOUR


def test_performance_now_vs_reference_with_estimate_and_coverage() -> None:
    docs = []
    for i in range(6):
        docs.append(doc("performance", "accuracy", i, 0.95 if i < 4 else 0.8, "ok" if i < 4 else "alert",
                        threshold=BELOW, maturity="final"))
        docs.append(doc("label_coverage", "label_coverage", i, 0.9, "no_threshold", threshold=None))
        docs.append(doc("estimated_performance", "accuracy", i, 0.93, "ok", threshold=BELOW,
                        details={"lower": 0.9, "upper": 0.96}))
    docs.append(doc("performance", "accuracy", 6, None, "insufficient_data", threshold=BELOW, n=3))
    mr = ModelReport("churn", "3", metrics=docs, reference_metrics={"accuracy|": 0.96})
    (p,) = summarise(mr).performance
    assert p.realised is not None and p.realised["metric"]["value"] == 0.8 and p.since == T0 + 4 * HOUR
    assert p.coverage == 0.9 and p.reference == 0.96
    assert "accuracy realised 0.8 (alert, 90% labelled" in summarise(mr).performance_line()
    assert "estimated 0.93 [0.9, 0.96], reference 0.96" in summarise(mr).performance_line()


def _spec_of(html: str, chart: str) -> dict:
    marker = f'data-chart="{chart}" data-spec="'
    sid = html[html.index(marker) + len(marker):].split('"', 1)[0]
    start = html.index(f'<script type="application/json" id="{sid}">') + len(f'<script type="application/json" id="{sid}">')
    return json.loads(html[start:html.index("</script>", start)].replace("<\\/", "</"))
