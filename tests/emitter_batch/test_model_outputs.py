"""log_model_outputs: a scikit-learn estimator's predictions and probabilities, logged with its input frame."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from mlmon_logging.frames import BatchCallError
from tests.emitter_batch.conftest import MakeLogger

RNG = np.random.default_rng(5)
X = pd.DataFrame({"age": RNG.normal(40, 10, 300), "income": RNG.normal(3, 1, 300)})


def test_binary_classifier_scores_its_positive_class(make_logger: MakeLogger) -> None:
    y = np.where(X["age"] > 40, "churn", "stay")
    model = LogisticRegression().fit(X, y)
    mlog, sink = make_logger()
    ids = mlog.log_model_outputs(model, X)
    mlog.flush()
    events = [e["mlmon"] for e in sink.events()]
    assert len(ids) == len(events) == 300
    proba = model.predict_proba(X)
    assert [e["prediction"]["label"] for e in events] == model.predict(X).tolist()
    assert [e["prediction"]["score"] for e in events] == pytest.approx(proba[:, 1].tolist())  # classes_[1]
    assert all("scores" not in e["prediction"] for e in events)
    assert set(events[0]["features"]["numeric"]) == {"age", "income"}


def test_multiclass_scores_every_class_and_the_predicted_one(make_logger: MakeLogger) -> None:
    y = np.digitize(X["age"], [35, 45])  # classes 0, 1, 2
    model = LogisticRegression().fit(X, y)
    segment = X.assign(country=np.where(X["income"] > 3, "DE", "FR"))
    mlog, sink = make_logger()
    mlog.log_model_outputs(model, segment, segment=["country"])
    mlog.flush()
    events = [e["mlmon"] for e in sink.events()]
    proba, predicted = model.predict_proba(X), model.predict(X)
    for event, row, label in zip(events, proba, predicted):
        assert event["prediction"]["label"] == str(label)
        assert event["prediction"]["score"] == pytest.approx(row[label])
        assert event["prediction"]["scores"] == pytest.approx({"0": row[0], "1": row[1], "2": row[2]})
        assert set(event["features"]["numeric"]) == {"age", "income"}  # country is the segment
        assert event["segment"]["country"] in ("DE", "FR")


def test_regressor_on_a_bare_array(make_logger: MakeLogger) -> None:
    array = X.to_numpy()
    model = LinearRegression().fit(array, X["age"] * 2.5 + 0.1)
    mlog, sink = make_logger()
    mlog.log_model_outputs(model, array)
    mlog.flush()
    events = [e["mlmon"] for e in sink.events()]
    assert events[0]["model"]["task"] == "regression"
    assert [e["prediction"]["value"] for e in events] == pytest.approx(model.predict(array).tolist())
    assert set(events[0]["features"]["numeric"]) == {"x0", "x1"}  # sklearn's names for unnamed columns


def test_given_outputs_are_not_recomputed_and_bad_shapes_are_refused(make_logger: MakeLogger) -> None:
    model = LogisticRegression().fit(X, X["age"] > 40)
    mlog, sink = make_logger()
    ones = np.ones((300, 2)) / 2
    mlog.log_model_outputs(model, X, y_pred=np.ones(300, dtype=bool), proba=ones)
    mlog.flush()
    assert {(e["mlmon"]["prediction"]["label"], e["mlmon"]["prediction"]["score"]) for e in sink.events()} == \
        {("true", 0.5)}
    with pytest.raises(BatchCallError, match=r"proba has shape \(300, 3\), expected \(rows, 2\)"):
        mlog.log_model_outputs(model, X, proba=np.ones((300, 3)))
    with pytest.raises(BatchCallError, match="X must be a pandas DataFrame or a 2-d array"):
        mlog.log_model_outputs(model, [1.0, 2.0])


def test_the_emitter_imports_no_frame_or_model_library() -> None:
    code = ("import sys, mlmon_logging, mlmon_logging.logger, mlmon_logging.batch, mlmon_logging.estimators; "
            "print(sorted(m for m in ('pandas', 'numpy', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
