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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from elasticsearch import ApiError, Elasticsearch, TransportError

from mlmon.core.documents import iso
from mlmon.core.perf_stats import (LOG_LOSS_EPS, CbpeStats, ClassificationStats, ConfusionCounts, Histogram, LogLossSums,
                              PredictedScoreBins, RegressionSums, ScoreBins, bin_index)
from mlmon.stores.protocols import StoreError
from mlmon.core.labels import DELAY_EDGES_S, LabelledWindow, LabelQuery, OrphanFeedback, SegmentedWindows
from mlmon.stores.elasticsearch.label_pages import (FEEDBACK, PREDICTIONS, LatestFeedback, actual_field, joined_pages,
                                                    latest_feedback_body, prediction_page_body)

__all__ = ["ElasticsearchLabels", "feedback_ids_body", "known_ids_body", "latest_feedback_body",
           "prediction_page_body"]
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
    has_actual = np.array([a is not None for a in page.actual]) if cls_task else ~np.isnan(page.actual.astype(float))
    has_pred = np.array([p is not None for p in page.pred]) if cls_task else ~np.isnan(page.pred.astype(float))
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
    columns = list(query.classes) if query.multiclass else [query.positive_label]
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
        out: dict[str, LabelledWindow] = {}
        seg_field = f"mlmon.segment.{query.segment}" if query.segment else None
        for page in joined_pages(self.es, query, self.page_size):
            by_seg: dict[str, list[dict[str, Any]]] = {}
            for row in page.predictions:
                by_seg.setdefault(str(row.get(seg_field, "")) if seg_field else "", []).append(row)
            for seg, rows in by_seg.items():
                part = fold(query, _page(query, rows, page.feedback))
                out[seg] = add_windows(out[seg], part) if seg in out else part
        if not out and query.segment is None:
            out[""] = fold(query, _page(query, [], {}))
        return out

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


def _epoch_s(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value) / 1000.0  # a date sent as epoch milliseconds stays a number in _source
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


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
