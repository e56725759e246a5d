"""Fuzzing: no input line raises out of the line checker or the batch path, and every line is
accounted for (stored, a duplicate, a dead letter or blank). Bounded example counts: seconds."""

from __future__ import annotations

import json
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmon.ingest.core import now_ms, prepare_batch, validator_for, write_batch
from mlmon.ingest.duckdb_sink import DuckDBSink
from mlmon.ingest.validate import Accepted, Rejected
from tests.ingest.conftest import prediction

_VALIDATOR = validator_for()

odd_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20) | st.sampled_from(
    ["", "\x00", "\u2028", "\ud800", "\udfff", "\ufeff", "NaN", "2025-01-15T10:00:00Z", "é" * 30])
numbers = st.integers(min_value=-(2**80), max_value=2**80) | st.floats(allow_nan=True, allow_infinity=True) \
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, 1e308, 5e-324])
scalars = st.none() | st.booleans() | numbers | odd_text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner,
                                                                                               max_size=3),
                           max_leaves=12)


def _as_line(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", errors="surrogatepass")
    except ValueError:  # a float json.dumps refuses (never: it writes NaN); keep the strategy total
        return repr(value).encode()


def _deep(depth: int, opener: bytes) -> bytes:
    """An event-like object nesting ``depth`` objects, or holding ``depth`` nested arrays."""
    if opener == b"{":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"x":' + b"[" * depth + b"]" * depth + b"}"


mutated_events = st.builds(
    lambda path, value, event_id: _mutate(event_id, path, value),
    st.sampled_from([("event", "id"), ("@timestamp",), ("mlmon", "features", "numeric", "x"),
                     ("mlmon", "prediction", "latency_ms"), ("mlmon", "model", "name"), ("labels", "t"),
                     ("mlmon", "segment", "s"), ("event", "dataset"), ("mlmon", "prediction", "scores", "a")]),
    json_values, st.text(max_size=8))


def _mutate(event_id: str, path: tuple[str, ...], value: Any) -> bytes:
    doc = prediction(event_id or "e", x=1.0)
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return _as_line(doc)


raw_lines = st.binary(max_size=200) | json_values.map(_as_line) | mutated_events \
    | st.builds(_deep, st.integers(1, 3000), st.sampled_from([b"{", b"["]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_lines)
def test_the_line_checker_never_raises(raw: bytes) -> None:
    result = _VALIDATOR.process(raw, now_ms())
    assert isinstance(result, (Accepted, Rejected))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raw_lines, min_size=1, max_size=40), st.integers(0, 40), st.booleans())
def test_a_batch_of_any_lines_is_stored_whole(bad: list[bytes], good: int, columnar: bool) -> None:
    """Bad lines mixed with good ones, through the fast path (chunks of >= 16 lines) and DuckDB."""
    lines = [json.dumps(prediction(f"good-{i}-unique", x=float(i))).encode() + b"\n" for i in range(good)]
    batch = [line if line.endswith(b"\n") else line + b"\n" for line in bad] + lines
    batch = batch[::2] + batch[1::2]
    con = duckdb.connect(":memory:")
    try:
        report = write_batch(DuckDBSink(con), prepare_batch(batch, _VALIDATOR, now_ms(), columnar=columnar))
    finally:
        con.close()
    accounted = report.accepted + sum(report.dead_lettered.values()) + report.blank_lines
    assert accounted == len(batch)
    assert report.stored["prediction"] >= good
