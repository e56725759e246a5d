from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest


def prediction(event_id: str, **features: float) -> dict[str, Any]:
    return {"@timestamp": "2025-01-15T10:00:00.123Z", "ecs": {"version": "8.11.0"},
            "event": {"kind": "event", "dataset": "mlmon.prediction", "id": event_id, "module": "mlmon"},
            "service": {"name": "svc"},
            "mlmon": {"schema_version": "1", "model": {"name": "m", "version": "1", "task": "classification"},
                      "prediction": {"id": f"p-{event_id}", "label": "yes", "latency_ms": 7.0},
                      "features": {"numeric": features}}}


@pytest.fixture
def line_of() -> Callable[..., bytes]:
    def make(event_id: str, **features: float) -> bytes:
        return json.dumps(prediction(event_id, **features)).encode() + b"\n"
    return make
