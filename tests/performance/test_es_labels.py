"""The Elasticsearch label join at the HTTP edge: a fake cluster answering as Elastic documents it.

The fake evaluates exactly the requests the store sends (pages of predictions
by ``search_after``, ``terms`` + ``top_metrics`` over feedback, ``composite``
pages of feedback ids) over the same synthetic events the DuckDB store gets;
both stores must return the same statistics.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlmon.es_client import connect
from mlmon.stores.duckdb_labels import DuckDBLabels
from mlmon.stores.es_labels import (ElasticsearchLabels, feedback_ids_body, known_ids_body, latest_feedback_body,
                                    prediction_page_body)
from mlmon.stores.labels_base import LabelQuery
from tests.performance.synth import HOUR, T0, Traffic, binary_traffic, load
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_http import FakeServer, Reply, Request, es_error, es_reply


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


class FakeCluster:
    """Predictions and feedback data streams as DataFrames; filters on model/time are not needed here."""

    def __init__(self, traffic: Traffic) -> None:
        self.p = traffic.predictions.sort_values("mlmon.prediction.id").reset_index(drop=True)
        self.f = traffic.feedback
        ordered = self.f.sort_values(["@timestamp", "event.id"]).groupby("mlmon.prediction.id")
        # What top_metrics (sorted by @timestamp desc) and doc_count answer per prediction id.
        self.latest = {pid: (row["mlmon.feedback.actual"], row["@timestamp"], n) for pid, row, n in zip(
            ordered.tail(1)["mlmon.prediction.id"], ordered.tail(1).to_dict("records"),
            ordered.size().reindex(ordered.tail(1)["mlmon.prediction.id"]).to_numpy())}

    def __call__(self, req: Request) -> Reply:
        body: dict[str, Any] = req.json or {}
        index = req.path.strip("/").split("/")[0]
        if "prediction" in index and "aggs" not in body:
            return self._page(body)
        if "feedback" in index and "composite" in str(body.get("aggs")):
            return self._composite(body)
        if "feedback" in index:
            return self._latest(body)
        if "prediction" in index:
            return self._known(body)
        return es_error(404, "index_not_found_exception", index)

    def _page(self, body: dict[str, Any]) -> Reply:
        rows = self.p
        for f in body["query"]["bool"]["filter"]:
            if "terms" in f:
                (field, values), = f["terms"].items()
                rows = rows[rows[field].isin(values)]
        if "search_after" in body:
            rows = rows[rows["mlmon.prediction.id"] > body["search_after"][0]]
        rows = rows.head(body["size"])
        hits = []
        for r in rows.to_dict("records"):
            src = {k: (None if pd.isna(r[k]) else r[k]) for k in body["_source"] if k in r}
            src["@timestamp"] = r["@timestamp"].isoformat().replace("+00:00", "Z")
            hits.append({"_index": ".ds-logs-mlmon.prediction-default-2025.03.01-000001", "_id": r["event.id"],
                         "_score": None, "_source": src, "sort": [r["mlmon.prediction.id"]]})
        return es_reply({"took": 2, "timed_out": False, "hits": {"max_score": None, "hits": hits}})

    def _latest(self, body: dict[str, Any]) -> Reply:
        ids = next(f["terms"]["mlmon.prediction.id"] for f in body["query"]["bool"]["filter"] if "terms" in f)
        buckets = []
        for pid in sorted(set(ids) & set(self.latest)):
            actual, ts, n = self.latest[pid]
            buckets.append({"key": pid, "doc_count": int(n), "latest": {"top": [{
                "sort": [ts.isoformat()], "metrics": {"mlmon.feedback.actual": actual, "@timestamp": _ms(ts)}}]}})
        total = sum(b["doc_count"] for b in buckets)
        return es_reply({"took": 3, "timed_out": False, "hits": {"total": {"value": total, "relation": "eq"},
                                                                  "max_score": None, "hits": []},
                         "aggregations": {"by_id": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                                                    "buckets": buckets}}})

    def _composite(self, body: dict[str, Any]) -> Reply:
        comp = body["aggs"]["ids"]["composite"]
        counts = self.f.groupby("mlmon.prediction.id").size().sort_index()
        if "after" in comp:
            counts = counts[counts.index > comp["after"]["id"]]
        counts = counts.head(comp["size"])
        agg: dict[str, Any] = {"buckets": [{"key": {"id": k}, "doc_count": int(v)} for k, v in counts.items()]}
        if len(counts):
            agg["after_key"] = {"id": counts.index[-1]}
        return es_reply({"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": []},
                         "aggregations": {"ids": agg}})

    def _known(self, body: dict[str, Any]) -> Reply:
        ids = next(f["terms"]["mlmon.prediction.id"] for f in body["query"]["bool"]["filter"] if "terms" in f)
        found = self.p[self.p["mlmon.prediction.id"].isin(ids)]["mlmon.prediction.id"]
        return es_reply({"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": []},
                         "aggregations": {"ids": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                                                  "buckets": [{"key": k, "doc_count": 1} for k in found]}}})


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    t = binary_traffic(np.random.default_rng(5), 2_500, sample_rate=0.5)
    # Feedback for a prediction that does not exist (yet).
    orphan = t.feedback.iloc[:3].copy()
    orphan["mlmon.prediction.id"] = ["zz-orphan-1", "zz-orphan-2", "zz-orphan-2"]
    orphan["event.id"] = ["o1", "o2", "o3"]
    return Traffic(t.predictions, pd.concat([t.feedback, orphan], ignore_index=True))


def test_both_stores_return_the_same_statistics(traffic: Traffic) -> None:
    con = duckdb.connect()
    load(con, traffic)
    query = LabelQuery("churn", T0, T0 + HOUR, "classification", cbpe=True)
    embedded = DuckDBLabels(con).labelled_window(query)[""]
    with FakeServer(FakeCluster(traffic)) as server:
        es = ElasticsearchLabels(connect(server.url), page_size=1000)
        remote = es.labelled_window(query)[""]
        segments = es.labelled_window(LabelQuery("churn", T0, T0 + HOUR, "classification", segment="country",
                                                 segment_values=("DE", "FR")))
        orphans = es.orphan_feedback("churn", T0, T0 + timedelta(days=30))
        feedback_requests = [r for r in server.requests if "feedback" in r.path]
    assert remote.rows == embedded.rows == 2_500
    assert remote.n_predictions == pytest.approx(embedded.n_predictions) == pytest.approx(5_000)  # 1 / 0.5 each
    assert remote.labelled_rows == embedded.labelled_rows
    assert remote.duplicate_feedback == embedded.duplicate_feedback > 0
    assert remote.classification is not None and embedded.classification is not None
    assert remote.classification.confusion == embedded.classification.confusion
    for cls in embedded.classification.scores:
        a, b = remote.classification.scores[cls], embedded.classification.scores[cls]
        assert a.positives == pytest.approx(b.positives) and a.negatives == pytest.approx(b.negatives)
        assert remote.cbpe[cls].predicted_positive.counts == pytest.approx(embedded.cbpe[cls].predicted_positive.counts)
    assert remote.classification.log_loss.neg_log_likelihood == pytest.approx(  # type: ignore[union-attr]
        embedded.classification.log_loss.neg_log_likelihood)  # type: ignore[union-attr]
    assert remote.delay.counts == pytest.approx(embedded.delay.counts)
    assert sorted(segments) == ["DE", "FR"]
    assert sum(s.rows for s in segments.values()) == (traffic.predictions["mlmon.segment.country"] != "US").sum()
    assert (orphans.orphans, orphans.example_ids) == (3, ("zz-orphan-1", "zz-orphan-2"))
    # Bounded pages: one feedback request per page of 1000 predictions (3 pages) in the first join.
    assert len([r for r in feedback_requests if "top_metrics" in r.raw_body.decode()]) == 3 + 2


def test_request_bodies_typecheck() -> None:
    q = LabelQuery("churn", T0, T0 + HOUR, "classification", version="1", segment="country",
                   segment_values=("DE",))
    mq = LabelQuery("churn", T0, T0 + HOUR, "classification", classes=("a", "b", "c"), segment="country")
    rq = LabelQuery("churn", T0, T0 + HOUR, "regression")
    assert_bodies_typecheck([
        ("search", prediction_page_body(q, None), "first prediction page"),
        ("search", prediction_page_body(mq, "0190-id"), "later multiclass page"),
        ("search", prediction_page_body(rq, None), "regression page"),
        ("search", latest_feedback_body("churn", ["a", "b"], "classification"), "latest feedback"),
        ("search", latest_feedback_body("churn", ["a"], "regression"), "latest regression feedback"),
        ("search", feedback_ids_body("churn", T0, T0 + HOUR, "1", "x"), "feedback id page"),
        ("search", known_ids_body("churn", ["a", "b"]), "known prediction ids"),
    ])
