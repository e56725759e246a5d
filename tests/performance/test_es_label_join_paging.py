"""The Elasticsearch label join at scale: what it asks, what comes back, and what it holds.

Against the fake cluster (``tests.performance.fake_es``, which refuses what a 9.4 cluster
refuses), with the real client over HTTP:

- two predictions sharing an id at a page boundary are both joined, once each (as DuckDB does);
- requests: two per page of predictions (the page and its feedback lookup) plus opening and
  closing the point in time, none per labelled row; feedback response bytes grow with the labelled
  rows only (an unlabelled prediction costs its id in the request, nothing in the answer), while
  the prediction pages necessarily grow with the predictions;
- the hits held at any moment stay within a few pages whatever the window size (counted on the
  decoded response objects), so a window of tens of millions of predictions needs the memory of
  one of a few thousand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from elastic_transport import JsonSerializer
from elasticsearch import Elasticsearch

from mlmon.core.labels import LabelledWindow, LabelQuery
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.stores.elasticsearch.client import connect
from mlmon.stores.elasticsearch.labels import ElasticsearchLabels
from tests.performance.fake_es import FakeCluster
from tests.support.fake_http import FakeServer, Reply, Request
from tools.synth import HOUR, T0, Traffic, binary_traffic
from tools.synth import load_traffic as load

QUERY = LabelQuery("churn", T0, T0 + HOUR, "classification")


def _duckdb(traffic: Traffic, query: LabelQuery = QUERY) -> LabelledWindow:
    con = duckdb.connect()
    load(con, traffic)
    return DuckDBLabels(con).labelled_window(query)[""]


def _assert_same(remote: LabelledWindow, embedded: LabelledWindow) -> None:
    assert (remote.rows, remote.labelled_rows, remote.duplicate_feedback) == (
        embedded.rows, embedded.labelled_rows, embedded.duplicate_feedback)
    assert remote.n_predictions == pytest.approx(embedded.n_predictions)
    assert remote.classification is not None and embedded.classification is not None
    assert remote.classification.confusion == embedded.classification.confusion
    assert remote.delay.counts == pytest.approx(embedded.delay.counts)
    assert remote.predicted == pytest.approx(embedded.predicted)


# --- duplicate ids at a page boundary ------------------------------------------------------------

def test_predictions_sharing_an_id_across_a_page_boundary_are_each_joined_once() -> None:
    page = 100
    t = binary_traffic(np.random.default_rng(21), 250, label_share=1.0, duplicate_share=0.0)
    preds = t.predictions.sort_values("mlmon.prediction.id").reset_index(drop=True)
    # A second prediction event with the id of the first page's last one (another event id, another
    # label), placed right after it: first of the next page whether pages follow index or id order.
    inside = preds.iloc[[10]].assign(**{"event.id": "e-inside-copy"})  # and one inside a page
    source = preds.iloc[[page - 2]]  # at page - 1 once the inside copy is in
    boundary = source.assign(**{"event.id": "e-boundary-copy", "mlmon.prediction.label": (
        "0" if source["mlmon.prediction.label"].iloc[0] == "1" else "1")})
    preds = pd.concat([preds.iloc[:11], inside, preds.iloc[11:page - 1], boundary, preds.iloc[page - 1:]],
                      ignore_index=True)
    pid = boundary["mlmon.prediction.id"].iloc[0]
    assert preds["mlmon.prediction.id"].iloc[page - 1] == preds["mlmon.prediction.id"].iloc[page] == pid
    assert preds["mlmon.prediction.id"].is_monotonic_increasing  # id order = index order here
    # The boundary id also has two feedback events: the later one must win for both of its predictions.
    extra = t.feedback[t.feedback["mlmon.prediction.id"] == pid].assign(**{
        "event.id": "f-later", "@timestamp": lambda f: f["@timestamp"] + pd.Timedelta(minutes=5)})
    traffic = Traffic(preds, pd.concat([t.feedback, extra], ignore_index=True))
    embedded = _duckdb(traffic)
    assert embedded.rows == 252 and embedded.duplicate_feedback == 2  # the boundary id's two rows each count one
    with FakeServer(FakeCluster(traffic.predictions, traffic.feedback)) as server:
        remote = ElasticsearchLabels(connect(server.url), page_size=page).labelled_window(QUERY)[""]
    _assert_same(remote, embedded)


# --- requests and response bytes -----------------------------------------------------------------

@dataclass
class Recorder:
    """Wraps the fake: per request kind, how many and how many response bytes."""

    cluster: FakeCluster
    calls: dict[str, int] = field(default_factory=dict)
    response_bytes: dict[str, int] = field(default_factory=dict)

    def __call__(self, req: Request) -> Reply:
        reply = self.cluster(req)
        body = req.json or {}
        kind = ("close pit" if req.method == "DELETE" else "open pit" if req.path.endswith("/_pit")
                else "feedback" if "feedback" in req.path else "predictions")
        self.calls[kind] = self.calls.get(kind, 0) + 1
        size = len(json.dumps(reply.body).encode())
        self.response_bytes[kind] = self.response_bytes.get(kind, 0) + size
        assert reply.status == 200, (req.path, body, reply.body)
        return reply


def _run(traffic: Traffic, page: int) -> tuple[Recorder, LabelledWindow]:
    recorder = Recorder(FakeCluster(traffic.predictions, traffic.feedback))
    with FakeServer(recorder) as server:
        window = ElasticsearchLabels(connect(server.url), page_size=page).labelled_window(QUERY)[""]
    assert recorder.cluster.pits == {}, "the point in time is closed after the join"
    return recorder, window


def _keep_labels_of(traffic: Traffic, ids: set[str]) -> Traffic:
    return Traffic(traffic.predictions, traffic.feedback[traffic.feedback["mlmon.prediction.id"].isin(ids)])


def test_requests_are_two_per_page_and_feedback_bytes_grow_with_labelled_rows_only() -> None:
    page, n = 500, 4_000
    base = binary_traffic(np.random.default_rng(3), n, label_share=1.0, duplicate_share=0.0)
    ids = base.predictions["mlmon.prediction.id"].tolist()
    runs = {share: _run(_keep_labels_of(base, set(ids[: int(share * n)])), page) for share in (0.0, 0.2, 0.6)}
    for share, (rec, window) in runs.items():
        assert window.labelled_rows == int(share * n)
        # 8 full pages, then the empty one that ends the stream; one feedback lookup per non-empty page.
        assert rec.calls == {"open pit": 1, "predictions": n // page + 1, "feedback": n // page, "close pit": 1}
    bytes_of = {share: rec.response_bytes["feedback"] for share, (rec, _) in runs.items()}
    envelope = bytes_of[0.0] / (n // page)
    assert envelope < 20  # a lookup that finds nothing answers "{}" (filter_path leaves out what is empty)
    per_label = {s: (bytes_of[s] - bytes_of[0.0]) / (s * n) for s in (0.2, 0.6)}
    assert per_label[0.6] == pytest.approx(per_label[0.2], rel=0.02)  # linear in the labelled rows
    assert per_label[0.6] < 200  # one small collapsed hit per labelled prediction, no bucket of top_hits
    # Prediction pages are the same whatever the labels: they grow with the predictions, necessarily.
    assert len({rec.response_bytes["predictions"] for rec, _ in runs.values()}) == 1


def test_more_unlabelled_predictions_add_prediction_pages_not_feedback_bytes() -> None:
    page = 500
    small = binary_traffic(np.random.default_rng(4), 2_000, label_share=0.0, duplicate_share=0.0)
    large = binary_traffic(np.random.default_rng(4), 8_000, label_share=0.0, duplicate_share=0.0)
    labelled = binary_traffic(np.random.default_rng(5), 300, label_share=1.0, duplicate_share=0.2)
    results = {}
    for name, unlabelled in (("small", small), ("large", large)):
        traffic = Traffic(pd.concat([unlabelled.predictions, labelled.predictions], ignore_index=True),
                          labelled.feedback)
        rec, window = _run(traffic, page)
        _assert_same(window, _duckdb(traffic))
        results[name] = (rec, window, len(traffic.predictions))
    (rs, ws, ns), (rl, wl, nl) = results["small"], results["large"]
    assert ws.labelled_rows == wl.labelled_rows == 300 and ws.duplicate_feedback == wl.duplicate_feedback > 0
    pages_s, pages_l = -(-ns // page), -(-nl // page)
    assert (rs.calls["feedback"], rl.calls["feedback"]) == (pages_s, pages_l)
    # The extra unlabelled predictions add only each extra page's empty-lookup envelope to the feedback bytes.
    assert 0 <= rl.response_bytes["feedback"] - rs.response_bytes["feedback"] <= (pages_l - pages_s) * 20
    # ... while the prediction pages grow with the predictions.
    assert rl.response_bytes["predictions"] / rs.response_bytes["predictions"] == pytest.approx(nl / ns, rel=0.05)


# --- memory --------------------------------------------------------------------------------------

class HitCounter:
    """Counts the search hits alive in the process: every decoded hit (an object with a ``_source``) is a
    ``Hit`` that reports its end."""

    def __init__(self) -> None:
        self.alive = self.peak = self.decoded = 0
        counter = self

        class Hit(dict[str, Any]):
            def __init__(self, *args: Any) -> None:
                super().__init__(*args)
                counter.alive += 1
                counter.decoded += 1
                counter.peak = max(counter.peak, counter.alive)

            def __del__(self) -> None:
                counter.alive -= 1

        self.hit = Hit

    def serializer(self) -> JsonSerializer:
        hit = self.hit

        class Tracking(JsonSerializer):
            def loads(self, data: bytes) -> Any:
                return json.loads(data, object_hook=lambda d: hit(d) if "_source" in d else d)

        return Tracking()


@contextmanager
def _tracked_client(url: str, counter: HitCounter) -> Iterator[Elasticsearch]:
    tracking = counter.serializer()
    es = Elasticsearch(url, serializers={"application/json": tracking,
                                         "application/vnd.elasticsearch+json": tracking})
    try:
        yield es
    finally:
        es.close()


@pytest.mark.parametrize("n", [2_000, 20_000])
def test_the_join_holds_a_few_pages_of_hits_whatever_the_window_size(n: int) -> None:
    page = 250
    traffic = binary_traffic(np.random.default_rng(8), n, label_share=0.7, duplicate_share=0.1)
    counter = HitCounter()
    with FakeServer(FakeCluster(traffic.predictions, traffic.feedback)) as server, \
            _tracked_client(server.url, counter) as es:
        window = ElasticsearchLabels(es, page_size=page).labelled_window(QUERY)[""]
    assert window.rows == n
    labelled_ids = traffic.feedback["mlmon.prediction.id"].nunique()
    assert counter.decoded == n + labelled_ids  # every prediction and one latest feedback per labelled one
    # At most the page being folded, the one being read and the page's feedback: 3 pages, for 2,000 or
    # 20,000 predictions alike (and so for 20 million); nothing of the window piles up.
    assert counter.peak <= 3 * page
    assert counter.alive == 0


# --- the fake refuses what 9.4 refuses -----------------------------------------------------------

def test_the_fake_refuses_what_a_94_cluster_refuses() -> None:
    t = binary_traffic(np.random.default_rng(9), 50)
    cluster = FakeCluster(t.predictions, t.feedback)
    with FakeServer(cluster) as server:
        es = connect(server.url)
        raw = es.options(ignore_status=(400, 404))
        too_big = raw.search(index="logs-mlmon.prediction-*", size=10_001, query={"match_all": {}})
        assert too_big.meta.status == 400 and "Result window is too large" in str(too_big.body)
        too_many = raw.search(index="logs-mlmon.feedback-*", size=0, query={"bool": {"filter": [
            {"terms": {"mlmon.prediction.id": [str(i) for i in range(65_537)]}}]}})
        assert too_many.meta.status == 400 and "index.max_terms_count" in str(too_many.body)
        assert raw.open_point_in_time(index="logs-mlmon.prediction-*", keep_alive="2d").meta.status == 400
        pit = es.open_point_in_time(index="logs-mlmon.prediction-*", keep_alive="1m").body["id"]
        body: dict[str, Any] = {"size": 10, "sort": [{"_shard_doc": {"order": "asc"}}], "pit": {"id": pit, "keep_alive": "1m"},
                "query": {"bool": {"filter": []}}, "_source": ["mlmon.prediction.id"]}
        with_index = raw.search(index="logs-mlmon.prediction-*", **body)
        assert with_index.meta.status == 400 and "point in time" in str(with_index.body)
        first = es.search(**body).body["hits"]["hits"]
        assert [h["sort"] for h in first] == [[i] for i in range(10)]  # _shard_doc: index order, no extra key
        wrong_after = raw.search(**body, search_after=[9, "x"])
        assert wrong_after.meta.status == 400 and "search_after has 2 value(s)" in str(wrong_after.body)
        cluster.clock = lambda: float("inf")  # the keep_alive has passed
        expired = raw.search(**body, search_after=[9])
        assert expired.meta.status == 404 and "search_context_missing_exception" in str(expired.body)
