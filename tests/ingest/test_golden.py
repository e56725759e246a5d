"""`mlmon ingest` passes the golden files Logstash is held to (logstash/tests)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import duckdb
import pytest

from mlmon.ingest import ingest_lines
from tools import golden
from mlmon.ingest.core import now_ms, validator_for
from mlmon.stores.duckdb import schema

CASES = golden.cases()


def test_every_event_kind_and_bad_input_class_has_a_golden_case() -> None:
    expected_docs = [d for case in CASES for d in golden.load_expected(case)]
    kinds = {d["source"]["event"]["dataset"] for d in expected_docs}
    from mlmon_logging.contract import DATASETS
    assert kinds == {*DATASETS.values(), "mlmon.deadletter"}
    reasons = {d["source"]["error"]["type"] for d in expected_docs if d["source"]["event"]["dataset"] == "mlmon.deadletter"}
    from mlmon_logging.contract import DEAD_LETTER_REASONS
    logstash_only = {"pipeline_error", "rejected_by_elasticsearch"}  # need a crashing filter / a live cluster
    assert reasons == set(DEAD_LETTER_REASONS) - logstash_only


@pytest.mark.parametrize("case", CASES)
def test_routing_matches_golden(case: str) -> None:
    data = (golden.GOLDEN_DIR / f"{case}.jsonl").read_bytes()
    docs = golden.route(golden.split_lines(data), validator_for(), now_ms())
    assert [golden.normalise(d) for d in docs] == golden.load_expected(case)


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _table_of(index: str) -> str:
    dataset = index.split("-")[1]
    if dataset == "mlmon.deadletter":
        return schema.DEAD_LETTER_TABLE
    return schema.EVENT_TABLES[dataset.removeprefix("mlmon.")]  # type: ignore[index]


@pytest.mark.parametrize("case", CASES)
def test_store_holds_exactly_the_golden_documents(case: str) -> None:
    """Ingest into DuckDB; each table holds the expected documents, nothing more, values intact."""
    con = duckdb.connect()
    data = (golden.GOLDEN_DIR / f"{case}.jsonl").read_bytes()
    ingest_lines(golden.split_lines(data), con)
    expected = golden.load_expected(case)
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in expected:
        by_table[_table_of(doc["index"])].append(_flatten(doc["source"]))
    for table in [*schema.EVENT_TABLES.values(), schema.DEAD_LETTER_TABLE]:
        rel = con.sql(f"SELECT * FROM {table}")
        rows = [dict(zip(rel.columns, r)) for r in rel.fetchall()]
        want = by_table.get(table, [])
        assert sorted(r["event.id"] for r in rows) == sorted(d["event.id"] for d in want)
        stored = {r["event.id"]: r for r in rows}
        for doc in want:
            row = stored[doc["event.id"]]
            for name, value in doc.items():
                if value == golden.INGEST_TIME:
                    assert row[name] is not None
                elif name in ("@timestamp", "event.ingested"):
                    assert row[name].isoformat().replace("+00:00", "") == value.rstrip("Z")[:26].rstrip("0").rstrip(".") \
                        or _same_instant(row[name], value)
                elif type(value) is int and type(row[name]) is float:  # an integer in a double field
                    assert row[name] == float(value), (case, doc["event.id"], name)
                else:
                    assert row[name] == value, (case, doc["event.id"], name)


def _same_instant(stored: Any, iso: str) -> bool:
    from mlmon.ingest.timestamps import parse_iso
    instant = parse_iso(iso)
    assert instant is not None
    return stored.timestamp() * 1_000_000 == pytest.approx(instant.micros, abs=1)


def test_golden_files_are_valid_json_lists() -> None:
    for case in CASES:
        docs = json.loads((golden.GOLDEN_DIR / f"{case}.expected.json").read_text(encoding="utf-8"))
        assert all(set(d) == {"index", "id", "source"} for d in docs)
