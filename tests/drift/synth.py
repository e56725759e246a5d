"""The drift tests' synthetic events: the generators live in :mod:`tools.synth`, shared with benchmarks/."""

from tools.synth import CATEGORICAL, NUMERIC, make_features, to_events
from tools.synth import load_events as load

__all__ = ["CATEGORICAL", "NUMERIC", "load", "make_features", "to_events"]
