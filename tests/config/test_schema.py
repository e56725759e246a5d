"""The JSON Schema of mlmon.yaml: valid, committed up to date, and accepting exactly what the shipped configs say."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from textwrap import dedent
from typing import Any

import jsonschema
import pytest
import yaml

from mlmon.cli.main import main
from mlmon.config.model import json_schema, render_schema
from tests.support import REPO

SCHEMA_PATH = REPO / "docs" / "mlmon.schema.json"
from mlmon.core.assets import ROOT


def _as_editor_sees(text: str) -> Any:
    """YAML as a language server validates it: timestamps are strings."""
    return json.loads(json.dumps(yaml.safe_load(text), default=lambda o: o.isoformat()))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), \
        "stale: run `mlmon config schema > docs/mlmon.schema.json` and commit it"


def test_mlmon_config_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json_schema() and printed["title"] == "mlmon.yaml"
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    perf = printed["$defs"]["PerformanceSpec"]["properties"]
    assert perf["task"]["enum"] == ["classification", "regression"] and perf["lookback"]["default"] == "14d"
    assert "description" in printed["$defs"]["ModelSpec"]["properties"]["window"]


def test_the_shipped_configs_are_valid(validator: jsonschema.Draft202012Validator) -> None:
    from mlmon.demo.run import config_yaml

    start, end = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 8, tzinfo=timezone.utc)
    for text in (dedent(config_yaml(start, end)), (ROOT / "docker" / "mlmon.yaml").read_text(encoding="utf-8")):
        assert list(validator.iter_errors(_as_editor_sees(text))) == []


@pytest.mark.parametrize("text", [
    "models: {churn: {drfit: {}}}",
    "models: {churn: {window: soon}}",
    "models: {churn: {drift: {thresholds: {wasserstien: {alert: 1}}}}}",
    "models: {churn: {performance: {task: ranking}}}",
    "models: {churn: {explainability: {reference_window: {from: 2025-01-01, until: 2025-01-02}}}}",
    "models: {}",
    "store: duckdb:///x",
])
def test_a_wrong_file_fails_the_schema(validator: jsonschema.Draft202012Validator, text: str) -> None:
    assert list(validator.iter_errors(_as_editor_sees(text)))


def test_the_deprecated_spelling_still_passes_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    text = "models: {churn: {performance: {task: classification, reference: {start: 2025-01-01, end: 2025-01-02}}}}"
    assert list(validator.iter_errors(_as_editor_sees(text))) == []
