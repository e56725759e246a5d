"""Fixtures: the generated dashboards, as (file name, JSON model) pairs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlmon.stack.grafana import build


@pytest.fixture(scope="session")
def generated() -> list[tuple[str, dict[str, Any]]]:
    return list(build.dashboard_documents().items())


@pytest.fixture()
def dashboards(generated: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """A private copy a test may break."""
    return copy.deepcopy(generated)
