"""log_prediction_error: a failed prediction is an event of its own kind (``mlmon.prediction_error``)."""

from __future__ import annotations

from typing import Any

from mlmon_logging import contract

from .conftest import ListSink
from .test_contract_conformance import _check


def test_an_exception_or_a_code_becomes_an_ecs_error_event(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(sample_rate=0.01)  # never sampled out: each failure counts
    try:
        raise TimeoutError("model server timed out after 2 s")
    except TimeoutError as exc:
        first = mlog.log_prediction_error(exc, latency_ms=2000.0)
    second = mlog.log_prediction_error("invalid_input", "age is negative", prediction_id="req-7")
    mlog.log_prediction_error("x" * 5000, "m" * 5000, latency_ms=-1.0)
    mlog.close()
    events = sink.events("mlmon.prediction_error")
    assert len(events) == 3 and mlog.stats.sampled_out == 0 and mlog.stats.dropped == 0
    for event in events:
        _check(event)
        assert event["event"]["kind"] == "event" and "task" not in event["mlmon"]["model"]
    timeout, invalid, long = events
    assert timeout["error"] == {"type": "TimeoutError", "message": "model server timed out after 2 s"}
    assert timeout["mlmon"]["prediction"] == {"latency_ms": 2000.0, "id": first}
    assert invalid["error"] == {"type": "invalid_input", "message": "age is negative"}
    assert invalid["mlmon"]["prediction"]["id"] == second == "req-7"
    cut = contract.MAX_KEYWORD_CHARS
    assert long["error"] == {"type": "x" * cut, "message": "m" * cut}
    assert long["mlmon"]["quality"] == {"null_fields": ["mlmon.prediction.latency_ms"], "truncated": True}
