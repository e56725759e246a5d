"""Attribution sums from Elasticsearch: ONE ``size: 0`` search per window, aggregations only.

Per attribution field ``mlmon.attributions.<f>`` the search asks for

- ``extended_stats``: count, sum and sum of squares (what ``AttributionSums`` needs but sum |a|);
- a two-bucket ``range`` aggregation (``< 0`` and ``>= 0``) with a ``sum``
  sub-aggregation: ``sum |a| = sum(a >= 0) - sum(a < 0)``.

Why no script for |a|: a ``sum`` with a Painless ``script`` or a
``runtime_mappings`` field would also keep it in aggregations, but both run
a script per document (no doc-value fast path) and both fail on clusters
that restrict scripting (``script.allowed_types: none`` is a common hardening
setting). The sign split reads doc values only and is exact: each bucket sums
numbers of one sign, so nothing cancels. What leaves the cluster: 7 numbers
per feature, whatever the number of explanations.

Many windows at once (``attribution_sums_batch``): the same aggregations under a
``date_histogram`` whose buckets are the windows (:mod:`mlmon.stores.elasticsearch.window_batches`).

Per segment value (``mlmon.segment.<name>``, carried by predictions only):
explanation events name their prediction, so the store pages through the
ids of the segment's predictions (``search_after``, ``PAGE_SIZE`` ids, logged
in ``[start - EXPLANATION_LOOKBACK, end)``) and runs the same aggregations
restricted to each page's ids (a ``terms`` filter); the pages' sums add up.
What leaves the cluster: the segment's prediction ids (no other field) and 7
numbers per feature per page. The embedded store runs the same semi-join in SQL.

Attribution references live in their own index, ``mlmon-references-attributions``
(matched by the ``mlmon-references*`` template and the jobs' role): the same
header as reference profiles, the attribution sums under ``profile`` (stored, not indexed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from mlmon.core.documents import iso
from mlmon.core.perf_stats import AttributionSums, add_features
from mlmon.stores.protocols import StoreError
from mlmon.stores.elasticsearch.references import latest_reference_query
from mlmon.core.labels import EXPLANATION_LOOKBACK
from mlmon.core.queries import WindowBatch
from mlmon.stores.elasticsearch.window_batches import (WINDOWS_AGG, Slice, histogram_agg, interval_ms, plan_slices,
                                                       slice_bounds, window_buckets)
from mlmon_logging.contract import data_stream

EXPLANATIONS_PATTERN = data_stream("explanation", "*")   # logs-mlmon.explanation-*
PREDICTIONS_PATTERN = data_stream("prediction", "*")
#: Prediction ids per page of a segment: far below index.max_terms_count (65,536).
PAGE_SIZE = 5000
ATTRIBUTION_REFERENCES_INDEX = "mlmon-references-attributions"
ATTRIBUTIONS_PREFIX = "mlmon.attributions."
#: Buckets per feature per window: the sign range's two (extended_stats and the sums are metrics).
SIGN_BUCKETS = 2
#: Stay under search.max_buckets (65,536), as the drift searches do.
BUCKET_BUDGET = 60_000


# --- request bodies (pure; type-checked against Elastic's API types in the tests) ---------------

def explanation_filter(model: str, start: datetime, end: datetime, version: str | None,
                       method: str | None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [
        {"term": {"mlmon.model.name": model}},
        {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end), "format": "strict_date_optional_time"}}},
    ]
    if version is not None:
        filters.append({"term": {"mlmon.model.version": version}})
    if method is not None:
        filters.append({"term": {"mlmon.explanation.method": method}})
    return {"bool": {"filter": filters}}


def attribution_aggs(i: int, feature: str) -> dict[str, Any]:
    field = ATTRIBUTIONS_PREFIX + feature
    return {
        f"a{i}_stats": {"extended_stats": {"field": field}},
        f"a{i}_sign": {"range": {"field": field, "ranges": [{"key": "negative", "to": 0.0},
                                                            {"key": "positive", "from": 0.0}]},
                       "aggs": {"sum": {"sum": {"field": field}}}},
    }


def attribution_search_body(model: str, start: datetime, end: datetime, features: Sequence[str], *,
                            version: str | None = None, method: str | None = None,
                            prediction_ids: Sequence[str] | None = None) -> dict[str, Any]:
    aggs: dict[str, Any] = {}
    for i, f in enumerate(features):
        aggs.update(attribution_aggs(i, f))
    query = explanation_filter(model, start, end, version, method)
    if prediction_ids is not None:
        query["bool"]["filter"].append({"terms": {"mlmon.prediction.id": list(prediction_ids)}})
    return {"size": 0, "track_total_hits": True, "query": query, "aggs": aggs}


def segment_ids_body(model: str, start: datetime, end: datetime, segment: tuple[str, str], after: str | None,
                     size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of the ids of the model's predictions with ``mlmon.segment.<name>`` = value, by id."""
    name, value = segment
    body: dict[str, Any] = {
        "size": size, "_source": False, "track_total_hits": False,
        "query": {"bool": {"filter": [
            {"term": {"mlmon.model.name": model}},
            {"term": {f"mlmon.segment.{name}": value}},
            {"range": {"@timestamp": {"gte": iso(start - EXPLANATION_LOOKBACK), "lt": iso(end),
                                      "format": "strict_date_optional_time"}}}]}},
        "sort": [{"mlmon.prediction.id": {"order": "asc"}}]}
    if after is not None:
        body["search_after"] = [after]
    return body


def attribution_batch_bodies(model: str, batch: WindowBatch, features: Sequence[str], *, version: str | None = None,
                             method: str | None = None) -> list[tuple[dict[str, Any], Slice, list[str]]]:
    """The searches of a batch of windows: (body, its slice, the features in it). Each body: one
    date_histogram over a run of windows with ``attribution_aggs`` under it, under BUCKET_BUDGET buckets."""
    out: list[tuple[dict[str, Any], Slice, list[str]]] = []
    for part in plan_slices(batch, [SIGN_BUCKETS] * len(features), BUCKET_BUDGET):
        names = [features[i] for i in part.fields]
        sub_aggs: dict[str, Any] = {}
        for i, f in enumerate(names):
            sub_aggs.update(attribution_aggs(i, f))
        start, end = slice_bounds(batch, part.windows)
        body = {"size": 0, "track_total_hits": False, "query": explanation_filter(model, start, end, version, method),
                "aggs": {WINDOWS_AGG: histogram_agg(batch, part.windows, sub_aggs)}}
        out.append((body, part, names))
    return out


def parse_attribution_response(response: Mapping[str, Any], features: Sequence[str]) -> dict[str, AttributionSums]:
    """The sums in the answer to one window's search (``attribution_search_body``)."""
    return parse_attribution_aggs(response.get("aggregations") or {}, features)


def parse_attribution_aggs(aggs: Mapping[str, Any], features: Sequence[str]) -> dict[str, AttributionSums]:
    """The sums of one window from its aggregations: a window's search answer or one bucket of a batch's."""
    out: dict[str, AttributionSums] = {}
    for i, f in enumerate(features):
        try:
            stats = aggs[f"a{i}_stats"]
            buckets = {b["key"]: b for b in aggs[f"a{i}_sign"]["buckets"]}
            negative, positive = buckets["negative"], buckets["positive"]
        except (KeyError, TypeError) as err:
            raise StoreError(f"attribution search answer lacks the aggregation of {f!r} ({err})") from err
        n = float(stats.get("count") or 0)
        if n == 0:
            out[f] = AttributionSums.empty()
            continue
        neg_sum = float(negative["sum"]["value"] or 0.0) if negative["doc_count"] else 0.0
        pos_sum = float(positive["sum"]["value"] or 0.0) if positive["doc_count"] else 0.0
        out[f] = AttributionSums(n, pos_sum - neg_sum, float(stats.get("sum") or 0.0),
                                 float(stats.get("sum_of_squares") or 0.0))
    return out


def attribution_reference_document(reference_id: str, model: str, version: str, created_at: datetime, source: str,
                                   rows: int, document: Mapping[str, Any]) -> dict[str, Any]:
    """The stored document: the reference-profile header (searchable) and the sums under ``profile``."""
    return {"@timestamp": iso(created_at), "mlmon": {"model": {"name": model, "version": version}},
            "reference": {"id": reference_id, "source": source, "rows": rows, "created_at": iso(created_at),
                          "fields": [ATTRIBUTIONS_PREFIX + f for f in sorted(document.get("features", {}))]},
            "profile": dict(document)}


# --- the store ------------------------------------------------------------------------------------

class ElasticsearchExplainStore:
    def __init__(self, client: Elasticsearch, explanations: str = EXPLANATIONS_PATTERN,
                 predictions: str = PREDICTIONS_PATTERN, page_size: int = PAGE_SIZE) -> None:
        self.es = client
        self.explanations = explanations
        self.predictions = predictions
        self.page_size = page_size

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ApiError, TransportError) as err:
            raise StoreError(f"Elasticsearch {what} failed after retries: {err}") from err

    def attribution_features(self, model: str, version: str | None = None) -> list[str]:
        """Attribution fields mapped in the explanation data streams (any model: the job drops empty ones)."""
        resp = self._call("field caps", self.es.field_caps, index=self.explanations,
                          fields=[ATTRIBUTIONS_PREFIX + "*"], ignore_unavailable=True, allow_no_indices=True)
        return sorted(f[len(ATTRIBUTIONS_PREFIX):] for f in resp.body.get("fields", {})
                      if f.startswith(ATTRIBUTIONS_PREFIX) and "." not in f[len(ATTRIBUTIONS_PREFIX):])

    def attribution_sums(self, model: str, start: datetime, end: datetime, *, version: str | None = None,
                         method: str | None = None, features: Sequence[str] = (),
                         segment: tuple[str, str] | None = None) -> dict[str, AttributionSums]:
        wanted = list(features) or self.attribution_features(model, version)
        if not wanted:
            return {}
        if segment is None:
            return self._sums(attribution_search_body(model, start, end, wanted, version=version, method=method),
                              wanted)
        total = {f: AttributionSums.empty() for f in wanted}
        for ids in self._segment_ids(model, start, end, segment):
            page = self._sums(attribution_search_body(model, start, end, wanted, version=version, method=method,
                                                      prediction_ids=ids), wanted)
            total = add_features(total, page)
        return total

    def attribution_sums_batch(self, model: str, batch: WindowBatch, *, version: str | None = None,
                               method: str | None = None, features: Sequence[str] = (),
                               segment: tuple[str, str] | None = None) -> list[dict[str, AttributionSums]]:
        """``attribution_sums`` of every window of ``batch``: date_histogram searches over runs of windows.

        Asked window by window: a batch of one window (no histogram needed), windows not in whole
        milliseconds, and segments - a window's segment counts explanations whose prediction was logged in
        ``[start - EXPLANATION_LOOKBACK, end)`` of that window, a bound that differs per window, which one
        ``terms`` filter of ids under a histogram cannot express."""
        wanted = list(features) or self.attribution_features(model, version)
        if not wanted:
            return [{} for _ in batch.windows]
        if segment is not None or len(batch) == 1 or interval_ms(batch) is None:
            return [self.attribution_sums(model, s, e, version=version, method=method, features=wanted,
                                          segment=segment) for s, e in batch.windows]
        out: list[dict[str, AttributionSums]] = [{} for _ in batch.windows]
        for body, part, names in attribution_batch_bodies(model, batch, wanted, version=version, method=method):
            resp = self._call("attribution batch search", self.es.search, index=self.explanations,
                              ignore_unavailable=True, allow_no_indices=True, **body)
            for position, bucket in zip(part.windows, window_buckets(resp.body, batch, part.windows)):
                out[position].update(parse_attribution_aggs(bucket, names))
        return [{f: sums[f] for f in wanted} for sums in out]

    def _sums(self, body: dict[str, Any], features: list[str]) -> dict[str, AttributionSums]:
        resp = self._call("attribution search", self.es.search, index=self.explanations, ignore_unavailable=True,
                          allow_no_indices=True, **body)
        return parse_attribution_response(resp.body, features)

    def _segment_ids(self, model: str, start: datetime, end: datetime,
                     segment: tuple[str, str]) -> Iterator[list[str]]:
        after: str | None = None
        while True:
            resp = self._call("segment prediction ids", self.es.search, index=self.predictions,
                              ignore_unavailable=True, allow_no_indices=True,
                              **segment_ids_body(model, start, end, segment, after, self.page_size))
            hits = resp.body["hits"]["hits"]
            if not hits:
                return
            ids = [str(h["sort"][0]) for h in hits]
            yield ids
            if len(hits) < self.page_size:
                return
            after = ids[-1]

    def put_attribution_reference(self, reference_id: str, model: str, version: str, created_at: datetime,
                                  source: str, rows: int, document: Mapping[str, Any]) -> str:
        self._call("attribution reference write", self.es.index, index=ATTRIBUTION_REFERENCES_INDEX, id=reference_id,
                   refresh="wait_for", document=attribution_reference_document(
                       reference_id, model, version, created_at, source, rows, document))
        return reference_id

    def get_attribution_reference(self, model: str, version: str | None = None,
                                  reference_id: str | None = None) -> dict[str, Any] | None:
        resp = self._call("attribution reference search", self.es.search, index=ATTRIBUTION_REFERENCES_INDEX,
                          ignore_unavailable=True, **latest_reference_query(model, version, reference_id))
        hits = resp.body["hits"]["hits"]
        return dict(hits[0]["_source"]["profile"]) if hits else None
