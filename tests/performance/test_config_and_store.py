"""The ``performance:`` section's validation, and the DuckDB join against pandas + scikit-learn (weighted)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlmon.config.model import ConfigError, Where
from mlmon.metrics.performance import classification_metrics, regression_metrics
from mlmon.config.performance import PerformanceConfig, parse_performance
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.core.labels import LabelQuery
from tools.synth import HOUR, T0, Traffic, binary_traffic, joined
from tools.synth import load_traffic as load


def parse(raw: dict[str, Any]) -> PerformanceConfig:
    return parse_performance(raw, Where("mlmon.yaml", "models.churn.performance"))


def test_full_section_parses() -> None:
    cfg = parse({"task": "classification", "positive_label": 1, "segments": {"country": ["DE"], "plan": None},
                 "maturity": {"coverage": 0.8, "age": "2d"}, "lookback": "7d",
                 "reference": {"from": "2025-01-01T00:00:00Z", "to": "2025-01-08T00:00:00Z"},
                 "thresholds": {"accuracy": {"warning": 0.85, "alert": 0.8},
                                "f1": {"class": "1", "relative": True, "warning": -0.05, "alert": -0.1},
                                "roc_auc": {"calibrated": True}}})
    assert cfg.positive_label == "1" and cfg.cbpe and cfg.maturity_age == timedelta(days=2)
    assert cfg.segments == {"country": ("DE",), "plan": None}
    assert [r.mode for r in cfg.thresholds] == ["absolute", "relative", "calibrated"]


@pytest.mark.parametrize("raw, key, words", [
    ({"task": "ranking"}, "performance.task", "classification or regression"),
    ({"task": "classification", "treshold": {}}, "performance.treshold", "unknown key"),
    ({"task": "classification", "thresholds": {"accuracy": {"warning": 0.8, "alert": 0.9}}},
     "performance.thresholds.accuracy", "must not be above warning"),
    ({"task": "regression", "thresholds": {"bias": {"alert": 1}}}, "performance.thresholds.bias", "two-sided"),
    ({"task": "classification", "thresholds": {"f1": {"relative": True, "alert": -0.1}}},
     "performance.thresholds.f1", "need a reference period"),
    ({"task": "classification", "cbpe": True}, "performance.cbpe", "labelled reference period"),
    ({"task": "classification", "maturity": {"age": "30d"}}, "performance.maturity.age", "exceeds the look-back"),
    ({"task": "classification", "classes": ["a", "b"]}, "performance.classes", "multiclass"),
    ({"task": "classification", "reference": {"from": "2025-01-08", "to": "2025-01-01"}},
     "performance.reference", "must be before to"),
    ({"task": "classification", "reference": {"from": "2025-01-01"}}, "performance.reference.to", "required"),
])
def test_errors_name_file_and_key(raw: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(raw)
    assert str(err.value).startswith(f"mlmon.yaml: models.churn.{key}: ") and words in str(err.value)


@pytest.fixture(scope="module")
def weighted() -> tuple[Traffic, DuckDBLabels]:
    t = binary_traffic(np.random.default_rng(9), 4_000, sample_rate=0.25)
    con = duckdb.connect()
    load(con, t)
    return t, DuckDBLabels(con)


def test_weighted_classification_equals_sklearn_with_sample_weight(weighted: tuple[Traffic, DuckDBLabels]) -> None:
    t, labels = weighted
    w = labels.labelled_window(LabelQuery("churn", T0, T0 + HOUR, "classification"))[""]
    j = joined(t)
    lab = j[j.actual.notna()]
    y, p, s = lab.actual, lab["mlmon.prediction.label"], lab["mlmon.prediction.score"]
    sw = np.full(len(lab), 4.0)
    assert w.classification is not None
    m = classification_metrics(w.classification)
    assert w.n_predictions == pytest.approx(4 * len(j)) and w.coverage == pytest.approx(len(lab) / len(j))
    assert w.duplicate_feedback == int((j.n_feedback.fillna(0) - 1).clip(lower=0).sum())
    assert m.value("accuracy") == pytest.approx(skm.accuracy_score(y, p, sample_weight=sw), rel=1e-12)
    assert m.value("f1", "weighted") == pytest.approx(skm.f1_score(y, p, average="weighted", sample_weight=sw))
    assert m.value("log_loss") == pytest.approx(skm.log_loss(y == "1", s, sample_weight=sw), rel=1e-9)
    delays = (lab.fts - lab["@timestamp"]).dt.total_seconds()
    assert w.delay_quantiles()["p50"] == pytest.approx(float(np.median(delays)), rel=0.06)  # ~5 % wide bins


def test_segments_partition_the_window(weighted: tuple[Traffic, DuckDBLabels]) -> None:
    t, labels = weighted
    parts = labels.labelled_window(LabelQuery("churn", T0, T0 + HOUR, "classification", segment="country"))
    assert sorted(parts) == ["DE", "FR", "US"]
    assert sum(p.rows for p in parts.values()) == len(t.predictions)
    assert labels.labelled_window(LabelQuery("churn", T0, T0 + HOUR, "classification", segment="nope")) == {}


def test_regression_sums_equal_sklearn() -> None:
    rng = np.random.default_rng(4)
    t = binary_traffic(rng, 3_000)
    y = rng.normal(100, 15, 3_000)
    y[:20] = 0.0  # zero actuals: left out of MAPE, counted
    value = y + rng.normal(0, 5, 3_000)
    preds = t.predictions.drop(columns=["mlmon.prediction.label", "mlmon.prediction.score"]).assign(
        **{"mlmon.prediction.value": value, "mlmon.model.task": "regression"})
    actual = pd.Series(y, index=t.predictions["mlmon.prediction.id"])
    fb = t.feedback.drop(columns=["mlmon.feedback.actual"]).assign(**{
        "mlmon.feedback.actual_value": actual.loc[t.feedback["mlmon.prediction.id"]].to_numpy(),
        "mlmon.model.task": "regression"})
    con = duckdb.connect()
    load(con, Traffic(preds, fb))
    w = DuckDBLabels(con).labelled_window(LabelQuery("churn", T0, T0 + HOUR, "regression", shift=100.0,
                                                     error_edges=tuple(np.linspace(-20, 20, 41).tolist())))[""]
    labelled = preds["mlmon.prediction.id"].isin(fb["mlmon.prediction.id"]).to_numpy()
    yt, yp = y[labelled], value[labelled]
    assert w.regression is not None
    m = regression_metrics(w.regression)
    assert m.value("mae") == pytest.approx(skm.mean_absolute_error(yt, yp), rel=1e-9)
    assert m.value("rmse") == pytest.approx(np.sqrt(skm.mean_squared_error(yt, yp)), rel=1e-9)
    assert m.value("r2") == pytest.approx(skm.r2_score(yt, yp), rel=1e-9)
    nz = yt != 0
    assert m.value("mape") == pytest.approx(skm.mean_absolute_percentage_error(yt[nz], yp[nz]), rel=1e-9)
    assert w.regression.n_zero_actual == (yt == 0).sum()
    hist = w.regression.error_histogram
    assert hist is not None and hist.total == pytest.approx(labelled.sum())
