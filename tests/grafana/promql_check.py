"""Parse the dashboards' PromQL with Prometheus' own parser (``promtool check rules``).

promtool has no "check this expression" command, but ``check rules`` parses the
expression of every rule in a file: each query becomes one recording rule. Grafana's
variables and macros are replaced first with values of the kind Grafana sends.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

#: What Grafana substitutes before the query reaches Prometheus (durations, label values).
_SUBSTITUTIONS = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "6h",
                  "$model_version": "v1", "$model": "m"}
_RULE = re.compile(r'rule (\d+), "check_\d+": (.*)$')


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        raise AssertionError("promtool is not installed: apt-get install prometheus (it ships promtool)")
    return found


def grafana_to_promql(expr: str) -> str:
    for macro, value in _SUBSTITUTIONS.items():  # longest names first, so $model does not eat $model_version
        expr = expr.replace(macro, value)
    return expr


def promql_errors(queries: list[tuple[str, str]]) -> list[str]:
    """(label, Grafana PromQL) pairs -> one message per query Prometheus cannot parse."""
    rules = [{"record": f"check_{i}", "expr": grafana_to_promql(expr)} for i, (_, expr) in enumerate(queries)]
    work = Path(tempfile.mkdtemp(prefix="mlmon-promql-"))
    try:
        path = work / "queries.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}, sort_keys=False))
        proc = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode == 0:
        return []
    errors = []
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _RULE.search(line)
        if m:
            label, expr = queries[int(m[1]) - 1]  # promtool counts rules from 1
            errors.append(f"{label}: {m[2]}\n    > {expr}")
    return errors or [f"promtool failed ({proc.returncode}): {proc.stdout}{proc.stderr}"]
