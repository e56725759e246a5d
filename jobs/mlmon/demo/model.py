"""The demo's model: a real scikit-learn classifier on a dataset that ships inside scikit-learn.

Breast-cancer diagnosis (569 rows, 30 numeric features) plus two columns the
demo adds so every kind of monitoring has something to see: ``site`` (the
clinic that sent the sample, a categorical feature) and ``region`` (a segment
used as the fairness attribute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SITES = ("north", "south", "east", "west")
SITE_SHARES = (0.4, 0.3, 0.2, 0.1)
REGIONS = ("urban", "rural")


def snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass
class DemoModel:
    pipeline: Pipeline
    numeric: list[str]
    train: pd.DataFrame          # reference data (features + "label")
    holdout: pd.DataFrame        # rows production traffic is drawn from
    coef: np.ndarray             # per numeric feature, in the scaled space
    mean: np.ndarray
    scale: np.ndarray

    def score(self, x: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class ('malignant' = 1)."""
        return self.pipeline.predict_proba(x[self.numeric])[:, 1]

    def attributions(self, x: pd.DataFrame) -> np.ndarray:
        """Exact attributions of a linear model in log-odds: coefficient x centred (scaled) value."""
        return ((x[self.numeric].to_numpy(dtype=float) - self.mean) / self.scale) * self.coef


def train(seed: int = 7) -> DemoModel:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={c: snake(c) for c in data.frame.columns})
    # sklearn codes malignant as 0; monitoring reads better with "1 = malignant".
    frame["label"] = 1 - frame.pop("target")
    numeric = [c for c in frame.columns if c != "label"]
    rng = np.random.default_rng(seed)
    frame["site"] = rng.choice(SITES, size=len(frame), p=SITE_SHARES)
    frame["region"] = rng.choice(REGIONS, size=len(frame), p=(0.6, 0.4))
    train_df, holdout = train_test_split(frame, test_size=0.4, random_state=seed, stratify=frame["label"])
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.3, max_iter=2000))])
    pipe.fit(train_df[numeric], train_df["label"])
    scaler: StandardScaler = pipe.named_steps["scale"]
    return DemoModel(pipeline=pipe, numeric=numeric, train=train_df.reset_index(drop=True),
                     holdout=holdout.reset_index(drop=True), coef=pipe.named_steps["clf"].coef_[0],
                     mean=scaler.mean_, scale=scaler.scale_)
