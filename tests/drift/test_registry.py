"""The drift metric registry: the built-in table, and adding a metric as one function + one entry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import cast

import numpy as np
import pytest

from mlmon.core.reference import build_from_frame, quantile_edges
from mlmon.core.stats import CategoryStats, NumericStats, WindowStatistics
from mlmon.metrics import drift as dm
from mlmon.metrics import registry
from mlmon.metrics import thresholds as th
from mlmon.metrics.registry import CATEGORIES, COARSE, FINE, Comparison, DriftMetric
from mlmon.metrics.rules import Rule
from tools.synth import make_features

#: What the config accepted and the thresholds defaulted to before the registry existed.
KNOWN_BEFORE = {"wasserstein", "ks", "psi", "jensen_shannon", "hellinger", "mean_shift", "chi_square",
                "l_infinity", "missing_share", "out_of_range_share", "unseen_share"}
RULES_BEFORE = {
    "wasserstein": Rule(0.10, 0.15),
    "psi": Rule(0.10, 0.25),
    "l_infinity": Rule(0.05, 0.075),
    "missing_share": Rule(0.02, 0.05, relative=True),
    "out_of_range_share": Rule(0.01, 0.05),
    "unseen_share": Rule(0.01, 0.05),
}


def test_builtin_table_reproduces_the_former_lists() -> None:
    assert set(registry.DRIFT_METRIC_NAMES) == KNOWN_BEFORE and len(registry.DRIFT_METRIC_NAMES) == 11
    assert th.DEFAULT_RULES == RULES_BEFORE and list(th.DEFAULT_RULES) == list(RULES_BEFORE)
    assert th.DEFAULT_RULES is registry.DEFAULT_RULES and dict(th.default_policy().rules) == RULES_BEFORE
    assert registry.drift_metric_names("numeric") == ("wasserstein", "ks", "psi", "jensen_shannon", "hellinger",
                                                      "mean_shift")
    assert set(registry.drift_metric_names("categorical")) == {"chi_square", "jensen_shannon", "l_infinity", "psi"}
    coarse = {m for m in registry.drift_metric_names("numeric") if registry.binning(m, "numeric") == COARSE}
    assert coarse == {"psi", "jensen_shannon", "hellinger"}
    assert {registry.binning(m, "categorical") for m in registry.drift_metric_names("categorical")} == {CATEGORIES}
    assert [getattr(registry.field_test(k), "name", None) for k in registry.KINDS] == ["ks", "chi_square"]
    with pytest.raises(KeyError):
        registry.binning("hellinger", "categorical")
    with pytest.raises(KeyError):
        registry.binning("missing_share", "numeric")  # data quality: computed by the job, not binned here


def total_variation(c: Comparison) -> float:
    """Half the L1 distance between the two samples' proportions."""
    return 0.5 * float(np.abs(dm.proportions(c.ref_counts) - dm.proportions(c.cur_counts)).sum())


@pytest.fixture
def with_total_variation() -> Iterator[DriftMetric]:
    """The registry's docstring example, registered for one test."""
    entry = DriftMetric("total_variation", total_variation, binnings={"numeric": COARSE, "categorical": CATEGORIES},
                        rule=Rule(0.10, 0.20))
    registry.register(entry)
    try:
        yield entry
    finally:
        registry.unregister("total_variation")
    assert "total_variation" not in registry.DRIFT_METRIC_NAMES


def test_one_function_and_one_entry_add_a_metric_everywhere(with_total_variation: DriftMetric) -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 20_000), rng.normal(0.5, 1, 5_000)
    edges = quantile_edges(ref)
    r_stats, c_stats = NumericStats.from_values(ref, edges), NumericStats.from_values(cur, edges)
    numeric = dm.numeric_drift(r_stats, c_stats)
    rc, cc = dm.coarsen(r_stats.counts_array(), c_stats.counts_array())
    tv = numeric.get("total_variation")
    assert tv.value == pytest.approx(0.5 * np.abs(rc / rc.sum() - cc / cc.sum()).sum())
    assert tv.test == "ks" and tv.p_value == numeric.get("ks").p_value and tv.n == 5_000
    assert [v.metric for v in numeric][-1] == "total_variation"

    categorical = dm.categorical_drift(CategoryStats(counts={"a": 60, "b": 40}),
                                       CategoryStats(counts={"a": 30, "b": 70}))
    assert categorical.value("total_variation") == pytest.approx(0.3)

    # The names the config may use, the default rules and the default policy know it.
    assert "total_variation" in registry.DRIFT_METRIC_NAMES and "total_variation" in registry.metric_names()
    assert th.DEFAULT_RULES["total_variation"] == Rule(0.10, 0.20)
    assert th.default_policy().rule("total_variation", "any") == Rule(0.10, 0.20)
    assert registry.binning("total_variation", "numeric") == COARSE


def test_the_drift_job_writes_a_registered_metric_with_the_method_of_its_binning(
        with_total_variation: DriftMetric) -> None:
    from mlmon.config.model import parse  # the config is only needed here
    from mlmon.jobs.drift import METHOD_COARSE, METHOD_FINE, DriftWindowJob
    from mlmon.stores.protocols import Store

    rng = np.random.default_rng(2)
    reference = build_from_frame(make_features(rng, 20_000, numeric=1, categorical=1), "m", "1")
    window = make_features(rng, 2_000, numeric=1, categorical=1, shifts={"num_0": 1.0})
    num_f, cat_f = next(iter(reference.numeric)), next(iter(reference.categorical))
    stats = WindowStatistics(
        rows=2_000,
        numeric={num_f: NumericStats.from_values(window["num_0"].to_numpy(), reference.numeric[num_f].edges)},
        categorical={cat_f: CategoryStats.from_counts(window["cat_0"].value_counts().to_dict())})
    job = DriftWindowJob(store=cast(Store, None), model=parse({"models": {"m": {}}}).models[0],  # pure part only
                         reference=reference, run_id="t")
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    docs = {(d.feature, d.metric): d for d in job.documents(stats, t0, t0 + timedelta(hours=1), None)}
    tv = docs[("num_0", "total_variation")]
    assert tv.method == METHOD_COARSE and docs[("num_0", "ks")].method == METHOD_FINE
    assert tv.threshold is not None and (tv.threshold.warning, tv.threshold.alert) == (0.10, 0.20)
    assert tv.status == "alert" and tv.details["test"] == "ks" and "p_adjusted" in tv.details
    assert docs[("cat_0", "total_variation")].method == "counts:reference-categories+other"


def test_register_refuses_what_the_evaluators_cannot_compute() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(DriftMetric("psi", total_variation, {"numeric": COARSE}))
    with pytest.raises(ValueError, match="binned"):
        registry.register(DriftMetric("tv_on_categories", total_variation, {"numeric": CATEGORIES}))
    with pytest.raises(ValueError, match="already have a test"):
        registry.register(DriftMetric("another_test", total_variation, {"numeric": FINE}, test=True))
    with pytest.raises(ValueError, match="kinds"):
        registry.register(DriftMetric("no_kinds", total_variation, {}))
    assert set(registry.DRIFT_METRIC_NAMES) == KNOWN_BEFORE
