"""Permutation importance on the window's labelled rows, from a model file the user points to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression

from mlmon.config import model as cfg
from mlmon.jobs.explainability import ExplainabilityJobError, explainability_job
from mlmon.stores.duckdb.explain import DuckDBExplainStore
from mlmon.stores.duckdb.store import DuckDBStore
from tests.explainability.scenario import COEF, FEATURES, HOUR, MODEL, T0, VERSION


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(4000, 3)), columns=list(FEATURES))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x.to_numpy() @ COEF)))).astype(int)
    path = tmp_path_factory.mktemp("model") / "credit.joblib"
    joblib.dump(LogisticRegression().fit(x, y), path)
    return path


def _job(store: DuckDBStore, **permutation: Any) -> Any:
    model = cfg.parse({"models": {MODEL: {"version": VERSION, "explainability": {
        "features": list(FEATURES), "min_explanations": 50, "permutation": permutation}}}}).models[0]
    return explainability_job(store, model, "run-1")


def test_importances_equal_sklearn_on_the_same_sample(store: DuckDBStore, model_file: Path) -> None:
    docs = [d for d in _job(store, model_path=str(model_file), sample=500, repeats=4, seed=1).run(T0, T0 + HOUR)
            if d.metric == "permutation_importance"]
    assert [d.feature for d in docs] == list(FEATURES)
    sample = DuckDBExplainStore(store.con).labelled_sample(MODEL, T0, T0 + HOUR, features=FEATURES, size=500,
                                                           seed=1, version=VERSION)
    assert len(sample) == 500 and docs[0].n_current == 500
    expected = permutation_importance(joblib.load(model_file), sample[list(FEATURES)],
                                      sample["actual"].astype(int).to_numpy(), scoring="accuracy", n_repeats=4,
                                      random_state=1)
    for d, mean, std in zip(docs, expected.importances_mean, expected.importances_std):
        assert d.value == pytest.approx(mean, abs=1e-12) and d.details["std"] == pytest.approx(std, abs=1e-12)
    assert max(docs, key=lambda d: d.value or 0).feature == "income"  # the largest coefficient


def test_the_sample_is_reproducible_and_labelled_only(store: DuckDBStore) -> None:
    rows = DuckDBExplainStore(store.con)
    a = rows.labelled_sample(MODEL, T0, T0 + HOUR, features=FEATURES, size=10_000, seed=5)
    b = rows.labelled_sample(MODEL, T0, T0 + HOUR, features=FEATURES, size=10_000, seed=5)
    pd.testing.assert_frame_equal(a, b)
    labelled = store.con.execute(
        'SELECT count(DISTINCT p."mlmon.prediction.id") FROM predictions p JOIN feedback f '
        'ON f."mlmon.prediction.id" = p."mlmon.prediction.id" WHERE p."@timestamp" < ?', [T0 + HOUR]).fetchone()
    assert labelled is not None and len(a) == labelled[0]


def test_bad_model_files_are_clear_errors(store: DuckDBStore, tmp_path: Path) -> None:
    with pytest.raises(ExplainabilityJobError, match="no such model file"):
        _job(store, model_path=str(tmp_path / "nope.joblib")).run(T0, T0 + HOUR)
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    with pytest.raises(ExplainabilityJobError, match="has no predict"):
        _job(store, model_path=str(tmp_path / "dict.joblib")).run(T0, T0 + HOUR)


def test_a_window_without_labels_is_insufficient_data(store: DuckDBStore, model_file: Path) -> None:
    store.con.execute("DELETE FROM feedback")
    docs = [d for d in _job(store, model_path=str(model_file)).run(T0, T0 + HOUR)
            if d.metric == "permutation_importance"]
    assert len(docs) == 3 and {d.status for d in docs} == {"insufficient_data"}
