"""Local alerting on a real embedded (DuckDB) store, with a real webhook receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mlmon.alerts.local import alert_round
from mlmon.alerts.outbox import deliver_outbox
from mlmon.config.alerts import AlertsConfig, Rule, WebhookConfig, parse_alerts_config
from mlmon.core.alert_schema import ALERTS_TABLE
from mlmon.core.documents import MetricDocument
from mlmon.stores.duckdb.alerts import DuckDBAlertStore
from mlmon.stores.duckdb.schema import quote
from mlmon.stores.duckdb.store import DuckDBStore
from tests.alerts.conftest import T0, Receiver, make_metric

NOW = T0 + timedelta(days=60)


@pytest.fixture
def metric_store(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "mlmon.duckdb")
    yield store
    store.close()


@pytest.fixture
def con(metric_store: DuckDBStore) -> duckdb.DuckDBPyConnection:
    return metric_store.con


def opener(store: DuckDBAlertStore) -> Callable[[], AbstractContextManager[DuckDBAlertStore]]:
    """The outbox's store opener over a connection the test keeps open."""
    return lambda: nullcontext(store)


def run_days(metric_store: DuckDBStore, days: dict[int, str], configs: dict[str, AlertsConfig]) -> list[list[str]]:
    """One job round per day: store that day's metric, alert, send the outbox. Returns actions per round."""
    store = DuckDBAlertStore(metric_store.con)
    out: list[list[str]] = []
    for day, status in sorted(days.items()):
        docs = [make_metric(day, status), make_metric(day, "ok", feature="income")]
        metric_store.write_metrics(docs)
        report = alert_round(store, docs, configs, now=NOW)
        deliver_outbox(opener(store), configs, clock=lambda: NOW)
        out.append([a.action for a in report.written])
    return out


def test_round_by_round_alerts_are_stored_once_with_default_rules(metric_store: DuckDBStore,
                                                                 con: duckdb.DuckDBPyConnection) -> None:
    statuses = {0: "ok", 1: "alert", 2: "alert", 3: "alert", 4: "ok", 5: "ok"}
    rounds = run_days(metric_store, statuses, {})
    # default drift rule: 2 of 3, so day 2 fires; still bad a day later: the daily reminder;
    # day 4 is ok (no reminder on an ok window) and recovery needs 3-2+1 = 2 ok windows in a row
    assert rounds == [[], [], ["fired"], ["renotified"], [], ["recovered"]]
    rows = con.execute(
        f"SELECT {quote('alert.action')}, {quote('alert.status.previous')}, {quote('alert.status.new')}, "
        f"{quote('metric.feature')}, {quote('metric.value')}, {quote('metric.threshold.alert')}, "
        f"{quote('window.end')} FROM {ALERTS_TABLE} ORDER BY {quote('window.end')}").fetchall()
    assert [r[:6] for r in rows] == [("fired", "alert", "alert", "age", 0.3, 0.25),
                                     ("renotified", "alert", "alert", "age", 0.3, 0.25),
                                     ("recovered", "ok", "ok", "age", 0.3, 0.25)]
    assert rows[0][6] == T0 + timedelta(days=3)


def test_rerunning_a_round_writes_and_sends_nothing_new(metric_store: DuckDBStore, con: duckdb.DuckDBPyConnection,
                                                        receiver: Receiver) -> None:
    configs = {"churn": AlertsConfig(rules=(Rule("drift", ("drift",), renotify_every=None),),
                                     webhook=WebhookConfig(url=receiver.url))}
    store = DuckDBAlertStore(con)
    docs = [make_metric(0, "alert")]
    metric_store.write_metrics(docs)
    first = alert_round(store, docs, configs, now=NOW)
    sent = deliver_outbox(opener(store), configs, clock=lambda: NOW)
    again = alert_round(store, docs, configs, now=NOW + timedelta(hours=1))
    resent = deliver_outbox(opener(store), configs, clock=lambda: NOW + timedelta(hours=1))
    assert [a.action for a in first.written] == ["fired"] and again.written == []
    assert (first.queued, again.queued, sent.delivered, resent.delivered) == (1, 0, 1, 0)
    assert len(receiver.requests) == 1
    assert con.execute(f"SELECT count(*) FROM {ALERTS_TABLE}").fetchone() == (1,)


def test_renotify_and_recovery_reach_the_webhook_unless_recovery_is_muted(
        metric_store: DuckDBStore, receiver: Receiver) -> None:
    config = parse_alerts_config(
        {"use_default_rules": False, "webhook": {"url": receiver.url},
         "rules": [{"id": "drift", "families": ["drift"], "renotify_every": "2d", "notify_recovery": False}]},
        source="mlmon.yaml", key="models.churn.alerts")
    rounds = run_days(metric_store, {0: "alert", 1: "alert", 2: "alert", 3: "ok"}, {"churn": config})
    assert rounds == [["fired"], [], ["renotified"], ["recovered"]]
    sent = [body["alert"]["alert"]["action"] for _, body in receiver.requests]
    assert sent == ["fired", "renotified"]  # the recovery is stored, not sent


def test_webhook_down_never_fails_the_round(metric_store: DuckDBStore, con: duckdb.DuckDBPyConnection) -> None:
    config = AlertsConfig(rules=(Rule("drift", ("drift",)),),
                          webhook=WebhookConfig(url="http://127.0.0.1:1/", max_attempts=1))
    rounds = run_days(metric_store, {0: "alert"}, {"churn": config})
    assert rounds == [["fired"]]
    assert con.execute(f"SELECT count(*) FROM {ALERTS_TABLE}").fetchone() == (1,)
    [pending] = DuckDBAlertStore(con).deliveries()
    assert (pending.state, pending.attempts) == ("pending", 1) and "Connect" in pending.last_error


def test_disabled_model_raises_nothing(metric_store: DuckDBStore) -> None:
    assert run_days(metric_store, {0: "alert", 1: "alert"}, {"churn": AlertsConfig(enabled=False)}) == [[], []]


def test_metric_documents_round_trip_through_the_store(metric_store: DuckDBStore) -> None:
    doc = make_metric(4, "warning", value=0.12)
    metric_store.write_metrics([doc])
    adapter = metric_store.alert_store()
    assert isinstance(adapter, DuckDBAlertStore)
    [back] = adapter.metric_documents([doc.id])
    assert back.id == doc.id and back.status == "warning" and back.threshold == doc.threshold
    assert back.window_end == doc.window_end and back.value == pytest.approx(0.12)
    [window] = adapter.series_windows("churn", "3", ["drift"], doc.window_end, doc.window_end)
    assert (window.metric_id, window.status, window.window_start) == (doc.id, "warning", doc.window_start)


def test_series_windows_are_bounded_by_family_and_by_window_end_on_both_sides(metric_store: DuckDBStore) -> None:
    metric_store.write_metrics([make_metric(day, "ok") for day in range(10)]
                               + [make_metric(day, "ok", family="performance", metric="accuracy") for day in range(10)])
    adapter = DuckDBAlertStore(metric_store.con)
    rows = adapter.series_windows("churn", "3", ["drift"], T0 + timedelta(days=3), T0 + timedelta(days=5))
    assert [(r.series.family, (r.window_end - T0).days) for r in rows] == [("drift", 3), ("drift", 4), ("drift", 5)]


def test_a_round_reads_only_the_windows_its_rules_look_at(metric_store: DuckDBStore,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: a re-backfill judged one window while reading (and rebuilding) every document after it."""
    from mlmon.stores.duckdb import alerts as duckdb_alerts

    statuses = ["ok"] * 60
    statuses[9] = statuses[10] = "alert"
    history = [make_metric(day, status) for day, status in enumerate(statuses)]
    metric_store.write_metrics(history)  # 60 days stored; the round judges day 10 (a re-run)
    rebuilt: list[dict[str, object]] = []
    real = duckdb_alerts.metric_from_row

    def counting(row: dict[str, Any]) -> MetricDocument:
        rebuilt.append(row)
        return real(row)

    monkeypatch.setattr(duckdb_alerts, "metric_from_row", counting)
    report = alert_round(DuckDBAlertStore(metric_store.con), [history[10]], {}, now=NOW)
    assert [(a.action, (a.metric.window_start - T0).days) for a in report.written] == [("fired", 10)]
    assert rebuilt == []  # the judged window is the round's own document: nothing read back is rebuilt


def test_series_windows_skip_the_ids_the_round_holds(metric_store: DuckDBStore) -> None:
    docs = [make_metric(day, "ok") for day in range(6)]
    metric_store.write_metrics(docs)
    adapter = DuckDBAlertStore(metric_store.con)
    rows = adapter.series_windows("churn", "3", ["drift"], T0, T0 + timedelta(days=10),
                                  skip={d.id for d in docs[2:]})
    assert [r.metric_id for r in rows] == [docs[0].id, docs[1].id]
    assert len(adapter.series_windows("churn", "3", ["drift"], T0, T0 + timedelta(days=10))) == 6


def test_a_batch_round_reads_back_only_what_its_documents_do_not_hold(metric_store: DuckDBStore,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: a backfill's batch read every document it had just written back from the store (and built a
    window of each twice); the rules' context before the batch is still read, and the verdicts are the same."""
    before = [make_metric(0, "ok"), make_metric(1, "alert")]  # stored: day 2's alert completes a "2 of 3"
    metric_store.write_metrics(before)
    batch = [make_metric(day, "alert" if day == 2 else "ok") for day in range(2, 30)]
    metric_store.write_metrics(batch)
    adapter = DuckDBAlertStore(metric_store.con)
    returned: list[int] = []
    real = adapter.series_windows

    def counting(*args: Any, **kwargs: Any) -> Any:
        rows = real(*args, **kwargs)
        returned.append(len(rows))
        return rows

    monkeypatch.setattr(adapter, "series_windows", counting)
    report = alert_round(adapter, batch, {}, now=NOW)
    assert returned == [2]  # the two windows before the batch, none of its 28
    assert [(a.action, (a.metric.window_start - T0).days) for a in report.written] == [("fired", 2), ("recovered", 4)]
