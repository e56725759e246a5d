"""MLMON_BATCH_WINDOWS: a whole number of windows >= 1; anything else is one warning line and the default."""

from __future__ import annotations

import logging

import pytest

from mlmon.jobs.base import DEFAULT_BATCH_WINDOWS, _batch_setting


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "2.5", ""])
def test_an_invalid_value_warns_once_and_falls_back_to_the_default(raw: str, monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLMON_BATCH_WINDOWS", raw)
    with caplog.at_level(logging.WARNING, logger="mlmon.jobs"):
        assert _batch_setting() == DEFAULT_BATCH_WINDOWS
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert f"MLMON_BATCH_WINDOWS={raw!r}" in lines[0] and str(DEFAULT_BATCH_WINDOWS) in lines[0]


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("24", 24), (" 48 ", 48)])
def test_a_valid_value_is_taken_silently(raw: str, expected: int, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLMON_BATCH_WINDOWS", raw)
    with caplog.at_level(logging.WARNING, logger="mlmon.jobs"):
        assert _batch_setting() == expected
    assert not caplog.records


def test_unset_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLMON_BATCH_WINDOWS", raising=False)
    assert _batch_setting() == DEFAULT_BATCH_WINDOWS
