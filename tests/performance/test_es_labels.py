"""The Elasticsearch label join at the HTTP edge: a fake cluster answering as Elastic documents it.

The fake (``tests.performance.fake_es``) evaluates exactly the requests the
store sends over the same synthetic events the DuckDB store gets; both stores
must return the same statistics.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlmon.stores.elasticsearch.client import connect
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.stores.elasticsearch.labels import (ElasticsearchLabels, feedback_ids_body, known_ids_body, latest_feedback_body,
                                    prediction_page_body)
from mlmon.core.labels import LabelQuery
from tests.performance.fake_es import FakeCluster
from tools.synth import HOUR, T0, Traffic, binary_traffic
from tools.synth import load_traffic as load
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_http import FakeServer


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
    with FakeServer(FakeCluster(traffic.predictions, traffic.feedback)) as server:
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
    assert remote.predicted == pytest.approx(embedded.predicted)
    assert sum(embedded.predicted.values()) == pytest.approx(embedded.n_predictions)  # every prediction, labelled or not
    assert sorted(segments) == ["DE", "FR"]
    assert sum(s.rows for s in segments.values()) == (traffic.predictions["mlmon.segment.country"] != "US").sum()
    assert (orphans.orphans, orphans.example_ids) == (3, ("zz-orphan-1", "zz-orphan-2"))
    # Bounded pages: one collapsed feedback lookup per page of 1000 predictions (3 pages) in the first join,
    # 2 in the segmented one (between 1,000 and 2,000 predictions in DE or FR); no top_hits any more.
    lookups = [r for r in feedback_requests if '"collapse"' in r.raw_body.decode()]
    assert len(lookups) == 3 + 2 and not any("top_hits" in r.raw_body.decode() for r in feedback_requests)


def test_request_bodies_typecheck() -> None:
    q = LabelQuery("churn", T0, T0 + HOUR, "classification", version="1", segment="country",
                   segment_values=("DE",))
    mq = LabelQuery("churn", T0, T0 + HOUR, "classification", classes=("a", "b", "c"), segment="country")
    rq = LabelQuery("churn", T0, T0 + HOUR, "regression")
    assert_bodies_typecheck([
        ("search", {**prediction_page_body(q, 5000), "pit": {"id": "46ToAwMD", "keep_alive": "2m"}},
         "first prediction page"),
        ("search", {**prediction_page_body(mq, 5000), "pit": {"id": "46ToAwMD", "keep_alive": "2m"},
                    "search_after": [4999]}, "later multiclass page"),
        ("search", prediction_page_body(rq, 10), "regression page"),
        ("search", latest_feedback_body("churn", ["a", "b"], "classification"), "latest feedback"),
        ("search", latest_feedback_body("churn", ["a"], "regression"), "latest regression feedback"),
        ("search", feedback_ids_body("churn", T0, T0 + HOUR, "1", "x"), "feedback id page"),
        ("search", known_ids_body("churn", ["a", "b"]), "known prediction ids"),
    ])


def test_equal_feedback_times_are_broken_by_the_greatest_event_id_on_both_stores() -> None:
    """Two corrections stamped in the same millisecond: both stores must keep the same one, every run."""
    t = binary_traffic(np.random.default_rng(11), 200, label_share=1.0, duplicate_share=0.0)
    first = t.feedback.iloc[:40].copy()
    tied = first.copy()
    tied["@timestamp"] = first["@timestamp"]  # same instant as the original feedback
    tied["mlmon.feedback.actual"] = np.where(first["mlmon.feedback.actual"] == "1", "0", "1")
    # Half the ties carry the greater event id (they must win), half the smaller (they must lose).
    tied["event.id"] = [("f" if i % 2 else "0") * 32 + str(i) for i in range(len(tied))]
    traffic = Traffic(t.predictions, pd.concat([t.feedback, tied], ignore_index=True))
    con = duckdb.connect()
    load(con, traffic)
    query = LabelQuery("churn", T0, T0 + HOUR, "classification")
    embedded = DuckDBLabels(con).labelled_window(query)[""]
    with FakeServer(FakeCluster(traffic.predictions, traffic.feedback)) as server:
        remote = ElasticsearchLabels(connect(server.url), page_size=64).labelled_window(query)[""]
    assert embedded.duplicate_feedback == remote.duplicate_feedback == 40
    assert remote.classification is not None and embedded.classification is not None
    assert remote.classification.confusion == embedded.classification.confusion
    # The expected winners, computed by hand: the tie with the greater event id flips the label.
    winners = pd.concat([t.feedback, tied]).sort_values(["@timestamp", "event.id"]).groupby(
        "mlmon.prediction.id").tail(1)
    flipped = winners["event.id"].isin(tied["event.id"]).sum()
    assert flipped == 20
    expected = t.predictions.merge(winners, on="mlmon.prediction.id")
    hits = (expected["mlmon.prediction.label"] == expected["mlmon.feedback.actual"]).sum()
    assert np.trace(embedded.classification.confusion.matrix()) == hits
