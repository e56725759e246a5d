"""Fixtures: the committed export file, parsed, and the mappings it is checked against."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlmon.stack.kibana import build, mappings


@pytest.fixture(scope="session")
def committed() -> list[dict[str, Any]]:
    text = build.OUTPUT.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture()
def objects(committed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A private copy a test may break."""
    return copy.deepcopy(committed)


@pytest.fixture(scope="session")
def field_mappings() -> mappings.Mappings:
    return mappings.load()
