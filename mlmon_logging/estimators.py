"""A scikit-learn-style estimator's outputs as the arguments of ``ModelLogger.log_predictions``.

Duck-typed (``predict``, ``predict_proba``, ``classes_``, ``feature_names_in_``): neither
scikit-learn nor numpy is imported here, so any estimator following sklearn's API works
(XGBoost's and LightGBM's sklearn wrappers, a Pipeline). The contract's scores
(``docs/contract.md``): ``score`` is the probability of the positive class (binary) or of
the predicted class (multiclass); ``scores`` holds every class's probability, multiclass only.
"""

from __future__ import annotations

from typing import Any

from mlmon_logging.frames import BatchCallError
from mlmon_logging.values import to_label

_CALL = "log_model_outputs"


def model_outputs(estimator: Any, X: Any, *, y_pred: Any = None, proba: Any = None) -> dict[str, Any]:
    """``frame``, ``prediction`` and, for a classifier, ``score``/``scores`` for ``log_predictions``.

    ``X`` may hold more columns than the estimator was fitted on (``feature_names_in_``): it
    predicts on its own; the others are logged as features unless another argument names them.
    """
    frame = _frame(estimator, X)
    inputs = _inputs(estimator, X)
    if y_pred is None:
        y_pred = _call(estimator, "predict", inputs)
    arguments: dict[str, Any] = {"frame": frame, "prediction": y_pred}
    classes = getattr(estimator, "classes_", None)
    if proba is None and classes is not None and callable(getattr(estimator, "predict_proba", None)):
        proba = _call(estimator, "predict_proba", inputs)
    if proba is None:
        return arguments
    if classes is None:
        raise BatchCallError(f"mlmon: {_CALL}: proba= was given but the estimator has no classes_ to name its "
                             "columns; fit it first, or log the scores with log_predictions(scores=...)")
    classes = list(classes.tolist() if hasattr(classes, "tolist") else classes)
    shape = getattr(proba, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] != len(classes):
        raise BatchCallError(f"mlmon: {_CALL}: proba has shape {shape}, expected (rows, {len(classes)}): one column "
                             "per class of estimator.classes_")
    columns = [proba[:, j] for j in range(len(classes))]
    if len(classes) == 2:
        arguments["score"] = columns[1]
        return arguments
    # Multiclass: the predicted class's probability as the score, every class's under scores.
    index = {_key(label): j for j, label in enumerate(classes)}
    predicted = y_pred.tolist() if hasattr(y_pred, "tolist") else list(y_pred)
    rows = proba.tolist()
    arguments["score"] = [None if (j := index.get(_key(label))) is None else row[j]
                          for label, row in zip(predicted, rows)]
    arguments["scores"] = {label: column for label, column in zip(classes, columns)}
    return arguments


def _key(label: Any) -> Any:
    """A class label as events write it, so that 1, 1.0 and numpy's 1 find the same class."""
    return to_label(label)


def _frame(estimator: Any, X: Any) -> Any:
    """``X`` itself if it has named columns, else its columns named by ``feature_names_in_`` (or x0, x1, ...)."""
    if hasattr(X, "columns") or isinstance(X, dict):
        return X
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        raise BatchCallError(f"mlmon: {_CALL}: X must be a pandas DataFrame or a 2-d array, got "
                             f"{type(X).__name__}{'' if shape is None else f' of shape {shape}'}")
    names = getattr(estimator, "feature_names_in_", None)
    names = [str(name) for name in names] if names is not None else [f"x{j}" for j in range(shape[1])]
    if len(names) != shape[1]:
        raise BatchCallError(f"mlmon: {_CALL}: X has {shape[1]} columns but the estimator was fitted on "
                             f"{len(names)} features ({names[:5]}...); pass the X it predicts on")
    return {name: X[:, j] for j, name in enumerate(names)}


def _inputs(estimator: Any, X: Any) -> Any:
    """What the estimator predicts on: a frame's columns it was fitted on, when it has more
    (a segment, a timestamp or an id column logged beside the model's inputs)."""
    names = getattr(estimator, "feature_names_in_", None)
    columns = getattr(X, "columns", None)
    if names is None or columns is None:
        return X
    names = list(names)
    if list(columns) == names:
        return X
    missing = [name for name in names if name not in set(columns)]
    if missing:
        raise BatchCallError(f"mlmon: {_CALL}: X lacks the column(s) {missing[:5]} the estimator was fitted on; "
                             "pass the frame it predicts on")
    return X[names]


def _call(estimator: Any, method: str, X: Any) -> Any:
    function = getattr(estimator, method, None)
    if not callable(function):
        raise BatchCallError(f"mlmon: {_CALL}: {type(estimator).__name__} has no {method}(); pass "
                             f"{'y_pred' if method == 'predict' else 'proba'}= yourself")
    return function(X)
