"""A batch call writes, row for row, the events the single calls write for the same rows.

Two loggers see the same rows: one through ``log_predictions`` (``log_feedback_batch``,
``log_explanations``), one through ``log_prediction`` (``log_feedback``,
``log_explanation``) called row by row with the same ids and timestamps. Their lines
must be byte-for-byte the same apart from ``event.id`` (fresh per event), and so must
their counts: the rows are checked, flagged, refused and sampled alike.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmon_logging import blocks, plans
from mlmon_logging import logger as logger_module
from tests.emitter_batch.conftest import MakeLogger

T0 = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
ROWS = 300


def _records() -> list[dict[str, Any]]:
    """Rows a service logs, with odd values mixed in: each goes down the careful path or is refused."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(ROWS):
        age = float(rng.normal(40, 10))
        out.append({
            "pid": f"req-{i}",
            "at": T0 + dt.timedelta(seconds=i * 1.7, microseconds=i * 1001),
            "age": math.nan if i % 50 == 3 else math.inf if i % 70 == 5 else age,   # flagged null
            "visits": int(rng.integers(0, 20)),
            "plan": None if i % 40 == 7 else str(rng.choice(["free", "pro"])),      # missing text: left out
            "vip": bool(i % 3 == 0),                                                # a label "true"/"false"
            "zip": int(rng.integers(10000, 10010)),                                 # declared categorical
            "bad.name": 1.0,                                                        # listed in invalid_names
            "y": None if i % 60 == 11 else int(rng.integers(0, 2)),                 # refused: no prediction
            "p": math.nan if i % 45 == 9 else float(rng.random()),                  # flagged null
            "lat": -1.0 if i % 55 == 13 else float(rng.random() * 9),               # flagged null
            "country": str(rng.choice(["DE", "FR"])),
        })
    return out


FEATURES = ["age", "visits", "plan", "vip", "zip", "bad.name"]


def test_log_predictions_writes_what_log_prediction_writes(make_logger: MakeLogger) -> None:
    records = _records()
    frame = pd.DataFrame(records)
    batch, batch_sink = make_logger(categorical=["zip"])
    single, single_sink = make_logger(categorical=["zip"])

    ids = batch.log_predictions(frame, prediction="y", score="p", latency_ms="lat", segment=["country"],
                                timestamp="at", prediction_id="pid")
    for row in records:
        single.log_prediction({name: row[name] for name in FEATURES}, row["y"], row["p"], latency_ms=row["lat"],
                              segment={"country": row["country"]}, prediction_id=row["pid"], timestamp=row["at"])
    batch.flush()
    single.flush()

    assert ids == [row["pid"] for row in records]
    assert len(batch_sink.lines) == ROWS - 5  # the five rows without a prediction are refused
    assert batch_sink.lines_without_event_id() == single_sink.lines_without_event_id()
    assert batch.stats == single.stats
    assert batch.stats.dropped_by_reason == {"invalid": 5}
    flagged = [e["mlmon"].get("quality", {}) for e in batch_sink.events()]
    assert all(q["invalid_names"] == ["bad.name"] for q in flagged)
    assert sum("null_fields" in q for q in flagged) > 10


def test_made_ids_and_sampling_follow_the_single_calls(make_logger: MakeLogger) -> None:
    records: list[dict[str, Any]] = [{"age": float(i), "y": i % 2, "at": T0 + dt.timedelta(seconds=i)}
                                     for i in range(400)]
    batch, batch_sink = make_logger(sample_rate=0.5)
    single, single_sink = make_logger(sample_rate=0.5)

    ids = batch.log_predictions({name: [r[name] for r in records] for name in ("age", "y", "at")},
                                prediction="y", timestamp="at")
    for pid, row in zip(ids, records):
        single.log_prediction({"age": row["age"]}, row["y"], prediction_id=pid, timestamp=row["at"])
    batch.flush()
    single.flush()

    assert len(ids) == len(set(ids)) == 400
    for pid, row in zip(ids, records):  # UUIDv7s made from each row's own time
        assert pid[14] == "7" and int(pid[:8] + pid[9:13], 16) == int(row["at"].timestamp() * 1000)
    assert batch_sink.lines_without_event_id() == single_sink.lines_without_event_id()
    assert batch.stats == single.stats
    assert 120 < batch.stats.sampled_out < 280


def test_feedback_and_explanations_write_what_the_single_calls_write(make_logger: MakeLogger) -> None:
    ids = [f"req-{i}" for i in range(200)]
    actual: list[Any] = [i % 2 for i in range(200)]
    actual[17] = None  # refused by both
    shap = pd.DataFrame({"id": ids, "age": np.linspace(-1, 1, 200), "plan": 0.25, "bad.name": 1.0})
    shap.loc[5, "age"] = np.nan
    batch, batch_sink = make_logger(task="classification", sample_rate=0.7)
    single, single_sink = make_logger(task="classification", sample_rate=0.7)

    fed = batch.log_feedback_batch({"id": ids, "label": actual}, prediction_id="id", actual="label",
                                   timestamp=[1_793_613_600 + i for i in range(200)])
    explained = batch.log_explanations(shap, prediction_id="id", method="shap", base_value=0.31,
                                       timestamp=[1_793_613_600.5] * 200)
    kept = 0
    for i, pid in enumerate(ids):
        kept += single.log_feedback(pid, actual[i], timestamp=1_793_613_600 + i)
    for row in shap.to_dict("records"):
        single.log_explanation(row["id"], {"age": row["age"], "plan": row["plan"], "bad.name": row["bad.name"]},
                               method="shap", base_value=0.31, timestamp=1_793_613_600.5)
    batch.flush()
    single.flush()

    assert fed == kept and 100 < fed < 200
    assert explained == fed  # the same ids are kept by sampling
    assert batch_sink.lines_without_event_id() == single_sink.lines_without_event_id()
    assert batch.stats == single.stats


@pytest.fixture(params=["speedups", "pure-python"])
def speedups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both splits: the C one where it was built, and the pure-Python one it stands in for."""
    if request.param == "pure-python":
        monkeypatch.setattr(plans, "APPLY_PLAN", None)
        monkeypatch.setattr(blocks, "JOIN_ROWS", None)
    elif plans.JOIN_ROWS is None:
        pytest.skip("mlmon_logging._speedups is not built")
    return str(request.param)


def _mixed_frame(rows: int) -> pd.DataFrame:
    """Columns whose values the plain path covers only in part, each mixing kinds in another order."""
    rng = np.random.default_rng(18)
    mixed_first_text: list[Any] = [str(rng.choice(["a", "b"])) for _ in range(rows)]
    mixed_first_number: list[Any] = [float(v) for v in rng.normal(0, 1, rows)]
    for i in range(rows):
        if i % 7 == 3:
            mixed_first_text[i] = 1.5 if i % 2 else 2          # a number among labels: the kind changes
        if i % 11 == 5:
            mixed_first_number[i] = "x"                        # a label among numbers: flagged
        if i % 13 == 6:
            mixed_first_number[i] = None                       # missing
        if i % 17 == 8:
            mixed_first_text[i] = True                         # a bool among labels
    mixed_first_number[0] = "first"  # the kind is learned from the first row, whatever most rows hold
    counts = rng.integers(0, 50, rows)
    amounts = rng.normal(100, 30, rows)
    amounts[rng.integers(0, rows, 9)] = np.nan
    amounts[rng.integers(0, rows, 3)] = np.inf
    return pd.DataFrame({
        "text_then_numbers": pd.Series(mixed_first_text, dtype=object),
        "numbers_then_text": pd.Series(mixed_first_number, dtype=object),
        "count": counts,                                                       # int64: written as doubles
        "amount": amounts,                                                     # float64 with NaN and inf
        "flag": rng.random(rows) < 0.5,                                        # bool: the careful path
        "nullable": pd.array([None if i % 9 == 0 else int(i) for i in range(rows)], dtype="Int64"),
        "city": pd.Series([None if i % 10 == 1 else f"c{i % 4}" for i in range(rows)], dtype="str"),
        "big": pd.Series([10**400 if i % 50 == 20 else i for i in range(rows)], dtype=object),  # beyond doubles
        "y": rng.integers(0, 3, rows),
        "p": rng.random(rows),
        "country": pd.Series(["DE" if i % 3 else 7 for i in range(rows)], dtype=object),  # a segment not text
        "at": [T0 + dt.timedelta(milliseconds=7 * i) for i in range(rows)],
    })


@pytest.mark.parametrize("slice_rows", [64, 2048])
@pytest.mark.parametrize("columns", [["text_then_numbers", "numbers_then_text", "count", "amount", "nullable", "city",
                                      "big"],
                                     ["flag", "count", "amount", "city"],  # a bool column: every row careful
                                     ["count", "amount", "city"],
                                     ["count", "amount"],
                                     ["city"],
                                     []])
def test_columns_of_any_kind_write_what_log_prediction_writes(make_logger: MakeLogger, speedups: str,
                                                              monkeypatch: pytest.MonkeyPatch, slice_rows: int,
                                                              columns: list[str]) -> None:
    monkeypatch.setattr(logger_module, "SLICE_ROWS", slice_rows)
    frame = _mixed_frame(400)
    batch, batch_sink = make_logger(task="classification")
    single, single_sink = make_logger(task="classification")

    ids = batch.log_predictions(frame, prediction="y", score="p", features=columns, segment=["country"],
                                timestamp="at")
    for pid, row in zip(ids, _rows_as_given(frame)):
        single.log_prediction({name: row[name] for name in columns}, row["y"], row["p"],
                              segment={"country": row["country"]}, prediction_id=pid, timestamp=row["at"])
    batch.flush()
    single.flush()

    batch_lines, single_lines = batch_sink.lines_without_event_id(), single_sink.lines_without_event_id()
    assert len(batch_lines) == len(single_lines) == 400
    for i, (ours, theirs) in enumerate(zip(batch_lines, single_lines)):
        assert ours == theirs, f"row {i}"
    assert batch.stats == single.stats


def _rows_as_given(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as the batch call reads them: each column's ``tolist()``, a missing text (NaN in an
    object or text column) read as None - the values a caller would pass to log_prediction."""
    columns = {}
    for name in frame.columns:
        values = frame[name].tolist()
        if frame[name].dtype.kind == "O":
            values = [None if type(v) is float and v != v else v for v in values]
        columns[name] = values
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


def test_a_redactor_sees_the_rows_as_dicts(make_logger: MakeLogger) -> None:
    frame = _mixed_frame(100)
    batch, batch_sink = make_logger(task="classification", redact={"city": "drop", "count": "hash"},
                                    redaction_key="k")
    single, single_sink = make_logger(task="classification", redact={"city": "drop", "count": "hash"},
                                      redaction_key="k")
    ids = batch.log_predictions(frame, prediction="y", features=["count", "amount", "city"], timestamp="at")
    for pid, row in zip(ids, _rows_as_given(frame)):
        single.log_prediction({name: row[name] for name in ("count", "amount", "city")}, row["y"],
                              prediction_id=pid, timestamp=row["at"])
    batch.flush()
    single.flush()
    assert batch_sink.lines_without_event_id() == single_sink.lines_without_event_id()
