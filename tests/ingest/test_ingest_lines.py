"""ingest_lines: batching, idempotency, new feature columns, clock tolerance, reports."""

from __future__ import annotations

import json

import duckdb
import pytest

from mlmon.ingest import ingest_lines
from mlmon.ingest.core import validator_for
from mlmon.ingest.timestamps import Instant, parse_iso


def test_same_lines_twice_store_nothing_twice(line_of) -> None:
    con = duckdb.connect()
    lines = [line_of(f"e{i}", x=float(i)) for i in range(10)] + [b"garbage\n"]
    first = ingest_lines(lines, con, batch_size=3)
    second = ingest_lines(lines, con, batch_size=4)
    assert first.stored["prediction"] == 10 and first.dead_letters_stored == 1
    assert second.stored["prediction"] == 0 and second.duplicates["prediction"] == 10
    assert second.dead_letters_stored == 0 and second.dead_lettered["not_json"] == 1
    assert con.execute("SELECT count(*) FROM predictions").fetchone() == (10,)
    assert con.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,)


def test_duplicate_event_id_within_one_batch_keeps_the_first(line_of) -> None:
    con = duckdb.connect()
    report = ingest_lines([line_of("same", x=1.0), line_of("same", x=2.0)], con)
    assert report.stored["prediction"] == 1 and report.duplicates["prediction"] == 1
    assert con.execute('SELECT "mlmon.features.numeric.x" FROM predictions').fetchall() == [(1.0,)]


def test_new_features_become_typed_columns(line_of) -> None:
    con = duckdb.connect()
    ingest_lines([line_of("a", x=1.0)], con)
    ingest_lines([line_of("b", y=2)], con)
    rows = con.execute('SELECT "event.id", "mlmon.features.numeric.x", "mlmon.features.numeric.y" '
                   'FROM predictions ORDER BY 1').fetchall()
    assert rows == [("a", 1.0, None), ("b", None, 2.0)]
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                         "WHERE table_name = 'predictions'").fetchall())
    assert types["mlmon.features.numeric.y"] == "DOUBLE"
    assert types["mlmon.prediction.latency_bucket"] == "VARCHAR"


def test_store_path_is_created_and_reopened(tmp_path, line_of) -> None:
    path = tmp_path / "sub" / "m.duckdb"
    assert ingest_lines([line_of("a")], path).stored["prediction"] == 1
    assert ingest_lines([line_of("a")], str(path)).duplicates["prediction"] == 1


def test_future_tolerance_boundary() -> None:
    from tests.ingest.conftest import prediction  # noqa: PLC0415
    validator = validator_for()
    now = parse_iso("2025-01-15T10:00:00Z")
    assert now is not None
    at_limit = prediction("a")
    at_limit["@timestamp"] = "2025-01-15T10:05:00Z"
    past_limit = prediction("b")
    past_limit["@timestamp"] = "2025-01-15T10:05:00.001Z"
    assert validator.process(json.dumps(at_limit).encode(), now).index == "logs-mlmon.prediction-default"
    rejected = validator.process(json.dumps(past_limit).encode(), now)
    assert rejected.fields["error.type"] == "future_timestamp"


@pytest.mark.parametrize(("latency", "bucket"), [(0, "0-5ms"), (4.999, "0-5ms"), (5, "5-10ms"), (999.9, "500-1000ms"),
                                                 (1000, "1000ms+"), (1e9, "1000ms+")])
def test_latency_buckets_are_half_open(latency: float, bucket: str) -> None:
    from tests.ingest.conftest import prediction  # noqa: PLC0415
    event = prediction("a")
    event["mlmon"]["prediction"]["latency_ms"] = latency
    result = validator_for().process(json.dumps(event).encode(), Instant(1_800_000_000, 0))
    assert result.fields["mlmon.prediction.latency_bucket"] == bucket


def test_namespace_routes_to_its_data_streams(line_of) -> None:
    validator = validator_for("staging")
    now = Instant(1_800_000_000, 0)
    assert validator.process(line_of("a").rstrip(), now).index == "logs-mlmon.prediction-staging"
    assert validator.process(b"nope", now).index == "logs-mlmon.deadletter-staging"


def test_timestamps_are_stored_with_their_instant(line_of) -> None:
    con = duckdb.connect()
    ingest_lines([line_of("a")], con)
    ts, = con.execute('SELECT epoch_us("@timestamp") FROM predictions').fetchone()
    assert ts == parse_iso("2025-01-15T10:00:00.123Z").micros  # type: ignore[union-attr]


def test_bad_batch_size_is_refused(line_of) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ingest_lines([line_of("a")], duckdb.connect(), batch_size=0)


def test_a_batch_of_stored_and_new_events_stores_only_the_new(line_of) -> None:
    con = duckdb.connect()
    ingest_lines([line_of("a"), line_of("b")], con)
    report = ingest_lines([line_of("a"), line_of("c"), line_of("b"), line_of("d")], con)
    assert report.stored["prediction"] == 2 and report.duplicates["prediction"] == 2
    fresh = ingest_lines([line_of("e")], con)  # after a batch that met stored ids, plain inserts resume
    assert fresh.stored["prediction"] == 1
    assert con.execute('SELECT "event.id" FROM predictions ORDER BY 1').fetchall() == [(x,) for x in "abcde"]


def test_a_double_field_holding_a_huge_integer_is_stored_not_crashed(line_of) -> None:
    con = duckdb.connect()
    line = line_of("a", x=1.0).replace(b'"x": 1.0', b'"x": 9007199254740993')
    assert ingest_lines([line], con, columnar=False).stored["prediction"] == 1
    assert con.execute('SELECT "mlmon.features.numeric.x" FROM predictions').fetchone() == (9007199254740992.0,)
