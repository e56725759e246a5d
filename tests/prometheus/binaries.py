"""The Prometheus binaries the tests run (Debian packages prometheus, prometheus-alertmanager).

Missing binaries skip a test with the reason, except under CI (the ``CI`` environment variable
set, as CI services do), where a missing binary fails: CI must run the real thing.
"""

from __future__ import annotations

import os
import shutil

import pytest

#: Test name -> (executable, Debian package).
BINARIES = {
    "prometheus": ("prometheus", "prometheus"),
    "promtool": ("promtool", "prometheus"),
    "alertmanager": ("prometheus-alertmanager", "prometheus-alertmanager"),
    "amtool": ("amtool", "prometheus-alertmanager"),
}


def binary(name: str) -> str:
    """The path of the executable, or skip (fail under CI) naming the package that provides it."""
    executable, package = BINARIES[name]
    path = shutil.which(executable)
    if path is not None:
        return path
    message = f"{executable} is not installed (apt-get install {package})"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message}; CI is set, so the test fails instead of skipping")
    pytest.skip(message)
