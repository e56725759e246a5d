"""Calibrated thresholds (``drift.calibrate: true``): two-sided for signed metrics, exact values for discrete ones."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from mlmon.config.model import parse
from mlmon.core.reference import ReferenceProfile, build_from_frame, quantile_edges
from mlmon.core.stats import NumericStats, WindowStatistics
from mlmon.jobs.drift import DriftWindowJob
from mlmon.metrics.distances import wasserstein_binned
from mlmon.metrics.thresholds import resample_numeric
from mlmon.metrics import drift as dm
from mlmon.metrics import thresholds as th
from mlmon.stores.protocols import Store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 1, 1, 1, tzinfo=timezone.utc)
FIELD = "mlmon.features.numeric.x"


def _job(reference: ReferenceProfile, samples: int = 100) -> DriftWindowJob:
    cfg = parse({"models": {"m": {"drift": {"calibrate": True, "calibration_samples": samples}}}})
    return DriftWindowJob(cast(Store, None), cfg.models[0], reference, run_id="test")


def _documents(job: DriftWindowJob, current: np.ndarray) -> dict[str, Any]:
    ref = job.reference.numeric[FIELD]
    stats = WindowStatistics(rows=current.size, numeric={FIELD: NumericStats.from_values(current, ref.edges)})
    return {d.metric: d for d in job.documents(stats, T0, T1, None) if d.feature == "x"}


def test_a_mean_shift_down_alerts_like_the_same_shift_up() -> None:
    rng = np.random.default_rng(21)
    reference = build_from_frame(pd.DataFrame({"x": rng.normal(0, 1, 50_000)}), "m", "1")
    job = _job(reference)
    for shift in (0.5, -0.5):
        docs = _documents(job, rng.normal(shift, 1, 2_000))
        mean_shift = docs["mean_shift"]
        assert mean_shift.value == pytest.approx(shift, abs=0.1)  # the document keeps the sign
        assert mean_shift.threshold is not None and mean_shift.threshold.source == "calibrated"
        assert mean_shift.status == "alert", (shift, mean_shift.threshold)
    clean = _documents(job, rng.normal(0, 1, 2_000))
    assert clean["mean_shift"].status == "ok"


def test_calibrate_is_two_sided_for_signed_values() -> None:
    rng = np.random.default_rng(22)
    null = rng.normal(0.0, 1.0, 400)
    rule = th.calibrate(null, tests=1, signed=True)
    # Both tails: |value| against the two-sided quantiles 1 - alpha/2 (normal approximation).
    assert rule.two_sided and rule.alert == pytest.approx(abs(null.mean()) + 2.5758 * null.std(ddof=1), rel=1e-3)
    assert rule.judged(-4.0) == 4.0 and th.calibrate(null, tests=1).judged(-4.0) == -4.0


def _old_layout_discrete_profile(values: np.ndarray) -> ReferenceProfile:
    """A profile built before gaps had their own bins: one edge per value (still in users' stores)."""
    distinct = np.unique(values)
    edges = tuple(np.append(distinct, np.nextafter(distinct[-1], np.inf)).tolist())
    return ReferenceProfile("m", "1", values.size, {FIELD: NumericStats.from_values(values, edges)}, {},
                            discrete=frozenset({FIELD}))


@pytest.mark.parametrize("layout", ["current", "one edge per value (older profiles)"])
def test_discrete_calibration_resamples_the_exact_values(layout: str) -> None:
    rng = np.random.default_rng(23)
    values = rng.poisson(4, 50_000).astype(float)
    if layout == "current":
        reference = build_from_frame(pd.DataFrame({"x": values}), "m", "1")
        assert FIELD in reference.discrete
    else:
        reference = _old_layout_discrete_profile(values)
    n = 2_000
    calibrated = _job(reference, samples=200)._calibrated(FIELD, "numeric", n)
    # The same calibration on windows drawn from the raw reference values.
    ref_stats = reference.numeric[FIELD]
    raw = [dm.numeric_drift(ref_stats, NumericStats.from_values(rng.choice(values, n), ref_stats.edges),
                            discrete=True) for _ in range(200)]
    tests = 1
    for metric in ("wasserstein", "ks", "mean_shift"):
        signed = metric == "mean_shift"
        from_raw = th.calibrate([r.value(metric) or 0.0 for r in raw], tests, signed=signed)
        got = calibrated[metric]
        assert got.alert is not None and from_raw.alert is not None
        assert from_raw.alert / 1.5 < got.alert < from_raw.alert * 1.5, (metric, got, from_raw)


@pytest.mark.parametrize("n", [600, 5_000])
def test_resampled_windows_are_measured_like_windows_of_reference_values(n: int) -> None:
    """Calibration's drift-free windows carry offset sums inside their bins, and their Wasserstein
    values have the null distribution of windows drawn from the reference's own values."""
    rng = np.random.default_rng(3)
    values = rng.exponential(1.0, 50_000)
    edges = quantile_edges(values)
    reference = NumericStats.from_values(values, edges)
    window = resample_numeric(reference, n, rng)
    widths = np.diff(np.asarray(edges))
    inner = np.asarray(window.offset_sums[1:-1])
    assert np.all(inner >= 0) and np.all(inner <= np.asarray(window.counts[1:-1]) * widths + 1e-12)
    resampled = np.mean([wasserstein_binned(reference, resample_numeric(reference, n, rng)) for _ in range(200)])
    drawn = np.mean([wasserstein_binned(reference, NumericStats.from_values(rng.choice(values, n), edges))
                     for _ in range(200)])
    assert resampled == pytest.approx(drawn, rel=0.1)
