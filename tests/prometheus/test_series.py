"""Documents and job health to samples: newest per series, latest_final, one value gauge, bounded, counted."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from mlmon.core.documents import MetricDocument, Threshold
from mlmon.core.job_runs import JobHealth
from mlmon.outputs.prometheus.series import (DROP_MAX_SERIES, DROP_OLD_VERSION, DROP_SEGMENT, FRESHNESS_GAUGE,
                                             SEVERITY_GAUGE, build_snapshot)
from mlmon.config.prometheus import ExporterSettings

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def doc(window: int, value: float | None, status: str = "ok", *, family: str = "drift", metric: str = "psi",
        feature: str = "age", version: str = "1", maturity: str | None = None, segment: tuple[str, str] = ("", ""),
        class_label: str = "") -> dict[str, Any]:
    return MetricDocument(
        model="churn", model_version=version, family=family, metric=metric,  # type: ignore[arg-type]
        window_start=T0 + window * H, window_end=T0 + (window + 1) * H, value=value, status=status,  # type: ignore[arg-type]
        n_current=100, run_id="r", code_version="c", feature=feature, class_label=class_label,
        segment_field=segment[0], segment_value=segment[1], maturity=maturity,  # type: ignore[arg-type]
        threshold=Threshold(0.1, 0.2)).to_source()


def labels(family: str = "drift", metric: str = "psi", feature: str = "age", window: str = "latest",
           version: str = "1", segment: str = "", class_label: str = "") -> tuple[str, ...]:
    return ("churn", version, family, metric, feature, class_label, segment, window)


def test_the_newest_window_of_each_series_is_exported_whatever_the_read_order() -> None:
    docs = [doc(0, 0.05), doc(2, 0.3, "alert"), doc(1, 0.15, "warning"), doc(2, 0.01, feature="plan")]
    snap = build_snapshot(docs, [], ExporterSettings.defaults())
    assert snap.samples[SEVERITY_GAUGE] == {labels(): 3.0, labels(feature="plan"): 0.0}
    assert snap.samples["mlmon_drift_statistic"] == {labels(): 0.3, labels(feature="plan"): 0.01}
    assert snap.samples[FRESHNESS_GAUGE] == {("churn", "1", "drift", "latest"): (T0 + 3 * H).timestamp()}
    assert snap.series == 2


def test_latest_final_is_the_newest_matured_window_and_only_for_series_with_a_maturity() -> None:
    perf: dict[str, Any] = dict(family="performance", metric="accuracy", feature="")
    docs = [doc(0, 0.91, maturity="final", **perf), doc(1, 0.80, "alert", maturity="provisional", **perf),
            doc(1, 0.2)]
    snap = build_snapshot(docs, [], ExporterSettings.defaults())
    ratio = snap.samples["mlmon_performance_ratio"]
    assert ratio == {(*labels("performance", "accuracy", ""), "false"): 0.80,
                     (*labels("performance", "accuracy", "", "latest_final"), "false"): 0.91}
    assert snap.samples[SEVERITY_GAUGE][labels("performance", "accuracy", "", "latest_final")] == 0.0
    assert labels(window="latest_final") not in snap.samples[SEVERITY_GAUGE]  # drift has no maturity


def test_every_value_goes_to_exactly_one_gauge() -> None:
    docs = [doc(0, 0.7, family="estimated_performance", metric="f1", feature="", class_label="1",
                maturity="provisional"),
            doc(0, 0.42, family="performance", metric="log_loss", feature=""),
            doc(0, 0.6, family="label_coverage", metric="label_coverage", feature="", maturity="final"),
            doc(0, 0.12, family="fairness", metric="demographic_parity_difference", feature="",
                segment=("region", "")),
            doc(0, 0.3, family="explainability", metric="attribution_drift"),
            doc(0, 0.02, family="data_quality", metric="missing_share")]
    snap = build_snapshot(docs, [], ExporterSettings.defaults())
    values = {name: sorted(s.values()) for name, s in snap.samples.items()
              if s and name not in (SEVERITY_GAUGE, FRESHNESS_GAUGE)}
    # label_coverage has a maturity: its final window is exported as latest_final too
    assert values == {"mlmon_performance_ratio": [0.7], "mlmon_metric_value": [0.02, 0.42],
                      "mlmon_label_coverage_ratio": [0.6, 0.6], "mlmon_fairness_gap": [0.12],
                      "mlmon_attribution_drift": [0.3]}
    ((estimated_labels, _),) = snap.samples["mlmon_performance_ratio"].items()
    assert estimated_labels[-1] == "true" and estimated_labels[5] == "1"
    assert labels("fairness", "demographic_parity_difference", "", segment="region") in snap.samples[SEVERITY_GAUGE]


def test_insufficient_data_has_a_severity_and_no_value() -> None:
    snap = build_snapshot([doc(0, None, "insufficient_data")], [], ExporterSettings.defaults())
    assert snap.samples[SEVERITY_GAUGE] == {labels(): 1.0}
    assert snap.samples["mlmon_drift_statistic"] == {}


def test_segments_are_opt_in_and_counted_when_left_out() -> None:
    docs = [doc(0, 0.1), doc(0, 0.2, segment=("region", "rural")), doc(0, 0.3, segment=("plan", "pro"))]
    off = build_snapshot(docs, [], ExporterSettings.defaults())
    assert list(off.samples[SEVERITY_GAUGE]) == [labels()]
    assert len(off.dropped[DROP_SEGMENT]) == 2
    some = build_snapshot(docs, [], replace(ExporterSettings.defaults(), segments=("region",)))
    assert set(some.samples[SEVERITY_GAUGE]) == {labels(), labels(segment="region=rural")}
    assert len(some.dropped[DROP_SEGMENT]) == 1


def test_versions_not_seen_recently_are_left_out_and_counted() -> None:
    docs = [doc(100, 0.1, version="2"), doc(90, 0.1, version="2", feature="plan"), doc(70, 0.2, version="1")]
    snap = build_snapshot(docs, [], replace(ExporterSettings.defaults(), versions_seen_within=timedelta(hours=24)))
    assert {lab[1] for lab in snap.samples[SEVERITY_GAUGE]} == {"2"}
    assert len(snap.dropped[DROP_OLD_VERSION]) == 1
    kept = build_snapshot(docs, [], replace(ExporterSettings.defaults(), versions_seen_within=timedelta(hours=31)))
    assert {lab[1] for lab in kept.samples[SEVERITY_GAUGE]} == {"1", "2"}


def test_max_series_keeps_all_traffic_first_in_a_fixed_order_and_counts_the_rest() -> None:
    docs = [doc(0, 0.1, feature=f) for f in ("c", "a", "b")] + [doc(0, 0.1, segment=("region", "x"))]
    settings = replace(ExporterSettings.defaults(), max_series=2, segments=True)
    snap = build_snapshot(docs, [], settings)
    assert {lab[4] for lab in snap.samples[SEVERITY_GAUGE]} == {"a", "b"}
    assert len(snap.dropped[DROP_MAX_SERIES]) == 2 and snap.series == 2
    assert build_snapshot(list(reversed(docs)), [], settings).samples == snap.samples


def test_job_health_is_labelled_by_family_and_a_job_that_never_succeeded_has_no_success_time() -> None:
    ok = JobHealth("churn", "drift", T0 + H, T0 + H, 2.5, True)
    failing = JobHealth("churn", "performance", T0 + H, None, 0.5, False, "boom")
    snap = build_snapshot([], [ok, failing], ExporterSettings.defaults())
    assert snap.samples["mlmon_job_last_success_timestamp_seconds"] == {("churn", "drift"): (T0 + H).timestamp()}
    assert snap.samples["mlmon_job_last_run_ok"] == {("churn", "drift"): 1.0, ("churn", "performance"): 0.0}
    assert snap.samples["mlmon_job_duration_seconds"][("churn", "drift")] == 2.5
