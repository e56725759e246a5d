"""The Elasticsearch store at the HTTP edge: one constant-size search per window, retries, upserts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from mlmon.stores.elasticsearch import client as es_client
from mlmon.config.model import parse
from mlmon.core.documents import MetricDocument
from mlmon.stores.elasticsearch.client import connect
from mlmon.schedule.runner import Runner
from mlmon.core.stats import NumericStats
from mlmon.stores.elasticsearch import store as es_store
from mlmon.stores.protocols import StoreError
from mlmon.core.queries import WindowBatch, WindowQuery
from mlmon.stores.elasticsearch.store import ElasticsearchStore
from tests.drift.conftest import HOUR, T0
from tests.drift.fake_es import FakeElasticsearch, bulk_failing
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_elastic import bucket_count
from tests.support.fake_http import FakeServer, es_error

NUM = "mlmon.features.numeric.num_0"
CAT = "mlmon.features.categorical.cat_0"


def _fake(n: int, seed: int = 0) -> FakeElasticsearch:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    x[::50] = np.nan
    cats = rng.choice(np.array(["a", "b", "c", "zz", None], dtype=object), n)
    return FakeElasticsearch(numeric={NUM: x}, keyword={CAT: cats}, rows=n)


def _query(reference) -> WindowQuery:  # type: ignore[no-untyped-def]
    return WindowQuery(model="churn", start=T0, end=T0 + HOUR, numeric={NUM: reference.numeric[NUM].edges},
                       categorical={CAT: ("a", "b", "c")})


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(es_client.BackoffTransport, "sleep", staticmethod(lambda s: None))
    monkeypatch.setattr(es_store, "BULK_BACKOFF_S", 0.0)


def test_requests_do_not_grow_with_documents_and_answers_are_exact(reference) -> None:  # type: ignore[no-untyped-def]
    seen = []
    for n in (1_000, 1_000_000):
        fake = _fake(n)
        with FakeServer(fake) as server:
            stats = ElasticsearchStore(connect(server.url)).window_statistics(_query(reference))
        seen.append([(r.method, r.path, r.query, r.raw_body) for r in server.requests])
        want = NumericStats.from_values(fake.numeric[NUM], reference.numeric[NUM].edges)
        assert stats.rows == n and stats.numeric[NUM].counts == want.counts
        assert stats.numeric[NUM].missing == want.missing
        # Offset sums from the per-bucket `sum` sub-aggregation: where inside each bin the values sit.
        assert np.allclose(stats.numeric[NUM].offset_sums, want.offset_sums, rtol=1e-9, atol=1e-9)
        assert stats.numeric[NUM].below_sum == pytest.approx(want.below_sum, rel=1e-12)
        assert stats.categorical[CAT].counts["zz"] > 0 and stats.categorical[CAT].present + \
            stats.categorical[CAT].missing == n
    assert len(seen[0]) == 1 and seen[0] == seen[1]


def test_every_body_the_jobs_send_typechecks(reference) -> None:  # type: ignore[no-untyped-def]
    q = WindowQuery(model="churn", start=T0, end=T0 + HOUR, version="1", segment=("country", "DE"),
                    numeric={NUM: reference.numeric[NUM].edges}, categorical={CAT: ("a", "b"), "x.y": ()})
    items: list[tuple[str, dict[str, Any] | list[Any], str]] = [
        ("search", body, f"window search {i}") for i, (body, _, _) in enumerate(es_store.window_search_bodies(q))]
    # A batch of windows: hourly and epoch-aligned, and half-past (an offset), with a gap (two runs).
    for name, start in (("aligned", T0), ("offset", T0 + timedelta(minutes=30))):
        batch = WindowBatch.of([(start + h * HOUR, start + (h + 1) * HOUR) for h in (0, 1, 3)])
        items += [("search", body, f"window batch search {name} {i}")
                  for i, (body, _, _, _) in enumerate(es_store.window_batch_bodies(q, batch))]
    items += [
        ("search", es_store.quantiles_body("churn", T0, T0 + HOUR, [NUM], [0.0, 0.5, 1.0], "1"), "quantiles"),
        ("search", es_store.metrics_query("churn", 100, T0, T0 + HOUR), "metrics listing"),
        ("search", es_store.latest_reference_query("churn", "1", "churn-1-abc"), "reference lookup"),
    ]
    assert_bodies_typecheck(items)


def test_many_features_split_under_the_bucket_limit(reference) -> None:  # type: ignore[no-untyped-def]
    edges = reference.numeric[NUM].edges
    q = WindowQuery(model="m", start=T0, end=T0 + HOUR, numeric={f"mlmon.features.numeric.f{i}": edges for i in range(120)})
    bodies = es_store.window_search_bodies(q)
    assert len(bodies) > 1 and sum(len(n) for _, n, _ in bodies) == 120
    for body, _, _ in bodies:
        buckets = sum(len(a["range"]["ranges"]) for k, a in body["aggs"].items() if k.endswith("_bins"))
        assert buckets <= es_store.BUCKET_BUDGET
        # The per-bucket sums are metric sub-aggregations: no buckets of their own (search.max_buckets).
        assert bucket_count(body["aggs"]) <= es_store.BUCKET_BUDGET + len(body["aggs"])


def test_429_is_retried_with_backoff(reference) -> None:  # type: ignore[no-untyped-def]
    fake = _fake(1_000)
    calls = {"n": 0}

    def fault(req):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return es_error(429, "es_rejected_execution_exception", "queue full") if calls["n"] <= 2 else None

    fake.fault = fault
    with FakeServer(fake) as server:
        stats = ElasticsearchStore(connect(server.url)).window_statistics(_query(reference))
    assert stats.rows == 1_000 and len(server.requests) == 3


def _docs(n: int) -> list[MetricDocument]:
    end = datetime(2025, 1, 1, 1, tzinfo=timezone.utc)
    return [MetricDocument(model="churn", model_version="1", family="drift", metric="psi", feature=f"f{i}",
                           window_start=T0, window_end=end, value=0.1, status="ok", n_current=10, run_id="r",
                           code_version="t") for i in range(n)]


def test_partial_bulk_failure_is_retried_then_all_written() -> None:
    fake = FakeElasticsearch()
    fake.fault = bulk_failing(fake, times=1)
    with FakeServer(fake) as server:
        ElasticsearchStore(connect(server.url)).write_metrics(_docs(5))
    assert len([k for k in fake.docs if k.startswith("mlmon-metrics/")]) == 5
    assert sum(r.path.endswith("/_bulk") for r in server.requests) == 2


def test_persistent_bulk_failure_is_an_error_and_the_window_is_not_checkpointed(reference) -> None:  # type: ignore[no-untyped-def]
    fake = _fake(2_000)
    fake.docs[f"mlmon-references/{reference.id}"] = reference.to_document()
    fake.fault = bulk_failing(fake, times=100, status=400)
    with FakeServer(fake) as server:
        store = ElasticsearchStore(connect(server.url))
        runner = Runner(parse({"models": {"churn": {"drift": {"features": ["num_0", "cat_0"]}}}}), store)
        with pytest.raises(StoreError, match="could not be written"):
            runner.backfill(T0, T0 + HOUR, progress=False)
        assert store.get_checkpoint("drift:churn:*") is None
