"""The metrics table's rows built from the documents' fields equal those built from each nested source."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mlmon.core.documents import METRIC_FIELDS, MetricDocument, Threshold, assembled, shared_fields
from mlmon.core.queries import flatten_source
from mlmon.stores.duckdb.store import metric_table

T0 = datetime(2025, 3, 1, 10, tzinfo=timezone.utc)


def _docs() -> list[MetricDocument]:
    """Every kind of field value: thresholds or none, non-finite and numpy values, segments, classes,
    computed times with microseconds, a window in another time zone, maturity or none."""
    plus2 = timezone(timedelta(hours=2))
    common: dict[str, Any] = dict(model="m", model_version="1", run_id="r", code_version="c")
    return [
        MetricDocument(**common, family="drift", metric="psi", window_start=T0, window_end=T0 + timedelta(hours=1),
                       value=np.float64(0.25), status="warning", n_current=900, feature="f1",
                       threshold=Threshold(0.1, 0.2, "above", "config"), n_reference=5000, reference_id="ref",
                       details={"p": np.float32(0.5), "nan": float("nan"), "bins": (1, 2), "nested": {"x": np.int64(3)}},
                       computed_at=datetime(2025, 3, 2, 1, 2, 3, 456789, tzinfo=timezone.utc)),
        MetricDocument(**common, family="performance", metric="accuracy", window_start=T0, window_end=T0 + timedelta(hours=1),
                       value=float("inf"), status="no_threshold", n_current=0, class_label="macro",
                       segment_field="region", segment_value="urban", maturity="provisional",
                       threshold=Threshold(float("-inf"), 3, "below", "reference_relative"),
                       computed_at=datetime(2025, 3, 2, 1, 2, 3, 999999, tzinfo=plus2)),
        MetricDocument(**common, family="volume", metric="rows", window_start=T0.astimezone(plus2),
                       window_end=(T0 + timedelta(hours=2)).astimezone(plus2), value=None,
                       status="insufficient_data", n_current=12, method="count", maturity="final",
                       computed_at=datetime(2025, 3, 2, tzinfo=timezone.utc)),
    ]


def _from_sources(docs: list[MetricDocument]) -> pa.Table:
    """The rows as they were built before: each document's nested source, flattened, values converted."""
    flats = [flatten_source(d.to_source()) for d in docs]

    def value(v: Any, es_type: str) -> Any:
        if v is None:
            return None
        if es_type == "date":
            return datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        if es_type == "flattened":
            return json.dumps(v)
        if es_type == "double":
            return float(v) if math.isfinite(float(v)) else None
        return v

    types = metric_table(docs).schema
    return pa.table({n: pa.array([value(f.get(n), t) for f in flats], types.field(n).type)
                     for n, t in METRIC_FIELDS.items()})


def test_rows_from_fields_equal_rows_from_sources() -> None:
    docs = _docs()
    built = metric_table(docs)
    assert built.column_names == list(METRIC_FIELDS)
    flattened = [n for n, t in METRIC_FIELDS.items() if t == "flattened"]

    def parsed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # JSON text: compared by what it says
        return [{k: json.loads(v) if k in flattened and v is not None else v for k, v in row.items()} for row in rows]

    assert parsed(built.to_pylist()) == parsed(_from_sources(docs).to_pylist())


def test_details_text_is_json_and_keeps_what_orjson_refuses() -> None:
    """orjson writes the details (speed); a value it refuses (an integer past 64 bits) falls back to the stdlib."""
    doc = replace(_docs()[0], details={"big": 2 ** 70, "small": 1e-05, "keys": {1: "a"}})
    [text] = metric_table([doc]).column("metric.details").to_pylist()
    assert json.loads(text) == {"big": 2 ** 70, "small": 1e-05, "keys": {"1": "a"}}


def test_a_naive_computed_time_is_refused() -> None:
    naive = MetricDocument(model="m", model_version="1", family="drift", metric="psi", window_start=T0,
                           window_end=T0 + timedelta(hours=1), value=1.0, status="ok", n_current=1, run_id="r",
                           code_version="c", computed_at=datetime(2025, 3, 2))
    with pytest.raises(ValueError, match="naive datetime"):
        metric_table([naive])


def test_the_id_is_made_with_the_document_and_again_by_replace() -> None:
    doc = MetricDocument(model="m", model_version="1", family="drift", metric="psi", window_start=T0,
                         window_end=T0 + timedelta(hours=1), value=1.0, status="ok", n_current=1, run_id="r",
                         code_version="c", feature="f1")
    assert "id" in vars(doc)  # made once, with the document: no lazy first read per document in a write
    moved = replace(doc, window_start=T0 + timedelta(hours=1), window_end=T0 + timedelta(hours=2))
    assert moved.id != doc.id
    assert moved.id == replace(moved, value=2.0, status="alert", details={"p": 0.1}).id  # not what identifies it


def test_a_naive_window_time_is_refused_when_the_document_is_made() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        MetricDocument(model="m", model_version="1", family="drift", metric="psi", window_start=datetime(2025, 3, 1),
                       window_end=datetime(2025, 3, 1, 1), value=1.0, status="ok", n_current=1, run_id="r",
                       code_version="c")


def test_a_document_assembled_from_its_windows_shared_fields_equals_one_made_whole() -> None:
    shared = shared_fields(model="m", model_version="1", window_start=T0, window_end=T0 + timedelta(hours=1),
                           run_id="r", code_version="c", maturity="final", reference_id="ref", n_reference=9,
                           computed_at=datetime(2025, 3, 2, 1, 2, 3, tzinfo=timezone.utc))
    given = {"p": np.float32(0.5), "nan": float("nan"), "bins": (1, 2)}
    own = dict(family="performance", metric="f1", value=np.float64(0.25), status="ok", n_current=10, method="x",
               feature="", class_label="1", threshold=Threshold(0.1, 0.2, "below", "config"), details=given,
               segment_field="region", segment_value="urban")
    made = assembled(shared, **own)  # type: ignore[arg-type]
    whole = MetricDocument(**{**shared, **own})
    assert made == whole and made.id == whole.id and vars(made) == vars(whole)
    assert made.value == 0.25 and type(made.value) is float and made.details == {"p": 0.5, "nan": None, "bins": [1, 2]}
    given["p"] = 9.0
    assert made.details["p"] == 0.5  # the document keeps its own copy
    with pytest.raises(TypeError, match=r"unknown \['colour'\], missing \['run_id'\]"):
        shared_fields(model="m", model_version="1", window_start=T0, window_end=T0, code_version="c",
                      computed_at=T0, colour="red")
