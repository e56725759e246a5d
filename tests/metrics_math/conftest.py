"""Shared data generators for the metric-math tests: realistic scores, seeded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

BinaryData = tuple[np.ndarray, np.ndarray]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240501)


@pytest.fixture
def binary_scores(rng: np.random.Generator) -> Callable[[int], BinaryData]:
    """(actual is positive, positive-class score): overlapping Beta scores, rounded to 3 decimals so exact ties occur."""

    def make(n: int) -> BinaryData:
        actual = rng.random(n) < 0.3
        scores = np.where(actual, rng.beta(5, 2, n), rng.beta(2, 5, n))
        return actual, np.round(scores, 3)

    return make


@pytest.fixture
def calibrated(rng: np.random.Generator) -> Callable[..., BinaryData]:
    """(actual is positive, score) where scores are true probabilities: actual ~ Bernoulli(score).

    With ``concept_drift=True`` the outcome follows Bernoulli(score³) instead: same scores, new relation.
    """

    def make(n: int, concept_drift: bool = False) -> BinaryData:
        scores = rng.beta(2, 3, n)
        truth = scores ** 3 if concept_drift else scores
        return rng.random(n) < truth, scores

    return make
