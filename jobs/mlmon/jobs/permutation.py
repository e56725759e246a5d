"""Optional: global importance by permutation, for services that log no attributions.

Given a scikit-learn compatible model the user points to (``explainability.permutation.model_path``,
a joblib / pickle file), the job takes a reproducible sample of the window's
*labelled* predictions from the store and runs
:func:`sklearn.inspection.permutation_importance` on it: how much the score
drops when one feature's column is shuffled. Documents: family
``explainability``, metric ``permutation_importance`` per feature (mean drop,
its standard deviation over repeats in ``details``).

Cost, per window: one read of ``sample`` rows (the one place where rows, not
aggregates, leave the store - bounded by ``sample``) and
``1 + features x repeats`` predictions over those rows. With the defaults
(2000 rows, 5 repeats) and 30 features that is 151 predict calls on 2000
rows: well under a second for a linear model, tens of seconds for a large
gradient-boosted ensemble - size ``sample`` and ``repeats`` to the model.
Loading the file runs code from it (pickle): point it only at files you trust.
Embedded store only for now: on Elasticsearch the labelled rows would come
from the performance job's label join.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlmon.config.explainability import PermutationConfig

#: Below this many labelled rows in the sample the importances are noise: insufficient_data.
MIN_SAMPLE = 30


class PermutationError(ValueError):
    """The model file or the window's data cannot be used; the message says what to fix."""


class LabelledRows(Protocol):
    def labelled_sample(self, model: str, start: datetime, end: datetime, *, features: Sequence[str],
                        size: int, seed: int, version: str | None = None) -> Any: ...


def load_estimator(path: str) -> Any:
    """The fitted estimator in a joblib / pickle file (trusted files only: unpickling runs code)."""
    import joblib

    p = Path(path)
    if not p.is_file():
        raise PermutationError(f"{path}: no such model file (explainability.permutation.model_path)")
    try:
        estimator = joblib.load(p)
    except Exception as err:  # unpickling raises anything the pickled code raises
        raise PermutationError(f"{path}: cannot load the model: {err!r}") from err
    if not callable(getattr(estimator, "predict", None)):
        raise PermutationError(f"{path}: {type(estimator).__name__} has no predict(); expected a scikit-learn "
                               "compatible model")
    return estimator


def model_features(estimator: Any, configured: Sequence[str]) -> list[str]:
    """The model's input columns: ``feature_names_in_`` when it was fitted on a DataFrame, else the configured ones."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    if not configured:
        raise PermutationError("the model does not record its feature names (fit it on a DataFrame) and "
                               "explainability.features is empty: cannot tell which columns it takes")
    return list(configured)


def _targets(estimator: Any, frame: Any) -> np.ndarray:
    """Actuals in the model's own label type (feedback carries classes as strings)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        values: np.ndarray = frame["actual_value"].to_numpy(dtype=float)
        if np.isnan(values).any():
            raise PermutationError("a regression model needs numeric actuals (mlmon.feedback.actual_value)")
        return values
    by_text = {str(c): c for c in classes}
    unknown = sorted(set(frame["actual"].astype(str)) - set(by_text))
    if unknown:
        raise PermutationError(f"actual classes {unknown[:5]} are not classes of the model {sorted(by_text)[:5]}")
    return np.asarray([by_text[str(a)] for a in frame["actual"]], dtype=np.asarray(classes).dtype)


def permutation_importances(rows: LabelledRows, estimator: Any, features: Sequence[str], cfg: PermutationConfig,
                            model: str, start: datetime, end: datetime,
                            version: str | None = None) -> tuple[dict[str, tuple[float, float]], int, float | None]:
    """``({feature: (mean drop, std)}, rows used, baseline score)``; empty dict when the sample is too small."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import get_scorer

    frame = rows.labelled_sample(model, start, end, features=features, size=cfg.sample, seed=cfg.seed,
                                 version=version)
    if len(frame) < MIN_SAMPLE:
        return {}, len(frame), None
    x, y = frame[list(features)], _targets(estimator, frame)
    try:
        baseline = float(get_scorer(cfg.scoring)(estimator, x, y))
        result = permutation_importance(estimator, x, y, scoring=cfg.scoring, n_repeats=cfg.repeats,
                                        random_state=cfg.seed, n_jobs=1)
    except (ValueError, TypeError) as err:
        raise PermutationError(f"permutation importance failed on the window's rows: {err}") from err
    out = {f: (float(m), float(s)) for f, m, s in zip(features, result.importances_mean, result.importances_std)}
    return out, len(frame), baseline
