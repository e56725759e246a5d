"""Every field the emitter writes is in the contract, with the contract's type."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from typing import Any

from mlmon_logging import contract, contract_doc

from .conftest import ListSink, flatten

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "date": (str,), "keyword": (str,), "text": (str,), "double": (float, int), "long": (int,), "boolean": (bool,),
}
_ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _check(event: dict[str, Any]) -> None:
    kind = contract.KIND_OF_DATASET[event["event"]["dataset"]]
    flat = flatten(event)
    for name, value in flat.items():
        ftype = contract.field_type(name)
        assert ftype is not None, f"{name} is not in the contract"
        fixed = contract.FIELDS_BY_NAME.get(name)
        kinds = fixed.kinds if fixed else contract.family_of(name).kinds  # type: ignore[union-attr]
        assert kind in kinds, f"{name} is not allowed in {kind} events"
        if value is None:
            continue
        values = value if fixed is not None and fixed.array else [value]
        if fixed is not None and fixed.array:
            assert isinstance(value, list), name
        for v in values:
            assert isinstance(v, _JSON_TYPES[ftype]) and not (ftype != "boolean" and isinstance(v, bool)), (name, v)
            if ftype == "date":
                assert _ISO_MS.match(str(v)), (name, v)
        if fixed is not None and fixed.allowed:
            assert value in fixed.allowed, (name, value)
        if contract.family_of(name):
            assert re.match(contract.NAME_PATTERN, name.rsplit(".", 1)[1]), name
    for field in contract.fields_for(kind):
        if kind in field.required_in:
            assert field.name in flat, f"required {field.name} missing from {kind} event"
    assert event["mlmon"]["schema_version"] == contract.SCHEMA_VERSION
    assert event["ecs"]["version"] == contract.ECS_VERSION


def test_all_kinds_with_every_option_follow_the_contract(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(stats_interval=60.0, labels={"team": "growth"}, service="churn-api", service_version="1.2",
                       environment="prod", categorical=["zip"], redact={"email": "hash", "ssn": "drop"},
                       redaction_key="k", sample_rate=1.0, max_event_bytes=4096)
    pid = mlog.log_prediction({"age": 41, "plan": "pro", "zip": 10115, "email": "a@b.c", "ssn": "1",
                               "income": float("nan"), "when": dt.date(2026, 1, 2), "obj": object(),
                               "bad.name": 1, "blob": "x" * 10_000},
                              prediction=1, score=0.83, latency_ms=4.2, segment={"country": "DE"},
                              scores={0: 0.17, 1: 0.83})
    mlog.log_feedback(pid, actual=0)
    mlog.log_explanation(pid, {"age": 0.12, "plan": -0.03}, method="shap", base_value=0.4)
    mlog.log_prediction_error(TimeoutError("model server timed out"), latency_ms=2000.0)
    reg = make_logger(task="regression")
    rid = reg.log_prediction({"x": 1.5}, prediction=3.25)
    reg.log_feedback(rid, actual=3.0)
    mlog.close()
    reg.close()
    events = sink.events()
    assert {e["event"]["dataset"] for e in events} == set(contract.DATASETS.values())
    for event in events:
        _check(event)
    # Two loggers' threads share the sink: pick the classification model's prediction by its id.
    (prediction,) = [e for e in sink.events("mlmon.prediction") if e["mlmon"]["prediction"]["id"] == pid]
    flags = flatten(prediction)
    assert flags["mlmon.quality.truncated"] is True
    assert "mlmon.features.numeric.income" in flags["mlmon.quality.null_fields"]


def test_prediction_matches_the_documented_shape(log_one: Any) -> None:
    event = log_one(features={"age": 41, "plan": "pro"}, prediction=1, score=0.83, latency_ms=4.2,
                    segment={"country": "DE"})
    assert event["event"]["kind"] == "event" and event["event"]["module"] == "mlmon"
    assert event["mlmon"]["model"] == {"name": "churn", "version": "3", "task": "classification"}
    assert event["mlmon"]["prediction"]["label"] == "1"
    assert event["mlmon"]["features"] == {"numeric": {"age": 41.0}, "categorical": {"plan": "pro"}}
    assert event["mlmon"]["segment"] == {"country": "DE"}
    assert event["event"]["id"] != event["mlmon"]["prediction"]["id"]


def test_docs_contract_md_is_up_to_date() -> None:
    assert contract_doc.DOC_PATH.read_text(encoding="utf-8") == contract_doc.render(), (
        "docs/contract.md is stale: run `python -m mlmon_logging.contract_doc`")


def test_emitter_imports_no_heavy_dependency() -> None:
    code = ("import sys, mlmon_logging, mlmon_logging.stdlib, mlmon_logging.processors; "
            "heavy = {'numpy', 'pandas', 'duckdb', 'scipy'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
