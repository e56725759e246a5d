"""The performance tests' synthetic traffic: the generators live in :mod:`tools.synth`, shared with benchmarks/."""

from tools.synth import HOUR, T0, Traffic, binary_traffic, joined
from tools.synth import load_traffic as load

__all__ = ["HOUR", "T0", "Traffic", "binary_traffic", "joined", "load"]
