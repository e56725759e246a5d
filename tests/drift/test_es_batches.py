"""Many windows in one search on Elasticsearch: a date_histogram over the windows, answers identical to asking
each window alone, every search under search.max_buckets, gaps neither asked nor answered."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from elasticsearch import BadRequestError

from mlmon.core.documents import MetricDocument
from mlmon.core.queries import WindowBatch, WindowQuery
from mlmon.stores.elasticsearch import client as es_client
from mlmon.stores.elasticsearch import store as es_store
from mlmon.stores.elasticsearch.client import connect
from mlmon.stores.elasticsearch.store import ElasticsearchStore, numeric_aggs, window_batch_bodies
from mlmon.stores.elasticsearch.window_batches import WINDOWS_AGG, histogram_agg, plan_slices, window_buckets
from mlmon.stores.protocols import StoreError, WindowBatchStatistics
from tests.drift.conftest import HOUR, T0
from tests.drift.fake_es import FakeElasticsearch
from tests.support.fake_elastic import MAX_BUCKETS, bucket_count
from tests.support.fake_http import FakeServer

NUM = "mlmon.features.numeric.num_0"
CAT = "mlmon.features.categorical.cat_0"
COUNTRY = "mlmon.segment.country"
EDGES = (-1.0, -0.5, 0.0, 0.5, 1.0)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(es_client.BackoffTransport, "sleep", staticmethod(lambda s: None))


def _fake(rows_per_hour: dict[int, int], *, start: int = 0, only_de: frozenset[int] = frozenset(),
          extra_numeric: int = 0, seed: int = 3) -> FakeElasticsearch:
    """Rows spread over the given hours after T0 (+ ``start`` minutes); hours in ``only_de`` carry country DE only."""
    rng = np.random.default_rng(seed)
    t0 = int(T0.timestamp() * 1000) + start * 60_000
    stamps, countries = [], []
    for hour, n in rows_per_hour.items():
        stamps.append(t0 + hour * 3_600_000 + rng.integers(0, 3_600_000, n))
        countries.append(np.full(n, "DE", dtype=object) if hour in only_de
                         else rng.choice(np.array(["DE", "FR"], dtype=object), n))
    ts = np.concatenate(stamps).astype(np.int64)
    n = ts.size
    x = rng.normal(0, 1, n)
    x[::17] = np.nan
    numeric = {NUM: x}
    numeric.update({f"mlmon.features.numeric.f{i}": rng.normal(0, 1, n) for i in range(extra_numeric)})
    cats = rng.choice(np.array(["a", "b", "c", "zz", None], dtype=object), n)
    return FakeElasticsearch(numeric=numeric, keyword={CAT: cats, COUNTRY: np.concatenate(countries)}, rows=n,
                             timestamps=ts)


def _query(**kw: object) -> WindowQuery:
    return WindowQuery(model="churn", start=T0, end=T0 + HOUR, numeric={NUM: EDGES},  # bounds unused by a batch
                       categorical={CAT: ("a", "b", "c")}, max_unseen=2, **kw)  # type: ignore[arg-type]


def _batch(hours: list[int], start: timedelta = timedelta(0)) -> WindowBatch:
    return WindowBatch.of([(T0 + start + h * HOUR, T0 + start + (h + 1) * HOUR) for h in hours])


def test_a_batch_equals_each_window_asked_alone_with_an_empty_window_a_gap_and_a_one_segment_window() -> None:
    # Hour 2 asked but empty; hour 4 has rows but is a gap (not asked); hour 5's rows are all DE.
    fake = _fake({0: 300, 1: 250, 3: 200, 4: 220, 5: 180, 6: 150}, only_de=frozenset({5}))
    batch = _batch([0, 1, 2, 3, 5, 6])
    assert issubclass(ElasticsearchStore, WindowBatchStatistics)  # the drift job takes the batch path
    answers = {}
    for segment in (None, ("country", "FR")):
        query = _query(segment=segment)
        with FakeServer(fake) as server:
            store = ElasticsearchStore(connect(server.url))
            together = store.window_statistics_batch(query, batch)
            batch_searches = [r.json for r in server.requests]
            alone = [store.window_statistics(replace(query, start=s, end=e)) for s, e in batch.windows]
        assert together == alone, segment
        answers[segment] = together
        # One search per run of consecutive windows, [0, 3] and [5, 6]: the gap's rows are never asked for.
        bounds = [b["aggs"][WINDOWS_AGG]["date_histogram"]["hard_bounds"] for b in batch_searches]
        assert [(b["max"] - b["min"]) // 3_600_000 for b in bounds] == [4, 2]
    everyone, fr = answers[None], answers[("country", "FR")]
    assert [s.rows for s in everyone] == [300, 250, 0, 200, 180, 150]
    assert everyone[2].numeric[NUM].counts == (0,) * (len(EDGES) + 1) and everyone[2].categorical[CAT].present == 0
    # Hour 5 had DE rows only: empty for FR, as when asked alone.
    assert fr[4].rows == 0 and 0 < fr[3].rows < 200


def test_windows_not_aligned_to_the_epoch_use_the_offset() -> None:
    fake = _fake({0: 120, 1: 90, 2: 80}, start=30)
    batch = _batch([0, 1, 2], start=timedelta(minutes=30))
    with FakeServer(fake) as server:
        store = ElasticsearchStore(connect(server.url))
        together = store.window_statistics_batch(_query(), batch)
        spec = server.requests[0].json["aggs"][WINDOWS_AGG]["date_histogram"]
        alone = [store.window_statistics(replace(_query(), start=s, end=e)) for s, e in batch.windows]
    assert spec["offset"] == "+1800000ms" and together == alone
    assert [s.rows for s in together] == [120, 90, 80]


def test_many_bins_split_the_batch_under_the_bucket_limit_and_answers_stay_equal() -> None:
    """3 fields of 1,000 bins over 24 windows: 72k buckets in one search, more than the cluster allows."""
    fake = _fake({h: 40 for h in range(24)}, extra_numeric=2)
    edges = tuple(float(e) for e in np.linspace(-3, 3, 1000))
    query = replace(_query(), numeric={NUM: edges, "mlmon.features.numeric.f0": edges,
                                       "mlmon.features.numeric.f1": edges})
    batch = _batch(list(range(24)))
    with FakeServer(fake) as server:  # the fake refuses any search over search.max_buckets (400)
        store = ElasticsearchStore(connect(server.url))
        together = store.window_statistics_batch(query, batch)
        searches = [r.json for r in server.requests]
        alone = [store.window_statistics(replace(query, start=s, end=e)) for s, e in batch.windows]
    assert together == alone
    assert 1 < len(searches) < 24
    for body in searches:
        (hist,) = body["aggs"].values()
        windows = (hist["date_histogram"]["hard_bounds"]["max"] - hist["date_histogram"]["hard_bounds"]["min"]) \
            // 3_600_000
        assert windows * (1 + bucket_count(hist["aggs"])) <= es_store.BUCKET_BUDGET


def test_the_fake_refuses_a_histogram_whose_windows_times_buckets_exceed_max_buckets() -> None:
    """Without the parent multiplying, 70 windows x 1,003 buckets would pass as 1,004."""
    fake = _fake({0: 10})
    edges = tuple(float(e) for e in np.linspace(-3, 3, 1000))
    batch = _batch(list(range(70)))
    aggs = {WINDOWS_AGG: histogram_agg(batch, range(70), numeric_aggs(0, NUM, edges))}
    assert bucket_count(aggs) <= MAX_BUCKETS < 70 * (1 + bucket_count(aggs[WINDOWS_AGG]["aggs"]))
    with FakeServer(fake) as server:
        with pytest.raises(BadRequestError, match="too_many_buckets"):
            connect(server.url).search(index="logs-x", size=0, aggs=aggs)


def test_the_fake_refuses_extended_bounds_outside_the_hard_bounds() -> None:
    batch = _batch([0, 1])
    aggs = {WINDOWS_AGG: histogram_agg(batch, [0, 1], {})}
    aggs[WINDOWS_AGG]["date_histogram"]["extended_bounds"]["max"] += 2 * 3_600_000
    with FakeServer(_fake({0: 5})) as server:
        with pytest.raises(BadRequestError, match="Extended bounds have to be inside hard bounds"):
            connect(server.url).search(index="logs-x", size=0, aggs=aggs)


def test_a_bucket_missing_from_the_answer_is_a_store_error() -> None:
    batch = _batch([0, 1])
    answer = {"aggregations": {WINDOWS_AGG: {"buckets": [{"key": int(T0.timestamp() * 1000), "doc_count": 1}]}}}
    with pytest.raises(StoreError, match="no bucket for the window starting 2025-01-01T01:00"):
        window_buckets(answer, batch, [0, 1])
    with pytest.raises(StoreError, match="lacks the 'windows' date_histogram"):
        window_buckets({"aggregations": {}}, batch, [0, 1])


def test_the_benchmark_shape_needs_far_fewer_searches() -> None:
    """20 numeric fields of ~1,000 bins + score, 5 categorical, 168 hourly windows (per slice)."""
    edges = tuple(float(e) for e in np.linspace(-3, 3, 1000))
    numeric = {f"mlmon.features.numeric.f{i}": edges for i in range(20)} | {"mlmon.prediction.score": edges}
    categorical = {f"mlmon.features.categorical.c{i}": tuple("abcdefghij") for i in range(5)}
    query = WindowQuery(model="m", start=T0, end=T0 + HOUR, numeric=numeric, categorical=categorical)
    batch = _batch(list(range(168)))
    before = len(batch) * len(es_store.window_search_bodies(query))
    bodies = window_batch_bodies(query, batch)
    assert (before, len(bodies)) == (168, 63)  # 3 slices: 504 searches before, 189 after
    pairs = [(w, f) for _, part, nums, cats in bodies for w in part.windows for f in [*nums, *cats]]
    assert len(pairs) == len(set(pairs)) == 168 * 26  # every (window, field) asked exactly once
    for body, part, _, _ in bodies:
        assert len(part.windows) * (1 + bucket_count(body["aggs"][WINDOWS_AGG]["aggs"])) <= es_store.BUCKET_BUDGET


def test_the_plan_prefers_fewer_searches_then_fewer_field_groups() -> None:
    batch = _batch(list(range(10)))
    assert [(len(s.windows), s.fields) for s in plan_slices(batch, [10, 10], 1000)] == [(10, (0, 1))]
    # 2 x 1,000 buckets per window, budget 3,000: one field x 2 windows or both fields x 1 window: 10 searches each;
    # the tie goes to both fields together (one pass over the documents).
    slices = plan_slices(batch, [1000, 1000], 3000)
    assert len(slices) == 10 and all(s.fields == (0, 1) for s in slices)
    gapped = WindowBatch.of([batch.windows[i] for i in (0, 1, 5)])
    assert [s.windows for s in plan_slices(gapped, [1], 1000)] == [(0, 1), (2,)]


def _docs(n: int, details: int = 0) -> list[MetricDocument]:
    return [MetricDocument(model="churn", model_version="1", family="drift", metric="psi", feature=f"f{i}",
                           window_start=T0, window_end=T0 + HOUR, value=0.1, status="ok", n_current=10, run_id="r",
                           code_version="t", details={"note": "x" * details} if details else {})
            for i in range(n)]


@pytest.mark.parametrize(("docs", "details", "requests"), [
    (25_000, 0, 3),    # ~0.6 KB each: the document cap decides (helpers' default 500: 50 requests)
    (3_000, 8_000, 3),  # ~8.6 KB each, ~26 MB: the 10 MB cap decides (the default 100 MB: 6 requests by count)
])
def test_metric_bulks_are_capped_in_bytes_not_in_hundreds_of_documents(docs: int, details: int,
                                                                       requests: int) -> None:
    fake = FakeElasticsearch()
    with FakeServer(fake) as server:
        ElasticsearchStore(connect(server.url)).write_metrics(_docs(docs, details))
    bulks = [r for r in server.requests if r.path.endswith("/_bulk")]
    assert len(bulks) == requests
    assert all(len(r.raw_body) <= es_store.BULK_CHUNK_BYTES for r in bulks)
    assert len([k for k in fake.docs if k.startswith("mlmon-metrics/")]) == docs
