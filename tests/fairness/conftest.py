"""Fixtures of the fairness tests: the shared scenario and a private copy of its embedded store."""

from tests.explainability.scenario import scene, store

__all__ = ["scene", "store"]
