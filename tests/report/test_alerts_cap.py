"""A report whose range reaches past the newest alerts it read says so instead of showing fewer alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mlmon.outputs.report import gather as gather_module
from mlmon.stores.duckdb.store import DuckDBStore
from tests.cli.helpers import T0, doc, store_with


class _Alerts:
    def __init__(self, alerts: list[dict[str, Any]]) -> None:
        self.alerts = alerts

    def recent_alerts(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return self.alerts[:limit]


def _alert(hours: int) -> dict[str, Any]:
    return {"@timestamp": (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", ".000Z"),
            "mlmon": {"model": {"name": "churn", "version": "3"}}}


@pytest.mark.parametrize("stored, capped", [(3, True), (2, False)])
def test_alerts_cut_by_the_read_limit_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 stored: int, capped: bool) -> None:
    monkeypatch.setattr(gather_module, "MAX_ALERTS", 3)
    store_with(tmp_path / "s.duckdb", [doc(0)])
    store = DuckDBStore(tmp_path / "s.duckdb", read_only=True)
    try:
        # Newest first, as stores answer; the range starts before all of them.
        alerts = [_alert(h) for h in (30, 20, 10)][:stored]
        monkeypatch.setattr(store, "alert_store", lambda: _Alerts(alerts))
        report = gather_module.gather(store, "duckdb:///s.duckdb", start=T0, end=T0 + timedelta(days=3))
    finally:
        store.close()
    [model] = report.models
    assert len(model.alerts) == stored
    assert any("alerts in the store were read" in n for n in model.notes) is capped
