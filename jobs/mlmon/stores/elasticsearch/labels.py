"""Label join on Elasticsearch: predictions in a point in time, latest feedback by a collapsed search.

Elasticsearch cannot join two data streams in one request, and the join key
(``mlmon.prediction.id``) has one value per prediction, so no aggregation over
the key can stay small. Chosen way, and why (the reads are in
:mod:`mlmon.stores.elasticsearch.label_pages`):

1. Page through the window's predictions in a point in time sorted by
   ``_shard_doc`` (index order: nothing is re-sorted per page, and every
   prediction is read exactly once, two sharing an id included), ``PAGE_SIZE``
   hits, ``_source`` limited to the fields the metrics use.
2. Per page, ONE search on the feedback data stream: ``terms`` query on that
   page's ids, ``collapse`` on the id sorted by ``@timestamp`` then ``event.id``,
   both descending: the latest feedback per prediction, ties broken by the
   greatest event id exactly as the DuckDB store's ``arg_max`` does; a ``terms``
   aggregation with ``min_doc_count: 2`` counts the duplicates. Not
   ``top_metrics``, though lighter: it sorts on one field only, never a keyword,
   and leaves ties unspecified (Elastic's docs), so two feedback events stamped
   in the same millisecond would join differently from run to run.
3. The page is folded into the running statistics (``perf_stats`` objects,
   additive) and dropped.

What leaves the cluster: per prediction of the window its id, time, predicted
label or value, score(s), sample rate and the asked segment (~150 bytes), and
per labelled prediction its latest actual and feedback time (one collapsed hit),
per prediction with repeated feedback one count - never the features, never the
feedback of other windows. Requests: two per page of predictions, none per
labelled row. Memory is bounded by one page (``PAGE_SIZE`` rows), whatever the
window size. A continuous transform (pivot by prediction id into a joined index)
would keep even these rows in the cluster; it needs a transform per model and a
delay of its own, so it is left as the next step for very large windows.

Many windows at once (``labelled_windows``: a look-back, a backfill). Each run of consecutive windows of
the batch is read as ONE range: one point in time, its predictions paged as above, each page's rows
grouped by (window slot of the prediction's ``@timestamp``, segment value) and folded into that
window's statistics. The statistics are additive across pages, so every window gets what it would get
asked alone (float sums up to rounding: rows are summed in other groups). A 336-window look-back at
1,000 predictions an hour (``PAGE_SIZE`` 5,000) costs 2 + 2 x 68 = 138 requests instead of
336 x 4 = 1,344 (a point in time opened and closed, one page and one feedback lookup per window).
Windows not asked (gaps of the batch) are neither read nor returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from elasticsearch import ApiError, Elasticsearch, TransportError

from mlmon.core.documents import iso
from mlmon.core.perf_stats import (LOG_LOSS_EPS, CbpeStats, ClassificationStats, ConfusionCounts, Histogram, LogLossSums,
                              PredictedScoreBins, RegressionSums, ScoreBins, bin_index)
from mlmon.stores.protocols import StoreError
from mlmon.core.labels import DELAY_EDGES_S, LabelledWindow, LabelQuery, OrphanFeedback, SegmentedWindows
from mlmon.core.queries import WindowBatch
from mlmon.stores.elasticsearch.label_pages import (FEEDBACK, ID, PREDICTIONS, LatestFeedback, actual_field,
                                                    joined_pages, latest_feedback_body, prediction_page_body)

__all__ = ["ElasticsearchLabels", "feedback_ids_body", "feedback_slot_ids_body", "known_ids_body",
           "latest_feedback_body", "prediction_page_body"]
#: Under the mlmon-references* index template and the jobs role, like the attribution references.
PERFORMANCE_REFERENCES_INDEX = "mlmon-references-performance"
#: Predictions per page: one feedback request per page; its terms query and aggregation stay far below
#: index.max_terms_count (65,536) and search.max_buckets (65,536), its collapsed hits below
#: index.max_result_window (10,000).
PAGE_SIZE = 5000


# --- request bodies (pure; type-checked against Elastic's API types in the tests) ----------------

def feedback_ids_body(model: str, start: datetime, end: datetime, version: str | None,
                      after: str | None, size: int = PAGE_SIZE) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [
        {"term": {"mlmon.model.name": model}},
        {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end), "format": "strict_date_optional_time"}}}]
    if version is not None:
        filters.append({"term": {"mlmon.model.version": version}})
    composite: dict[str, Any] = {"size": size, "sources": [{"id": {"terms": {"field": "mlmon.prediction.id"}}}]}
    if after is not None:
        composite["after"] = {"id": after}
    return {"size": 0, "query": {"bool": {"filter": filters}}, "aggs": {"ids": {"composite": composite}}}


def feedback_slot_ids_body(model: str, start: datetime, end: datetime, version: str | None,
                           window_ms: int, offset_ms: int, after: Mapping[str, Any] | None,
                           size: int = PAGE_SIZE) -> dict[str, Any]:
    """A page of (window, prediction id) feedback buckets over ``[start, end)``: windows of ``window_ms``
    starting ``offset_ms`` after a multiple of it (a bucket's key is its window's start, epoch millis), then
    ids, both ascending; ``after`` is the previous page's ``after_key``."""
    body = feedback_ids_body(model, start, end, version, None, size)
    composite: dict[str, Any] = {"size": size, "sources": [
        {"slot": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{window_ms}ms",
                                     "offset": f"+{offset_ms}ms"}}},
        {"id": {"terms": {"field": "mlmon.prediction.id"}}}]}
    if after is not None:
        composite["after"] = dict(after)
    body["aggs"] = {"ids": {"composite": composite}}
    return body


def known_ids_body(model: str, ids: Sequence[str]) -> dict[str, Any]:
    return {"size": 0, "query": {"bool": {"filter": [{"term": {"mlmon.model.name": model}},
                                                     {"terms": {"mlmon.prediction.id": list(ids)}}]}},
            "aggs": {"ids": {"terms": {"field": "mlmon.prediction.id", "size": max(len(ids), 1)}}}}


# --- folding pages into statistics -----------------------------------------------------------------

@dataclass
class Page:
    """One page of joined rows as arrays (a segment's rows at a time)."""

    w: np.ndarray
    pred: np.ndarray          # object: predicted label (classification) or float value (regression)
    scores: np.ndarray        # (rows, score columns), NaN where absent
    actual: np.ndarray        # object / float, None / NaN when unlabelled
    delay_s: np.ndarray       # NaN when unlabelled
    n_feedback: np.ndarray


def fold(query: LabelQuery, page: Page) -> LabelledWindow:
    """Statistics of one page, by the same rules as the DuckDB store's SQL."""
    cls_task = query.task == "classification"
    # dtype=bool: a page without rows (an empty window) would otherwise give float arrays that cannot be and-ed.
    has_actual = (np.array([a is not None for a in page.actual], dtype=bool) if cls_task
                  else ~np.isnan(page.actual.astype(float)))
    has_pred = (np.array([p is not None for p in page.pred], dtype=bool) if cls_task
                else ~np.isnan(page.pred.astype(float)))
    lab = has_actual & has_pred
    w = page.w
    delay = _weighted_histogram(page.delay_s[lab], w[lab], DELAY_EDGES_S)
    common: dict[str, Any] = dict(
        rows=len(w), n_predictions=float(w.sum()), labelled_rows=int(lab.sum()), n_labelled=float(w[lab].sum()),
        duplicate_feedback=int(np.maximum(page.n_feedback - 1, 0).sum()), delay=delay)
    if not cls_task:
        y = page.actual[lab].astype(float)
        err = page.pred[lab].astype(float) - y
        wl = w[lab]
        nz = y != 0
        hist = None if query.error_edges is None else _weighted_histogram(err, wl, query.error_edges)
        # Centred on the page's own mean, as the DuckDB store centres on the window's (see RegressionSums).
        k = float(np.dot(wl, y) / wl.sum()) if wl.sum() > 0 else query.shift
        return LabelledWindow(**common, regression=RegressionSums(
            float(wl.sum()), float((wl * err).sum()), float((wl * np.abs(err)).sum()), float((wl * err * err).sum()),
            float((wl * (y - k)).sum()), float((wl * (y - k) ** 2).sum()),
            float((wl[nz] * np.abs(err[nz]) / np.abs(y[nz])).sum()), float(wl[nz].sum()), k, hist))
    act = np.array([str(a) for a in page.actual[lab]], dtype=object)
    prd = np.array([str(p) for p in page.pred[lab]], dtype=object)
    pairs: dict[tuple[str, str], float] = {}
    for a, p, wi in zip(act.tolist(), prd.tolist(), w[lab].tolist()):
        pairs[(a, p)] = pairs.get((a, p), 0.0) + wi
    columns = query.score_classes
    scores: dict[str, ScoreBins] = {}
    cbpe: dict[str, CbpeStats] = {}
    for j, c in enumerate(columns):
        s = page.scores[:, j]
        ok = lab & ~np.isnan(s)
        sl = s[ok]
        is_pos = np.array([str(a) == c for a in page.actual[ok]], dtype=bool)
        if ok.any():
            scores[c] = ScoreBins.from_scores(sl, is_pos, query.score_edges, w[ok])
        if query.cbpe:
            present = ~np.isnan(s)
            pp = np.array([p is not None and str(p) == c for p in page.pred], dtype=bool)
            cbpe[c] = CbpeStats(_predicted_bins(s[present & pp], w[present & pp], query.score_edges),
                                _predicted_bins(s[present & ~pp], w[present & ~pp], query.score_edges))
    log_loss = None
    complete = lab & ~np.isnan(page.scores).any(axis=1)
    if complete.any():
        if query.multiclass:
            index = {c: i for i, c in enumerate(columns)}
            rows = page.scores[complete]
            p_actual = np.array([rows[k, index[str(a)]] if str(a) in index else 0.0
                                 for k, a in enumerate(page.actual[complete])])
        else:
            s = page.scores[complete, 0]
            p_actual = np.where([str(a) == query.positive_label for a in page.actual[complete]], s, 1.0 - s)
        nll = -np.log(np.clip(p_actual, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS))
        log_loss = LogLossSums(float((w[complete] * nll).sum()), float(w[complete].sum()))
    predicted: dict[str, float] = {}
    for p, wi in zip(page.pred.tolist(), w.tolist()):
        if p is not None:
            predicted[str(p)] = predicted.get(str(p), 0.0) + wi
    return LabelledWindow(**common, classification=ClassificationStats(
        ConfusionCounts.from_pairs(pairs), float(w.sum()), scores, log_loss), cbpe=cbpe,
        predicted=dict(sorted(predicted.items())))


def add_windows(a: LabelledWindow, b: LabelledWindow) -> LabelledWindow:
    def plus(x: Any, y: Any) -> Any:
        return y if x is None else x if y is None else x + y

    cbpe = dict(a.cbpe)
    for c, s in b.cbpe.items():
        cbpe[c] = cbpe[c] + s if c in cbpe else s
    predicted = dict(a.predicted)
    for label, n in b.predicted.items():
        predicted[label] = predicted.get(label, 0.0) + n
    return LabelledWindow(a.rows + b.rows, a.n_predictions + b.n_predictions, a.labelled_rows + b.labelled_rows,
                          a.n_labelled + b.n_labelled, a.duplicate_feedback + b.duplicate_feedback, a.delay + b.delay,
                          plus(a.classification, b.classification), plus(a.regression, b.regression), cbpe,
                          dict(sorted(predicted.items())))


def _weighted_histogram(values: np.ndarray, weights: np.ndarray, edges: tuple[float, ...]) -> Histogram:
    v = np.asarray(values, dtype=float)
    inside = (v >= edges[0]) & (v <= edges[-1])
    counts = np.bincount(bin_index(v[inside], edges), weights[inside], minlength=len(edges) - 1)
    return Histogram(edges, tuple(counts.tolist()), float(weights[v < edges[0]].sum()),
                     float(weights[v > edges[-1]].sum()))


def _predicted_bins(scores: np.ndarray, weights: np.ndarray, edges: tuple[float, ...]) -> PredictedScoreBins:
    s = np.clip(scores, edges[0], edges[-1])
    idx = bin_index(s, edges)
    k = len(edges) - 1
    return PredictedScoreBins(edges, tuple(np.bincount(idx, weights, minlength=k).tolist()),
                              tuple(np.bincount(idx, weights * s, minlength=k).tolist()))


# --- the store ----------------------------------------------------------------------------------------

class ElasticsearchLabels:
    def __init__(self, client: Elasticsearch, page_size: int = PAGE_SIZE) -> None:
        self.es = client
        self.page_size = page_size

    def _search(self, what: str, index: str, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return dict(self.es.search(index=index, ignore_unavailable=True, allow_no_indices=True, **body).body)
        except (ApiError, TransportError) as err:
            raise StoreError(f"Elasticsearch {what} failed after retries: {err}") from err

    def labelled_window(self, query: LabelQuery) -> SegmentedWindows:
        return self.labelled_windows(query, WindowBatch.of([(query.start, query.end)]))[0]

    def labelled_windows(self, query: LabelQuery, batch: WindowBatch) -> list[SegmentedWindows]:
        """``labelled_window`` of each window of ``batch`` (``query``'s bounds are not used), in order: one
        point in time per run of consecutive windows, each page's rows folded into their own window."""
        out: list[dict[str, LabelledWindow]] = [{} for _ in batch.windows]
        seg_field = f"mlmon.segment.{query.segment}" if query.segment else None
        for run in consecutive_runs(batch):
            position = {slot: i for i, slot in run}
            first, last = run[0][0], run[-1][0]
            run_query = replace(query, start=batch.windows[first][0], end=batch.windows[last][1])
            for page in joined_pages(self.es, run_query, self.page_size):
                groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
                for row in page.predictions:
                    i = position.get(_row_slot(row, batch), -1)
                    if i < 0:  # the range filter selected it, so its _source time must fall in the run
                        raise StoreError(
                            f"prediction {row.get(ID)!r} stamped {row.get('@timestamp')!r} was returned for "
                            f"[{iso(run_query.start)}, {iso(run_query.end)}) but its _source time lies outside; "
                            f"check the @timestamp mapping of the prediction data streams")
                    groups.setdefault((i, str(row.get(seg_field, "")) if seg_field else ""), []).append(row)
                for (i, seg), rows in groups.items():
                    part = fold(query, _page(query, rows, page.feedback))
                    out[i][seg] = add_windows(out[i][seg], part) if seg in out[i] else part
        for windows in out:
            if not windows and query.segment is None:  # all traffic: an empty window still has its (zero) counts
                windows[""] = fold(query, _page(query, [], {}))
        return list(out)

    def orphan_feedback(self, model: str, start: datetime, end: datetime,
                        version: str | None = None) -> OrphanFeedback:
        after: str | None = None
        feedback = orphans = 0
        examples: list[str] = []
        while True:
            agg = self._search("feedback ids", FEEDBACK, feedback_ids_body(model, start, end, version, after,
                                                                            self.page_size))["aggregations"]["ids"]
            buckets = agg["buckets"]
            if not buckets:
                break
            counts = {str(b["key"]["id"]): int(b["doc_count"]) for b in buckets}
            known = self._search("known predictions", PREDICTIONS, known_ids_body(model, list(counts)))
            found = {str(b["key"]) for b in known["aggregations"]["ids"]["buckets"]}
            feedback += sum(counts.values())
            missing = [i for i in counts if i not in found]
            orphans += sum(counts[i] for i in missing)
            examples += missing[: max(0, 5 - len(examples))]
            if "after_key" not in agg or len(buckets) < self.page_size:
                break
            after = str(agg["after_key"]["id"])
        return OrphanFeedback(feedback, orphans, tuple(examples))

    def orphan_feedback_batch(self, model: str, batch: WindowBatch,
                              version: str | None = None) -> list[OrphanFeedback]:
        """``orphan_feedback`` of each window of ``batch``, in one pass per run of consecutive windows.

        One pass: a composite page of (window, id) buckets (a ``date_histogram`` source aligned on the batch's
        windows, then the ids) and one known-id lookup per page of ``page_size`` buckets, so the requests grow
        with the feedback of the run, not with its windows: a 336-window look-back with ~700 labelled ids an
        hour costs 2 x 48 requests instead of 2 x 336. Windows that are not whole milliseconds cannot be
        bucket-aligned (Elasticsearch rounds dates in ms) and are asked one by one.
        """
        window_us = batch.size // timedelta(microseconds=1)
        if window_us % 1000 or batch.start.microsecond % 1000:
            return [self.orphan_feedback(model, start, end, version) for start, end in batch.windows]
        window_ms = window_us // 1000
        start_ms = (batch.start - _EPOCH) // timedelta(milliseconds=1)
        feedback = [0] * len(batch)
        orphans = [0] * len(batch)
        examples: list[list[str]] = [[] for _ in batch.windows]
        for run in consecutive_runs(batch):
            position = {slot: i for i, slot in run}
            start, end = batch.windows[run[0][0]][0], batch.windows[run[-1][0]][1]
            after: dict[str, Any] | None = None
            while True:
                body = feedback_slot_ids_body(model, start, end, version, window_ms, start_ms % window_ms, after,
                                              self.page_size)
                agg = self._search("feedback ids", FEEDBACK, body)["aggregations"]["ids"]
                buckets = agg["buckets"]
                if not buckets:
                    break
                ids = list(dict.fromkeys(str(b["key"]["id"]) for b in buckets))
                known = self._search("known predictions", PREDICTIONS, known_ids_body(model, ids))
                found = {str(b["key"]) for b in known["aggregations"]["ids"]["buckets"]}
                for b in buckets:  # window by window, ids ascending: the examples are those asked alone gives
                    i = position.get((int(b["key"]["slot"]) - start_ms) // window_ms, -1)
                    if i < 0:
                        raise StoreError(f"feedback bucket {b['key']!r} of [{iso(start)}, {iso(end)}) is not "
                                         f"aligned on the windows of {window_ms} ms from {iso(batch.start)}")
                    pid, n = str(b["key"]["id"]), int(b["doc_count"])
                    feedback[i] += n
                    if pid not in found:
                        orphans[i] += n
                        if len(examples[i]) < 5:
                            examples[i].append(pid)
                if "after_key" not in agg or len(buckets) < self.page_size:
                    break
                after = dict(agg["after_key"])
        return [OrphanFeedback(f, o, tuple(e)) for f, o, e in zip(feedback, orphans, examples)]

    def put_performance_reference(self, key: str, document: Mapping[str, Any]) -> None:
        try:
            self.es.index(index=PERFORMANCE_REFERENCES_INDEX, id=key, document=dict(document), refresh="wait_for")
        except (ApiError, TransportError) as err:
            raise StoreError(f"writing performance reference {key} failed: {err}") from err

    def get_performance_reference(self, key: str) -> dict[str, Any] | None:
        try:
            resp = self.es.get(index=PERFORMANCE_REFERENCES_INDEX, id=key)
        except ApiError as err:
            if err.meta.status == 404:
                return None
            raise StoreError(f"reading performance reference {key} failed: {err}") from err
        except TransportError as err:
            raise StoreError(f"reading performance reference {key} failed: {err}") from err
        return dict(resp.body["_source"])


def consecutive_runs(batch: WindowBatch) -> Iterator[list[tuple[int, int]]]:
    """The batch's runs of consecutive windows, each as (position in the batch, slot) pairs."""
    run: list[tuple[int, int]] = []
    for i, slot in enumerate(batch.slots):
        if run and slot != run[-1][1] + 1:
            yield run
            run = []
        run.append((i, slot))
    yield run


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def event_time(value: Any) -> datetime:
    """An event's ``@timestamp`` as ``_source`` holds it under the default ``date`` format
    (``strict_date_optional_time||epoch_millis``): an ISO string (UTC when it names no zone) or epoch
    milliseconds, as a number or a string of digits (but 4 digits: a year, the first format matching first)."""
    if isinstance(value, str) and len(value) == 4 and value.isdigit():
        return datetime(int(value), 1, 1, tzinfo=timezone.utc)
    if isinstance(value, str) and value.lstrip("-").replace(".", "", 1).isdigit():
        value = float(value) if "." in value else int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _EPOCH + timedelta(milliseconds=value)  # an int is exact; a float rounds to the microsecond
    t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def window_slot(timestamp: Any, batch: WindowBatch) -> int:
    """Whole window sizes from the batch's first start to ``timestamp``, floored, as the DuckDB store's
    ``window_slot_sql``: a prediction stamped exactly at a window's end is in the next window."""
    return (event_time(timestamp) - batch.start) // batch.size


def _row_slot(row: Mapping[str, Any], batch: WindowBatch) -> int:
    try:
        return window_slot(row["@timestamp"], batch)
    except (KeyError, ValueError, OverflowError) as err:
        raise StoreError(f"prediction {row.get(ID)!r} has no readable @timestamp in _source "
                         f"({row.get('@timestamp')!r}: {err})") from err


def _epoch_s(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value) / 1000.0  # a date sent as epoch milliseconds stays a number in _source
    return event_time(value).timestamp()  # a string without zone is UTC, not the machine's local time


def _page(query: LabelQuery, sources: list[dict[str, Any]], latest: Mapping[str, LatestFeedback]) -> Page:
    cls_task = query.task == "classification"
    columns = ([f"mlmon.prediction.scores.{c}" for c in query.classes] if query.multiclass
               else ["mlmon.prediction.score"])
    actual_name = actual_field(query.task)
    n = len(sources)
    w = np.array([1.0 / float(s.get("mlmon.sample_rate") or 1.0) for s in sources])
    scores = np.array([[float(s[c]) if s.get(c) is not None else np.nan for c in columns] for s in sources]
                      ).reshape(n, len(columns))
    actual: list[Any] = []
    delay = np.full(n, np.nan)
    n_feedback = np.zeros(n, dtype=int)
    for i, s in enumerate(sources):
        feedback = latest.get(str(s["mlmon.prediction.id"]))
        if feedback is None:
            actual.append(None if cls_task else np.nan)
            continue
        top = feedback.source
        value = top.get(actual_name)
        actual.append(value if cls_task else (np.nan if value is None else float(value)))
        delay[i] = _epoch_s(top["@timestamp"]) - _epoch_s(s["@timestamp"])
        n_feedback[i] = feedback.count
    pred_field = "mlmon.prediction.label" if cls_task else "mlmon.prediction.value"
    pred = [s.get(pred_field) for s in sources]
    return Page(w, np.array(pred, dtype=object if cls_task else float).reshape(n) if cls_task
                else np.array([np.nan if p is None else float(p) for p in pred], dtype=float),
                scores, np.array(actual, dtype=object if cls_task else float), delay, n_feedback)
