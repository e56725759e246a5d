"""Time ranges are {from, to} in every section; performance.reference's old {start, end} still works, and warns."""

from __future__ import annotations

import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mlmon.config.model import ConfigError, load, parse
from mlmon.config.performance import PerformanceConfig

OLD = "models:\n  churn:\n    performance:\n      task: classification\n" \
      "      reference: {start: 2025-01-01T00:00:00Z, end: 2025-01-08T00:00:00Z}\n"
SPAN = (datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 8, tzinfo=timezone.utc))


def _performance(path: Path) -> PerformanceConfig:
    section = load(path).models[0].sections["performance"]
    assert isinstance(section, PerformanceConfig)
    return section


def test_the_old_spelling_still_works_and_says_what_changed(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "mlmon.yaml"
    p.write_text(OLD, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="mlmon.config"), \
            pytest.warns(DeprecationWarning) as warned:
        perf = _performance(p)
    assert perf.reference == SPAN and perf.cbpe
    expected = (f"{p}:5: models.churn.performance.reference: 'start'/'end' are now 'from'/'to' "
                "(like the CLI's --from/--to); the old names still work")
    assert [str(w.message) for w in warned] == [expected]
    assert [r.getMessage() for r in caplog.records if r.name == "mlmon.config"] == [expected]


def test_the_new_spelling_gives_the_same_config_without_a_warning(tmp_path: Path) -> None:
    p = tmp_path / "mlmon.yaml"
    p.write_text(OLD.replace("start:", "from:").replace("end:", "to:"), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        perf = _performance(p)
    assert perf.reference == SPAN


def test_both_spellings_at_once_are_an_error() -> None:
    raw = {"models": {"churn": {"performance": {"task": "classification",
                                                "reference": {"from": "2025-01-01", "start": "2025-01-01",
                                                              "to": "2025-01-08"}}}}}
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError) as err:
        parse(raw, "mlmon.yaml")
    assert str(err.value) == ("mlmon.yaml: models.churn.performance.reference.start: give 'from' (the old name "
                              "'start' is deprecated), not both")


def test_explainability_reference_window_takes_from_and_to_only() -> None:
    ok = parse({"models": {"m": {"explainability": {"reference_window": {"from": "2025-01-01", "to": "2025-01-08"}}}}})
    assert ok.models[0].sections["explainability"].reference_window == SPAN
    with pytest.raises(ConfigError, match=r"reference_window.start: unknown key 'start'; allowed: from, to"):
        parse({"models": {"m": {"explainability": {"reference_window": {"start": "2025-01-01", "to": "2025-01-08"}}}}})


def test_shipped_configs_use_the_new_spelling() -> None:
    from mlmon.core.assets import ROOT
    from mlmon.demo.run import config_yaml

    demo = config_yaml(*SPAN)
    assert "reference: {from: " in demo and "start:" not in demo
    docker = (ROOT / "docker" / "mlmon.yaml").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "start:" not in docker and "reference: {start:" not in readme
