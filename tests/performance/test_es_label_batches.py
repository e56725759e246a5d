"""The Elasticsearch label join of many windows in one pass (``labelled_windows``), against the fake cluster.

Every window of a batch must get what it gets asked alone (``labelled_window``), up to float rounding
(rows are summed in other groups): empty windows, gaps, segments, windows straddling pages, predictions
sharing an id at a page boundary, timestamps as ISO strings or epoch millis, a prediction stamped at a
window's end. And the requests are per run of consecutive windows, not per window.
"""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlmon.core.labels import LabelQuery
from mlmon.core.queries import WindowBatch
from mlmon.stores.duckdb.labels import DuckDBLabels
from mlmon.stores.elasticsearch.client import connect
from mlmon.stores.elasticsearch.label_pages import prediction_page_body
from mlmon.stores.elasticsearch.labels import (ElasticsearchLabels, _epoch_s, event_time, feedback_slot_ids_body,
                                              window_slot)
from mlmon.stores.protocols import BatchLabelledStore, StoreError
from tests.performance.fake_es import FakeCluster
from tests.support.estypes import assert_bodies_typecheck
from tests.support.fake_http import FakeServer, Request
from tools.synth import HOUR, T0, Traffic, binary_traffic
from tools.synth import load_traffic as load

QUERY = LabelQuery("churn", T0, T0 + HOUR, "classification", cbpe=True)
SEGMENTED = dataclasses.replace(QUERY, segment="country", segment_values=("DE", "FR"))
PAGE = 130  # ~100 predictions an hour: most pages hold parts of two windows


def _same(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats to 1e-12 relative (as tests/schedule/test_batches.py compares batched and per-window)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (path, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), (path, sorted(a), sorted(b))
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def _traffic() -> tuple[Traffic, str]:
    """A day at ~100 predictions an hour, hours 10-12 without predictions; one prediction stamped exactly at
    3:00 (a window's end: it belongs to the next window) and, at the first page boundary of the first run,
    two predictions sharing an id whose feedback came twice. Returns the traffic and the shared id."""
    t = binary_traffic(np.random.default_rng(31), 2_400, span=24 * HOUR, label_share=0.7, duplicate_share=0.1)
    hour = (t.predictions["@timestamp"] - pd.Timestamp(T0)) // pd.Timedelta(HOUR)
    preds = t.predictions[~hour.between(10, 12)].reset_index(drop=True)
    preds.loc[preds.index[(hour[~hour.between(10, 12)] == 3).to_numpy()][0], "@timestamp"] = pd.Timestamp(T0 + 3 * HOUR)
    preds = preds.sort_values("@timestamp", kind="stable").reset_index(drop=True)
    source = preds.iloc[[PAGE - 1]]
    copy = source.assign(**{"event.id": "e-boundary-copy", "mlmon.prediction.label": (
        "0" if source["mlmon.prediction.label"].iloc[0] == "1" else "1")})
    preds = pd.concat([preds.iloc[:PAGE], copy, preds.iloc[PAGE:]], ignore_index=True)
    pid = str(source["mlmon.prediction.id"].iloc[0])
    at = pd.Timestamp(source["@timestamp"].iloc[0])
    twice = t.feedback.head(2).assign(**{"mlmon.prediction.id": pid, "event.id": ["f-boundary-1", "f-boundary-2"],
                                         "@timestamp": [at + pd.Timedelta(minutes=10), at + pd.Timedelta(minutes=15)],
                                         "mlmon.feedback.actual": ["0", "1"]})
    return Traffic(preds, pd.concat([t.feedback, twice], ignore_index=True)), pid


def _hours(*slots: int) -> WindowBatch:
    return WindowBatch.of([(T0 + s * HOUR, T0 + (s + 1) * HOUR) for s in slots])


# 24 windows but 5 and 6 (a gap), 10-12 empty; run 1 = 0-4, run 2 = 7-23.
BATCH = _hours(*[s for s in range(24) if s not in (5, 6)])


@pytest.fixture(scope="module")
def traffic() -> tuple[Traffic, str]:
    return _traffic()


@pytest.mark.parametrize("query", [QUERY, SEGMENTED], ids=["all-traffic", "segmented"])
def test_each_window_of_a_batch_is_what_it_is_asked_alone(traffic: tuple[Traffic, str], query: LabelQuery) -> None:
    t, pid = traffic
    cluster = FakeCluster(t.predictions, t.feedback)
    cluster.epoch_millis_events = frozenset(t.predictions["event.id"].iloc[::7])  # some stored as epoch millis
    with FakeServer(cluster) as server:
        es = ElasticsearchLabels(connect(server.url), page_size=PAGE)
        assert isinstance(es, BatchLabelledStore)
        batched = es.labelled_windows(query, BATCH)
        alone = [es.labelled_window(dataclasses.replace(query, start=s, end=e)) for s, e in BATCH.windows]
    assert cluster.pits == {}
    assert len(batched) == len(BATCH)
    _same(batched, alone)
    by_slot = dict(zip(BATCH.slots, batched))
    if query.segment is None:
        for s in (10, 11, 12):  # no predictions: the zero counts of an empty window, as labelled_window gives
            assert by_slot[s].keys() == {""} and by_slot[s][""].rows == 0 and by_slot[s][""].n_predictions == 0.0
        # The independent reference: the embedded store, window by window (counts are whole numbers here).
        con = duckdb.connect()
        load(con, t)
        embedded = DuckDBLabels(con)
        for (start, end), window in zip(BATCH.windows, batched):
            ref = embedded.labelled_window(dataclasses.replace(query, start=start, end=end))[""]
            got = window[""]
            assert (got.rows, got.labelled_rows, got.duplicate_feedback) == (
                ref.rows, ref.labelled_rows, ref.duplicate_feedback), start
            assert got.classification is not None and ref.classification is not None
            assert got.classification.confusion == ref.classification.confusion, start
        # The boundary pair: both joined, each counting the id's repeated feedback.
        hour = int((t.predictions.loc[t.predictions["mlmon.prediction.id"] == pid, "@timestamp"].iloc[0]
                    - pd.Timestamp(T0)) // pd.Timedelta(HOUR))
        assert by_slot[hour][""].duplicate_feedback >= 2
    else:
        for s in (10, 11, 12):
            assert by_slot[s] == {}  # a segmented query has no segment value in an empty window
        assert all(w.keys() <= {"DE", "FR"} for w in batched) and any(w.keys() == {"DE", "FR"} for w in batched)
    # Every prediction of the asked windows was counted once, none of the gap or of the day after.
    ts = t.predictions["@timestamp"]
    asked = sum(((ts >= pd.Timestamp(s)) & (ts < pd.Timestamp(e))).sum() for s, e in BATCH.windows)
    in_segment = t.predictions["mlmon.segment.country"].isin(("DE", "FR")) if query.segment else True
    asked_rows = sum((((ts >= pd.Timestamp(s)) & (ts < pd.Timestamp(e))) & in_segment).sum() for s, e in BATCH.windows)
    assert sum(w.rows for window in batched for w in window.values()) == asked_rows <= asked


def test_a_prediction_stamped_at_a_window_end_is_in_the_next_window(traffic: tuple[Traffic, str]) -> None:
    t, _ = traffic
    assert (t.predictions["@timestamp"] == pd.Timestamp(T0 + 3 * HOUR)).sum() == 1
    with FakeServer(FakeCluster(t.predictions, t.feedback)) as server:
        windows = ElasticsearchLabels(connect(server.url), page_size=PAGE).labelled_windows(QUERY, _hours(2, 3))
    ts = t.predictions["@timestamp"]
    expected = [int(((ts >= pd.Timestamp(T0 + s * HOUR)) & (ts < pd.Timestamp(T0 + (s + 1) * HOUR))).sum())
                for s in (2, 3)]
    assert [w[""].rows for w in windows] == expected


# --- requests ----------------------------------------------------------------------------------------

def _kinds(requests: list[Request]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in requests:
        kind = ("close pit" if r.method == "DELETE" else "open pit" if r.path.endswith("/_pit")
                else "feedback" if "feedback" in r.path else "predictions")
        out[kind] = out.get(kind, 0) + 1
    return out


def test_a_24_window_batch_costs_two_requests_a_page_per_run_not_per_window() -> None:
    page = 500
    t = binary_traffic(np.random.default_rng(32), 2_400, span=24 * HOUR)
    with FakeServer(FakeCluster(t.predictions, t.feedback)) as server:
        es = ElasticsearchLabels(connect(server.url), page_size=page)
        es.labelled_windows(QUERY, _hours(*range(24)))
        one_run = _kinds(server.requests)
        server.requests.clear()
        es.labelled_windows(QUERY, _hours(*range(10), *range(14, 24)))  # two runs
        two_runs = _kinds(server.requests)
        server.requests.clear()
        for s in range(24):
            es.labelled_window(dataclasses.replace(QUERY, start=T0 + s * HOUR, end=T0 + (s + 1) * HOUR))
        per_window = _kinds(server.requests)
    pages = -(-2_400 // page)  # the last page is short: it ends the stream
    assert one_run == {"open pit": 1, "predictions": pages, "feedback": pages, "close pit": 1}
    assert sum(one_run.values()) <= 2 * pages + 2
    assert two_runs["open pit"] == two_runs["close pit"] == 2
    assert two_runs["predictions"] == two_runs["feedback"] <= pages + 1
    assert per_window == {"open pit": 24, "predictions": 24, "feedback": 24, "close pit": 24}


def test_a_336_window_look_back_costs_138_requests_instead_of_1344() -> None:
    """1,000 predictions an hour with pages of 5,000 is, in requests, 15 an hour with pages of 75."""
    n, page = 336 * 15, 75
    t = binary_traffic(np.random.default_rng(33), n, span=336 * HOUR, label_share=0.7)
    with FakeServer(FakeCluster(t.predictions, t.feedback)) as server:
        es = ElasticsearchLabels(connect(server.url), page_size=page)
        windows = es.labelled_windows(QUERY, _hours(*range(336)))
        batched = len(server.requests)
    assert sum(w[""].rows for w in windows) == n
    pages = -(-n // page)  # 67 full pages and a short one that ends the stream
    assert batched == 2 + 2 * pages == 138  # window by window: 336 x (open, page, lookup, close) = 1,344


def test_an_unreadable_timestamp_is_one_clear_error() -> None:
    t = binary_traffic(np.random.default_rng(34), 20)
    cluster = FakeCluster(t.predictions, t.feedback)
    real = cluster._page

    def garbled(body: dict[str, Any]) -> Any:
        reply = real(body)
        for hit in reply.body["hits"]["hits"]:
            hit["_source"]["@timestamp"] = "1 March 2025"
        return reply

    cluster._page = garbled  # type: ignore[method-assign]
    with FakeServer(cluster) as server, pytest.raises(StoreError, match="no readable @timestamp") as err:
        ElasticsearchLabels(connect(server.url)).labelled_windows(QUERY, _hours(0))
    assert "\n" not in str(err.value) and "1 March 2025" in str(err.value)


# --- slots ---------------------------------------------------------------------------------------------

def test_window_slot_floors_like_the_embedded_store() -> None:
    batch = _hours(0, 1, 2)
    ms = int(T0.timestamp() * 1000)
    assert window_slot("2025-03-01T00:59:59.999Z", batch) == 0
    assert window_slot("2025-03-01T01:00:00.000Z", batch) == 1  # a window's end starts the next one
    assert window_slot("2025-03-01T01:00:00Z", batch) == 1
    assert window_slot("2025-03-01T00:59:59.999999999Z", batch) == 0  # nanoseconds truncated, never rounded up
    assert window_slot("2025-03-01T02:30:00+01:00", batch) == 1  # an offset is honoured
    assert window_slot("2025-03-01T02:30:00", batch) == 2  # no zone: UTC, as Elasticsearch reads it
    assert window_slot("2025-02-28T23:59:59.999Z", batch) == -1
    assert window_slot(ms + 3_600_000, batch) == 1 and window_slot(ms + 3_599_999, batch) == 0
    assert window_slot(str(ms + 7_200_000), batch) == 2  # epoch millis as a string (epoch_millis format)
    assert window_slot(float(ms + 3_600_000), batch) == 1
    assert event_time(ms) == T0 and event_time("2025-03-01") == T0
    assert event_time("2025") == datetime(2025, 1, 1, tzinfo=timezone.utc)  # strict_date_optional_time wins
    quarter = WindowBatch.of([(T0 + timedelta(minutes=15) * k, T0 + timedelta(minutes=15) * (k + 1))
                              for k in (0, 3)])
    assert window_slot(datetime(2025, 3, 1, 0, 45, tzinfo=timezone.utc).isoformat(), quarter) == 3


def test_run_bodies_typecheck() -> None:
    run = dataclasses.replace(SEGMENTED, start=T0, end=T0 + 24 * HOUR)
    assert_bodies_typecheck([
        ("search", {**prediction_page_body(run, PAGE), "pit": {"id": "46ToAwMD", "keep_alive": "2m"}},
         "a run's first prediction page"),
        ("search", {**prediction_page_body(run, PAGE), "pit": {"id": "46ToAwMD", "keep_alive": "2m"},
                    "search_after": [129]}, "a run's next prediction page"),
        ("search", feedback_slot_ids_body("churn", T0, T0 + 24 * HOUR, "1", 3_600_000, 0, None, 40),
         "first (window, id) feedback page"),
        ("search", feedback_slot_ids_body("churn", T0, T0 + 24 * HOUR, None, 2_700_000, 600_000,
                                          {"slot": 1740787800000, "id": "a"}), "next (window, id) feedback page"),
    ])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_window_without_predictions_has_zero_counts(task: str) -> None:
    """Before the fix, a classification window without predictions raised a numpy TypeError (float arrays and-ed)."""
    t = binary_traffic(np.random.default_rng(35), 50)
    query = LabelQuery("churn", T0 + 5 * HOUR, T0 + 6 * HOUR, task)  # type: ignore[arg-type]
    with FakeServer(FakeCluster(t.predictions, t.feedback)) as server:
        window = ElasticsearchLabels(connect(server.url)).labelled_window(query)
    assert window.keys() == {""}
    empty = window[""]
    assert (empty.rows, empty.n_predictions, empty.labelled_rows, empty.duplicate_feedback) == (0, 0.0, 0, 0)
    assert (empty.classification is None) == (task == "regression")


# --- orphan feedback ---------------------------------------------------------------------------------------

def _orphan_traffic() -> Traffic:
    """Feedback over a day; every 9th event names a prediction that does not exist, some ids twice, one feedback
    event stamped exactly at 05:00 (a window's end)."""
    t = binary_traffic(np.random.default_rng(36), 1_200, span=24 * HOUR, duplicate_share=0.2)
    fb = t.feedback.copy()
    fb.loc[fb.index[::9], "mlmon.prediction.id"] = [f"zz-orphan-{k % 40:02d}" for k in range(len(fb.index[::9]))]
    fb.loc[fb.index[5], "@timestamp"] = pd.Timestamp(T0 + 5 * HOUR)
    return Traffic(t.predictions, fb)


@pytest.mark.parametrize("size, first", [(HOUR, T0), (timedelta(minutes=45), T0 + timedelta(minutes=10))],
                         ids=["hours", "45-minute-windows-off-the-epoch-grid"])
def test_orphan_feedback_of_each_window_is_what_it_is_asked_alone(size: timedelta, first: datetime) -> None:
    t = _orphan_traffic()
    n = int(30 * HOUR / size)
    batch = WindowBatch.of([(first + k * size, first + (k + 1) * size) for k in range(n) if k not in (4, 5, 6)])
    with FakeServer(FakeCluster(t.predictions, t.feedback)) as server:
        es = ElasticsearchLabels(connect(server.url), page_size=40)  # composite pages span windows
        batched = es.orphan_feedback_batch("churn", batch)
        one_pass = _kinds(server.requests)
        server.requests.clear()
        alone = [es.orphan_feedback("churn", s, e) for s, e in batch.windows]
        per_window = _kinds(server.requests)
    assert batched == alone
    assert sum(o.orphans for o in batched) > 0 and sum(len(o.example_ids) == 5 for o in batched) > 0
    ts = t.feedback["@timestamp"]
    assert sum(o.feedback for o in batched) == sum(
        ((ts >= pd.Timestamp(s)) & (ts < pd.Timestamp(e))).sum() for s, e in batch.windows)
    # Per run: a composite page per 40 (window, id) buckets (and the short or empty one that ends it), a known-id
    # lookup per page with buckets; window by window the same, per window.
    slot = (ts - pd.Timestamp(first)) // pd.Timedelta(size)
    pairs = t.feedback.assign(slot=slot).drop_duplicates(["slot", "mlmon.prediction.id"])["slot"]
    runs = [range(0, 4), range(7, n)]
    buckets = [int(pairs.isin(list(r)).sum()) for r in runs]
    assert one_pass == {"feedback": sum(b // 40 + 1 for b in buckets), "predictions": sum(-(-b // 40) for b in buckets)}
    assert sum(one_pass.values()) < sum(per_window.values())


def test_orphan_feedback_at_a_window_end_is_in_the_next_window() -> None:
    t = _orphan_traffic()
    with FakeServer(FakeCluster(t.predictions, t.feedback)) as server:
        got = ElasticsearchLabels(connect(server.url)).orphan_feedback_batch("churn", _hours(4, 5))
    ts = t.feedback["@timestamp"]
    assert [o.feedback for o in got] == [
        int(((ts >= pd.Timestamp(T0 + s * HOUR)) & (ts < pd.Timestamp(T0 + (s + 1) * HOUR))).sum()) for s in (4, 5)]


def test_windows_of_a_fraction_of_a_millisecond_are_asked_one_by_one() -> None:
    t = _orphan_traffic()
    tiny = timedelta(microseconds=1500)
    at = pd.Timestamp(t.feedback["@timestamp"].iloc[3]).to_pydatetime()
    batch = WindowBatch.of([(at + k * tiny, at + (k + 1) * tiny) for k in range(4)])
    with FakeServer(FakeCluster(t.predictions, t.feedback)) as server:
        es = ElasticsearchLabels(connect(server.url))
        assert es.orphan_feedback_batch("churn", batch) == [es.orphan_feedback("churn", s, e) for s, e in batch.windows]


def test_a_timestamp_without_zone_is_utc_for_the_delay_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the fix the delay read a zone-less ISO time in the machine's local zone (9 h off in Tokyo)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert _epoch_s("2025-03-01T00:00:00") == _epoch_s("2025-03-01T00:00:00Z") == T0.timestamp()
        assert _epoch_s(int(T0.timestamp() * 1000)) == T0.timestamp()
    finally:
        monkeypatch.undo()
        time.tzset()
