"""Attribution sums of many windows in one search on Elasticsearch: a date_histogram over the windows with the
per-window aggregations under it, identical to asking each window alone."""

from __future__ import annotations

import numpy as np
import pytest

from mlmon.core.perf_stats import AttributionSums
from mlmon.core.queries import WindowBatch
from mlmon.stores.elasticsearch import client as es_client
from mlmon.stores.elasticsearch.client import connect
from mlmon.stores.elasticsearch.explain import BUCKET_BUDGET, ElasticsearchExplainStore, attribution_batch_bodies
from mlmon.stores.elasticsearch.window_batches import WINDOWS_AGG
from mlmon.stores.protocols import BatchExplainBackend
from tests.drift.fake_es import FakeElasticsearch
from tests.explainability.scenario import HOUR, MODEL, T0, VERSION
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_elastic import bucket_count
from tests.support.fake_http import FakeServer

FEATURES = ["income", "age", "tenure"]


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(es_client.BackoffTransport, "sleep", staticmethod(lambda s: None))


def _batch(hours: list[int]) -> WindowBatch:
    return WindowBatch.of([(T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in hours])


def _fake(rows_per_hour: dict[int, int]) -> FakeElasticsearch:
    """Explanation events: signed attributions per feature ("age" never logged in hour 1), spread over hours."""
    rng = np.random.default_rng(5)
    t0 = int(T0.timestamp() * 1000)
    ts = np.concatenate([t0 + h * 3_600_000 + rng.integers(0, 3_600_000, n) for h, n in rows_per_hour.items()])
    columns = {f"mlmon.attributions.{f}": rng.normal(0.1, 1.0, ts.size) for f in FEATURES}
    hour = (ts - t0) // 3_600_000
    columns["mlmon.attributions.age"][hour == 1] = np.nan
    return FakeElasticsearch(numeric=columns, rows=int(ts.size), timestamps=ts.astype(np.int64))


def test_a_batch_equals_each_window_asked_alone() -> None:
    fake = _fake({0: 200, 1: 150, 3: 120, 4: 90})  # hour 2 empty; hour 3 a gap
    batch = _batch([0, 1, 2, 4])
    assert issubclass(ElasticsearchExplainStore, BatchExplainBackend)
    with FakeServer(fake) as server:
        store = ElasticsearchExplainStore(connect(server.url))
        together = store.attribution_sums_batch(MODEL, batch, version=VERSION, method="shap", features=FEATURES)
        searches = [r.json for r in server.requests]
        alone = [store.attribution_sums(MODEL, s, e, version=VERSION, method="shap", features=FEATURES)
                 for s, e in batch.windows]
    assert together == alone
    assert len(searches) == 2  # runs [0, 2] and [4]: the gap is not asked
    assert together[2] == {f: AttributionSums.empty() for f in FEATURES}
    assert together[1]["age"] == AttributionSums.empty() and together[1]["income"].n == 150
    assert together[3]["income"].n == 90  # hour 4, none of the gap's 120
    assert fake.timestamps is not None
    hour0 = fake.numeric["mlmon.attributions.income"][(fake.timestamps - int(T0.timestamp() * 1000)) < 3_600_000]
    expected = AttributionSums.from_values(hour0)
    assert together[0]["income"].n == expected.n == 200
    assert together[0]["income"].sum_abs == pytest.approx(expected.sum_abs, rel=1e-12)


def test_many_windows_stay_under_the_bucket_limit() -> None:
    features = [f"f{i}" for i in range(400)]  # 800 buckets per window
    bodies = attribution_batch_bodies(MODEL, _batch(list(range(168))), features)
    assert len(bodies) == 3
    for body, part, names in bodies:
        assert len(part.windows) * (1 + bucket_count(body["aggs"][WINDOWS_AGG]["aggs"])) <= BUCKET_BUDGET
        assert names == features


def test_batch_bodies_typecheck() -> None:
    batch = _batch([0, 1, 3])
    assert_bodies_typecheck([("search", body, f"attribution batch search {i}") for i, (body, _, _) in enumerate(
        attribution_batch_bodies(MODEL, batch, FEATURES, version=VERSION, method="shap"))])
