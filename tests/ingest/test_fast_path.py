"""The columnar fast path stores exactly what the per-line checker stores.

Each case is ingested twice into fresh stores - once through the fast path
(forced to read even tiny chunks with Arrow), once line by line - and every
table must hold the same rows, values and columns, with the same report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmon.ingest import core, ingest_lines
from tools import golden
from mlmon.ingest.fast_path import FastPath
from mlmon.ingest.timestamps import Instant
from mlmon.stores.duckdb import schema

NOW = Instant(1_737_000_000, 250_000_000)  # 2025-01-16, after every golden timestamp
GOLDEN_LINES = [line for case in golden.cases()
                for line in golden.split_lines((golden.GOLDEN_DIR / f"{case}.jsonl").read_bytes())]
GOOD_LINES = [line for line in GOLDEN_LINES
              if not core.validator_for().process(line, NOW).index.startswith(golden.DEAD_LETTER_PREFIX)]


@pytest.fixture(autouse=True)
def arrow_reads_every_chunk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """By default chunks under 16 lines go line by line; here Arrow must read them too."""
    validator = core.validator_for()
    monkeypatch.setitem(core._fast_paths, validator, FastPath(validator, min_chunk_lines=1))
    yield


def stored(lines: list[bytes], columnar: bool, batch_size: int = 50_000) -> dict[str, Any]:
    con = duckdb.connect()
    report = ingest_lines(lines, con, clock=lambda: NOW, columnar=columnar, batch_size=batch_size)
    tables: dict[str, Any] = {"report": report.as_dict()}
    for table in [*schema.EVENT_TABLES.values(), schema.DEAD_LETTER_TABLE]:
        rel = con.sql(f'SELECT * FROM {table} ORDER BY "event.id"')
        tables[table] = (sorted(rel.columns), [dict(zip(rel.columns, row)) for row in rel.fetchall()])
    return tables


def assert_same_store(lines: list[bytes], batch_size: int = 50_000) -> None:
    fast, exact = stored(lines, True, batch_size), stored(lines, False, batch_size)
    for key in exact:
        assert fast[key] == exact[key], key


@pytest.mark.parametrize("case", golden.cases())
def test_golden_cases_store_the_same(case: str) -> None:
    assert_same_store(golden.split_lines((golden.GOLDEN_DIR / f"{case}.jsonl").read_bytes()))


def test_all_golden_lines_in_one_batch_store_the_same() -> None:
    assert_same_store([line + b"\n" for line in GOLDEN_LINES])


def test_fast_path_takes_clean_events_without_the_per_line_checker() -> None:
    lines = [line + b"\n" for line in GOOD_LINES if b"null" not in line]
    result = core.fast_path_for(core.validator_for()).split(lines, list(range(len(lines))), NOW)
    assert result.per_line == []
    assert sum(t.num_rows for tables in result.tables.values() for t in tables) == len(lines)


def test_a_bad_line_among_good_ones_costs_only_itself() -> None:
    good = [json.dumps(_prediction(i)).encode() + b"\n" for i in range(200)]
    lines = good[:100] + [b'{"event": {"dataset": 5}}\n'] + good[100:]
    assert core.validator_for().process(good[0].rstrip(), NOW).index == "logs-mlmon.prediction-default"
    result = core.fast_path_for(core.validator_for()).split(lines, list(range(len(lines))), NOW)
    assert result.per_line == [100]


def test_a_date_where_an_object_belongs_does_not_slow_later_chunks() -> None:
    """Arrow reads a date-like string as a timestamp and the parser learns to keep that path
    as text; learnt where the contract wants an object, every later chunk would fail to read."""
    fast = FastPath(core.validator_for())
    odd = []
    for i in range(32):
        doc = _prediction(1000 + i)
        doc["mlmon"]["features"] = "2025-01-15T10:00:00Z"
        odd.append(json.dumps(doc).encode() + b"\n")
    assert fast.split(odd, list(range(len(odd))), NOW).per_line == list(range(len(odd)))  # all refused
    good = [json.dumps(_prediction(i)).encode() + b"\n" for i in range(64)]
    assert fast.split(good, list(range(len(good))), NOW).per_line == []


def _prediction(i: int) -> dict[str, Any]:
    from tests.ingest.conftest import prediction  # noqa: PLC0415
    return prediction(f"e-{i}", x=i * 0.5, y=float(i))


# -- random mixes of good and bad lines ---------------------------------------------
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["NaN", "Infinity", "2025-01-15T10:00:00Z", "2025-01-15", "classification", "event",
                     "mlmon.feedback", "1", "yes", "2999-01-01T00:00:00Z", "2025-02-30T00:00:00Z"]),
    st.lists(st.text(max_size=3), max_size=2), st.just([None]), st.just({}), st.just({"a": 1}),
)
FIELD_NAMES = st.sampled_from([
    "@timestamp", "event.id", "event.kind", "event.dataset", "mlmon.schema_version", "mlmon.model.task",
    "mlmon.prediction.label", "mlmon.prediction.value", "mlmon.prediction.latency_ms", "mlmon.sample_rate",
    "mlmon.prediction.latency_bucket", "event.ingested", "mlmon.features.numeric.age", "mlmon.features.numeric.new",
    "mlmon.features.categorical.plan", "mlmon.features.numeric.bad name", "labels.team", "mlmon.feedback.actual",
    "mlmon.quality.null_fields", "mlmon.segment.country", "host", "mlmon.features", "unknown.field", "tags",
])


def _set(doc: dict[str, Any], dotted: str, value: Any, nested: bool) -> None:
    if not nested:
        doc[dotted] = value
        return
    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value


def _without_nulls(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_nulls(v) if isinstance(v, dict) else v for k, v in node.items() if v is not None}


#: Valid documents without nulls too: lines holding "null" are mostly left to the per-line checker,
#: so these make sure the fast path's own decisions are what gets compared.
BASE_DOCS = [json.loads(line) for line in GOOD_LINES] + [_without_nulls(json.loads(line)) for line in GOOD_LINES]
_MARK = 1.2345e-07  # a value written as a literal, then swapped for something else in the text


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(draw(st.sampled_from(BASE_DOCS))))
    if draw(st.booleans()):  # share ids, so first-copy-wins and duplicates are exercised
        _set(doc, "event.id", draw(st.sampled_from(["id-1", "id-2", "id-3"])), nested="event" in doc)
    for _ in range(draw(st.integers(0, 2))):
        _set(doc, draw(FIELD_NAMES), draw(JSON_VALUES), nested=draw(st.booleans()))
    literal = draw(st.sampled_from([None, b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"9223372036854775808",
                                    b"12345678901234567890123", b"1.0", b"true", b'"1"']))
    if literal is not None:
        _set(doc, draw(st.sampled_from(["mlmon.features.numeric.age", "mlmon.sample_rate", "mlmon.prediction.score",
                                        "mlmon.emitter.dropped", "mlmon.attributions.age"])), _MARK, nested=True)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True).encode()
    if literal is not None:
        text = text.replace(b"1.2345e-07", literal)
    damage = draw(st.sampled_from(["none"] * 6 + ["truncate", "cr", "latin1", "dup", "two", "blank", "surrogate",
                                                  "space"]))
    if damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "cr":
        text += b"\r"
    elif damage == "latin1":
        text = text.replace(b"gold", "gölð".encode("latin-1"))
    elif damage == "dup":
        text = text[:-1] + b', "ecs": {"version": "x"}}'
    elif damage == "two":
        text += text
    elif damage == "blank":
        text = draw(st.sampled_from([b"", b"   ", b"\t"]))
    elif damage == "surrogate":
        text = text.replace(b'"gold"', b'"\\ud800"')
    elif damage == "space":
        text = b"  " + text + b" "
    return text + b"\n"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(mutated_line(), st.sampled_from([json.dumps(d).encode() + b"\n" for d in BASE_DOCS])),
                min_size=20, max_size=80),
       st.sampled_from([7, 50_000]))
def test_random_mixes_store_the_same(lines: list[bytes], batch_size: int) -> None:
    assert_same_store(lines, batch_size)


# -- each known difference between Arrow's reader and orjson, pinned --------------------
def _line(**changes: Any) -> bytes:
    """A valid prediction line with dotted ``changes`` applied (value ``...`` deletes a field)."""
    doc = _prediction(len(changes))
    for dotted, value in changes.items():
        _set(doc, dotted.replace("__", "."), value, nested=True)
    return json.dumps(doc).encode() + b"\n"


def _literal(text: str, field: str = "mlmon__features__numeric__x") -> bytes:
    return _line(**{field: _MARK_VALUE}).replace(b"1.2345e-07", text.encode())


_MARK_VALUE = 1.2345e-07
PINNED = {
    "nan literal": [_literal("NaN")],
    "infinity literal": [_literal("-Infinity", "mlmon__prediction__score")],
    "huge number": [_literal("1e400")],
    "integer beyond int64 in a double": [_literal("9223372036854775808")],
    "integer beyond 2**53 in a double": [_literal("9007199254740993")],
    "float in a long field": [_literal("1.0", "mlmon__emitter__dropped")],
    "bool in a double": [_literal("true")],
    "top-level null": [b"null\n", _line()],
    "object set to null": [_literal("null", "host"), _line(**{"host": {"name": "h"}})],
    "family key only ever null": [_literal("null", "mlmon__features__numeric__z")],
    "family key null beside values": [_literal("null", "mlmon__features__numeric__z"), _line(**{"mlmon__features__numeric__z": 2.5})],
    "other kind's field as null": [_literal("null", "mlmon__feedback__actual")],
    "other kind's field with a value": [_line(**{"mlmon__feedback__actual": "yes"})],
    "bad family name": [_line(**{"mlmon__features__numeric__bad name": 1.0})],
    "value outside the allowed set": [_line(**{"event__module": "other"})],
    "sample rate out of range": [_line(**{"mlmon__sample_rate": 0})],
    "derived field sent by the emitter": [_line(**{"mlmon__prediction__latency_bucket": "fast"})],
    "timestamp-like category": [_line(**{"mlmon__features__categorical__day": "2025-01-15"})],
    "keyword that looks like a number": [_line(**{"mlmon__features__categorical__c": "1"}), _line(**{"mlmon__features__categorical__c": 1})],
    "list with a null": [_line(**{"mlmon__quality__null_fields": ["a", None]})],
    "empty list": [_line(**{"mlmon__quality__null_fields": []})],
    "nested and dotted twice": [_line().replace(b'{"@timestamp"', b'{"event.id": "x", "@timestamp"')],
    "duplicate key": [_line().replace(b'{"@timestamp"', b'{"ecs": {"version": "1"}, "@timestamp"')],
    "two objects on a line": [_line()[:-1] + _line()],
    "carriage return": [_line()[:-1] + b"\r\n", _line()],
    "lone surrogate": [_line(**{"mlmon__features__categorical__c": "x"}).replace(b'"x"', b'"\\udc00"')],
    "invalid utf-8": [_line(**{"mlmon__features__categorical__c": "x"}).replace(b'"x"', b'"\xff"')],
    "future within a microsecond": [_line(**{"@timestamp": "2025-01-16T04:05:00.250000500Z"}),
                                    _line(**{"@timestamp": "2025-01-16T04:05:00.250000Z"})],
    "zone offsets and nanoseconds": [_line(**{"@timestamp": "2025-01-15T23:59:59.999999999-05:30"})],
    "impossible date": [_line(**{"@timestamp": "2025-02-29T00:00:00Z"})],
    "missing required field": [_line(**{"service": {}})],
    "same id twice, first wins": [_line(**{"mlmon__features__numeric__x": 1.0}), _line(**{"mlmon__features__numeric__x": 2.0})],
}


@pytest.mark.parametrize("lines", PINNED.values(), ids=PINNED.keys())
def test_pinned_differences_store_the_same(lines: list[bytes]) -> None:
    assert_same_store(lines + [_line(**{"event__id": f"ok-{i}"}) for i in range(3)])


def test_default_chunking_leaves_each_line_to_exactly_one_path() -> None:
    fast = FastPath(core.validator_for())  # chunks under 16 lines go per-line
    good = [_line(**{"event__id": f"g-{i}"}) for i in range(60)]
    lines = good[:20] + [_line()[:-1] + b"\r\n"] * 5 + good[20:35] + [b"null\n"] + good[35:]
    result = fast.split(lines, list(range(len(lines))), NOW)
    fast_positions = [p for tables in result.tables.values() for t in tables for p in t["__line"].to_pylist()]
    assert sorted(fast_positions + result.per_line) == list(range(len(lines)))
    assert len(fast_positions) >= 40  # the good lines around the odd ones still take the fast path
