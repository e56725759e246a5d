"""Job health: every round records, per model and job, its last run and last success (issue 14)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from mlmon.config.model import parse
from mlmon.core.job_runs import JobHealth, JobRun, fold
from mlmon.core.reference import build_from_frame
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb.store import DuckDBStore
from tests.schedule.conftest import HOUR, T0
from tools.synth import make_features

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _run(ok: bool, at: datetime, error: str | None = None) -> JobRun:
    return JobRun("churn", "drift", at - timedelta(seconds=3), at, 2.5, ok, windows=1, documents=7, error=error)


def test_a_failed_run_keeps_the_last_success() -> None:
    health = fold(None, _run(True, NOW))
    later = health.after(_run(False, NOW + HOUR, "boom"))
    assert (later.last_ok, later.last_error, later.last_run_at) == (False, "boom", NOW + HOUR)
    assert later.last_success_at == NOW
    assert later.after(_run(True, NOW + 2 * HOUR)).last_success_at == NOW + 2 * HOUR
    assert JobHealth.from_fields(later.to_fields()) == later


def test_a_never_successful_job_has_no_success_time() -> None:
    assert fold(None, _run(False, NOW, "boom")).last_success_at is None


def test_a_round_records_each_job_of_each_model(store: DuckDBStore) -> None:
    store.put_reference(build_from_frame(make_features(np.random.default_rng(1), 500), "first", "1", source="t"))
    cfg = parse({"models": {"first": {"drift": {"features": ["nope"]}}, "churn": {"version": "1"}}})
    clock = iter([NOW + timedelta(seconds=s) for s in range(100)])
    Runner(cfg, store, clock=lambda: next(clock)).backfill(T0, T0 + 2 * HOUR, progress=False)
    health = {(h.model, h.family): h for h in store.job_health()}
    assert set(health) == {("first", "drift"), ("churn", "drift")}
    churn, first = health["churn", "drift"], health["first", "drift"]
    assert churn.last_ok and churn.last_windows == 2 and churn.last_documents > 0
    assert churn.last_success_at == churn.last_run_at and churn.last_duration_seconds > 0
    assert not first.last_ok and first.last_success_at is None and "nope" in (first.last_error or "")


def test_a_round_with_nothing_due_is_a_success(store: DuckDBStore) -> None:
    cfg = parse({"models": {"churn": {"version": "1"}}})
    times = iter([NOW + timedelta(minutes=m) for m in range(100)])
    runner = Runner(cfg, store, clock=lambda: next(times))
    runner.round(at=T0 + 2 * HOUR + timedelta(minutes=5))
    first = {h.family: h for h in store.job_health()}["drift"]
    Runner(cfg, store, clock=lambda: NOW + HOUR).round(at=T0 + 2 * HOUR + timedelta(minutes=6))
    again = {h.family: h for h in store.job_health()}["drift"]
    assert first.last_windows == 1 and again.last_windows == 0  # a first run computes the newest window
    assert again.last_ok and again.last_success_at == NOW + HOUR


def test_a_read_only_store_reads_no_health_and_refuses_to_record(tmp_path: Path) -> None:
    DuckDBStore(tmp_path / "s.duckdb").close()
    ro = DuckDBStore(tmp_path / "s.duckdb", read_only=True)
    try:
        assert ro.job_health() == []
        with pytest.raises(Exception, match="read-only|read only"):
            ro.record_job_runs([_run(True, NOW)])
    finally:
        ro.close()


def test_elasticsearch_keeps_one_health_document_per_job() -> None:
    from mlmon.stores.elasticsearch.client import connect
    from mlmon.stores.elasticsearch.store import ElasticsearchStore
    from tests.drift.fake_es import FakeElasticsearch
    from tests.support.fake_http import FakeServer

    fake = FakeElasticsearch()
    with FakeServer(fake) as server:
        store = ElasticsearchStore(connect(server.url))
        store.record_job_runs([_run(True, NOW)])
        store.record_job_runs([_run(False, NOW + HOUR, "boom")])
        [health] = store.job_health()
        searches = [r for r in server.requests if r.path.endswith("/_search")]
    assert list(fake.docs) == ["mlmon-checkpoints/job-health:churn:drift"]
    assert (health.last_ok, health.last_error, health.last_success_at) == (False, "boom", NOW)
    assert searches[-1].json["query"] == {"bool": {"filter": [{"terms": {"job.family": [
        "drift", "explainability", "performance", "fairness"]}}]}}


def test_a_job_that_cannot_be_set_up_does_not_hide_the_others_runs(store: DuckDBStore) -> None:
    # The attribution reference named here does not exist: explainability fails at set-up; drift still runs.
    cfg = parse({"models": {"churn": {"version": "1", "explainability": {"reference": "no-such-reference"}}}})
    report = Runner(cfg, store, clock=lambda: NOW).backfill(T0, T0 + 2 * HOUR, progress=False)
    health = {h.family: h for h in store.job_health()}
    assert [f.job for f in report.failures] == ["explainability"]
    assert health["drift"].last_ok and health["drift"].last_windows == 2
    assert not health["explainability"].last_ok and health["explainability"].last_success_at is None
