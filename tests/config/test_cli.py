"""``mlmon config check FILE``: "FILE: ok (N models)", or one line per error and exit code 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlmon.cli.main import main


def test_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "mlmon.yaml"
    p.write_text("models:\n  churn: {}\n  fraud:\n    window: 5m\n", encoding="utf-8")
    assert main(["config", "check", str(p)]) == 0
    out = capsys.readouterr()
    assert out.out == f"{p}: ok (2 models)\n" and out.err == ""


def test_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "mlmon.yaml"
    p.write_text("models:\n  churn:\n    window: 1h\n    drfit: {}\n", encoding="utf-8")
    assert main(["config", "check", str(p)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [f"{p}:4: models.churn.drfit: unknown key 'drfit'; did you mean 'drift'? "
                                    "allowed: alerts, drift, explainability, fairness, lateness, performance, "
                                    "reference, version, window"]


def test_a_missing_file_and_the_real_command_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    run = subprocess.run([sys.executable, "-m", "mlmon.cli.main", "config", "check", str(missing)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == f"{missing}: cannot read: No such file or directory\n"
    dup = tmp_path / "dup.yaml"
    dup.write_text("models:\n  churn: {}\n  churn: {window: 5m}\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "mlmon.cli.main", "config", "check", str(dup)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr == (f"{dup}:3: models.churn: duplicate key 'churn' (first at line 2; "
                          "YAML would keep only the last one)\n")
