"""The Elasticsearch store: aggregations in, metric documents out, through the official client.

Per window ONE search with ``size: 0`` asks for every monitored field at once:
a ``range`` aggregation over the reference's edges with a ``sum`` per bucket,
``extended_stats`` and a ``missing`` count per numeric field; a
``terms`` aggregation restricted to the reference's categories plus one for
the most frequent unseen ones (``sum_other_doc_count`` counts the rest) per
categorical field. What the cluster returns depends on fields and bins, never
on documents. Only when features x bins would exceed the cluster's bucket
limit (``search.max_buckets``, 65,536 by default) is it split into several
requests - still independent of the number of documents.

Many windows (a backfill, a look-back) are asked together: one ``date_histogram``
over a run of windows with the same per-window aggregations under it
(:mod:`mlmon.stores.elasticsearch.window_batches`), split so that windows x
buckets stays under the same limit.

Retries with backoff on 429 / 5xx / timeouts come from :mod:`mlmon.stores.elasticsearch.client`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from mlmon.core.documents import CHECKPOINTS_INDEX, METRICS_INDEX, REFERENCES_INDEX, MetricDocument, iso
from mlmon.core.job_runs import JobHealth, JobRun
from mlmon.core.reference import ReferenceProfile
from mlmon.core.stats import CategoryStats, NumericStats, WindowStatistics, bin_anchors
from mlmon.stores.protocols import AlertStore, ExplainBackend, LabelledStore, MetricPage, StoreError
from mlmon.core.queries import WindowBatch, WindowQuery
from mlmon.stores.elasticsearch import job_runs
from mlmon.stores.elasticsearch.window_batches import (WINDOWS_AGG, Slice, histogram_agg, interval_ms, plan_slices,
                                                       slice_bounds, window_buckets)
from mlmon.stores.elasticsearch.paging import pit_pages
from mlmon.stores.elasticsearch.references import latest_reference_query
from mlmon_logging.contract import data_stream

log = logging.getLogger("mlmon.stores.es")

PREDICTIONS_PATTERN = data_stream("prediction", "*")   # logs-mlmon.prediction-*
#: Stay under the default search.max_buckets (65,536) with room for the terms buckets.
BUCKET_BUDGET = 60_000
BULK_ATTEMPTS = 4
BULK_BACKOFF_S = 1.0
#: Bulk request size. helpers.streaming_bulk's defaults (500 actions, 100 MB) send a metric document
#: (~0.6-2 KB) in requests of well under 1 MB: a month's backfill (~600k documents) would be ~1,200 requests.
#: Elastic's indexing guidance is to grow bulk requests until throughput plateaus and to stay under a couple
#: of tens of MB per request (memory pressure when several arrive at once; http.max_content_length is 100 MB).
#: So the cap is in bytes, 10 MB, with a document cap high enough that bytes decide for metric documents:
#: ~60 requests for that backfill.
BULK_CHUNK_BYTES = 10 * 1024 * 1024
BULK_CHUNK_DOCS = 10_000


# --- request bodies (pure; type-checked against Elastic's API types in the tests) ---------------

def window_filter(model: str, start: datetime, end: datetime, version: str | None,
                  segment: tuple[str, str] | None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [
        {"term": {"mlmon.model.name": model}},
        {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end), "format": "strict_date_optional_time"}}},
    ]
    if version is not None:
        filters.append({"term": {"mlmon.model.version": version}})
    if segment is not None:
        filters.append({"term": {f"mlmon.segment.{segment[0]}": segment[1]}})
    return {"bool": {"filter": filters}}


def numeric_aggs(i: int, field: str, edges: Sequence[float]) -> dict[str, Any]:
    ranges: list[dict[str, float]] = [{"to": edges[0]}]
    ranges += [{"from": a, "to": b} for a, b in zip(edges[:-1], edges[1:])]
    ranges.append({"from": edges[-1]})
    # A `sum` per range bucket: where inside each bin the values sit (Wasserstein's offset sums). A metric
    # sub-aggregation adds no buckets, so search.max_buckets counts the ranges only.
    return {
        f"n{i}_bins": {"range": {"field": field, "ranges": ranges}, "aggs": {"sum": {"sum": {"field": field}}}},
        f"n{i}_stats": {"extended_stats": {"field": field}},
        f"n{i}_missing": {"missing": {"field": field}},
    }


def categorical_aggs(i: int, field: str, known: Sequence[str], max_unseen: int) -> dict[str, Any]:
    aggs: dict[str, Any] = {
        f"c{i}_missing": {"missing": {"field": field}},
        f"c{i}_unseen": {"terms": {"field": field, "size": max(max_unseen, 1), "exclude": list(known)}},
    }
    if known:
        # include + size = len(known): every shard returns every known category, so counts are exact.
        aggs[f"c{i}_known"] = {"terms": {"field": field, "size": len(known), "include": list(known)}}
    return aggs


def numeric_buckets(edges: Sequence[float]) -> int:
    """Buckets a numeric field's aggregations return per window: its range buckets and the missing bucket
    (the per-bucket ``sum`` and ``extended_stats`` are metrics: no buckets)."""
    return len(edges) + 2


def categorical_buckets(known: Sequence[str], max_unseen: int) -> int:
    """Buckets a categorical field's aggregations can return per window: the known terms, the unseen ones, missing."""
    return len(known) + max(max_unseen, 1) + 1


def window_search_bodies(query: WindowQuery) -> list[tuple[dict[str, Any], list[str], list[str]]]:
    """The search bodies of a window: (body, numeric fields in it, categorical fields in it)."""
    groups: list[tuple[dict[str, Any], list[str], list[str]]] = []
    aggs: dict[str, Any] = {}
    nums: list[str] = []
    cats: list[str] = []
    used = 0

    def flush() -> None:
        nonlocal aggs, nums, cats, used
        groups.append(({"size": 0, "track_total_hits": True,
                        "query": window_filter(query.model, query.start, query.end, query.version, query.segment),
                        "aggs": aggs}, nums, cats))
        aggs, nums, cats, used = {}, [], [], 0

    for i, (f, edges) in enumerate(query.numeric.items()):
        cost = numeric_buckets(edges)
        if nums and used + cost > BUCKET_BUDGET:
            flush()
        aggs.update(numeric_aggs(i, f, edges))
        nums.append(f)
        used += cost
    for i, (f, known) in enumerate(query.categorical.items()):
        cost = categorical_buckets(known, query.max_unseen)
        if (nums or cats) and used + cost > BUCKET_BUDGET:
            flush()
        aggs.update(categorical_aggs(i, f, known, query.max_unseen))
        cats.append(f)
        used += cost
    flush()
    return groups


def window_batch_bodies(query: WindowQuery, batch: WindowBatch) -> list[tuple[dict[str, Any], Slice, list[str],
                                                                              list[str]]]:
    """The searches of a batch of windows (``query``'s own bounds unused): (body, its slice, numeric fields in it,
    categorical fields in it). Each body: one date_histogram over a run of windows, the fields' aggregations
    under it, under BUCKET_BUDGET buckets counted as Elasticsearch does (windows x per-window buckets)."""
    fields: list[tuple[str, int, str]] = [("n", i, f) for i, f in enumerate(query.numeric)]
    fields += [("c", i, f) for i, f in enumerate(query.categorical)]
    costs = [numeric_buckets(query.numeric[f]) if kind == "n" else
             categorical_buckets(query.categorical[f], query.max_unseen) for kind, _, f in fields]
    out: list[tuple[dict[str, Any], Slice, list[str], list[str]]] = []
    for part in plan_slices(batch, costs, BUCKET_BUDGET):
        sub_aggs: dict[str, Any] = {}
        nums: list[str] = []
        cats: list[str] = []
        for kind, i, f in (fields[j] for j in part.fields):
            if kind == "n":
                sub_aggs.update(numeric_aggs(i, f, query.numeric[f]))
                nums.append(f)
            else:
                sub_aggs.update(categorical_aggs(i, f, query.categorical[f], query.max_unseen))
                cats.append(f)
        start, end = slice_bounds(batch, part.windows)
        # track_total_hits off: each window's count is its bucket's doc_count.
        body = {"size": 0, "track_total_hits": False,
                "query": window_filter(query.model, start, end, query.version, query.segment),
                "aggs": {WINDOWS_AGG: histogram_agg(batch, part.windows, sub_aggs)}}
        out.append((body, part, nums, cats))
    return out


def offsets_from_sums(counts: Sequence[int], sums: Sequence[float], edges: Sequence[float]) -> tuple[float, ...]:
    """Per-bin offset sums (values less their bin's left edge; see NumericStats) from raw per-bucket sums.

    Elasticsearch adds the raw values (compensated), so at an offset a the place
    inside a bin is known to about eps * a per value: 2e-10 at 1e6, under 1e-7 of a bin 3e-3 wide.
    """
    anchors = bin_anchors(edges)
    return tuple(float(s - c * a) for s, c, a in zip(sums, counts, anchors))


def parse_window_response(response: Mapping[str, Any], query: WindowQuery, nums: Sequence[str],
                          cats: Sequence[str]) -> WindowStatistics:
    """The statistics in the answer to one window's search (``window_search_bodies``)."""
    return parse_window_aggs(response.get("aggregations") or {}, int(response["hits"]["total"]["value"]), query,
                             nums, cats)


def parse_window_aggs(aggs: Mapping[str, Any], rows: int, query: WindowQuery, nums: Sequence[str],
                      cats: Sequence[str]) -> WindowStatistics:
    """The statistics of one window from its aggregations: a single window's search answer, or one bucket of
    a batch's date_histogram (the same aggregations under it)."""
    numeric: dict[str, NumericStats] = {}
    categorical: dict[str, CategoryStats] = {}
    index_num = {f: i for i, f in enumerate(query.numeric)}
    index_cat = {f: i for i, f in enumerate(query.categorical)}
    for f in nums:
        i = index_num[f]
        edges = query.numeric[f]
        buckets = aggs[f"n{i}_bins"]["buckets"]
        if len(buckets) != len(edges) + 1:
            raise StoreError(f"{f}: expected {len(edges) + 1} range buckets, got {len(buckets)}")
        st = aggs[f"n{i}_stats"]
        bucket_counts = [int(b["doc_count"]) for b in buckets]
        bucket_sums = [float(b["sum"]["value"] or 0.0) for b in buckets]
        numeric[f] = NumericStats(
            edges=edges, counts=tuple(bucket_counts), missing=int(aggs[f"n{i}_missing"]["doc_count"]),
            minimum=st.get("min"), maximum=st.get("max"), total=float(st.get("sum") or 0.0),
            total_sq=float(st.get("sum_of_squares") or 0.0), below_sum=bucket_sums[0], above_sum=bucket_sums[-1],
            offset_sums=offsets_from_sums(bucket_counts, bucket_sums, edges))
    for f in cats:
        i = index_cat[f]
        known = query.categorical[f]
        counts = {k: 0 for k in known}
        if known:
            for b in aggs[f"c{i}_known"]["buckets"]:
                counts[str(b["key"])] = int(b["doc_count"])
        unseen = aggs[f"c{i}_unseen"]
        for b in unseen["buckets"]:
            counts[str(b["key"])] = int(b["doc_count"])
        categorical[f] = CategoryStats(counts=counts, other=int(unseen.get("sum_other_doc_count", 0)),
                                       missing=int(aggs[f"c{i}_missing"]["doc_count"]))
    return WindowStatistics(rows=rows, numeric=numeric, categorical=categorical)


#: index.max_result_window's default: a search whose from + size exceeds it is refused (400), so longer
#: listings are read in pages of at most this many, in a point in time (stores.elasticsearch.paging).
MAX_RESULT_WINDOW = 10_000


def metrics_query(model: str | None, limit: int, start: datetime | None, end: datetime | None, *,
                  version: str | None = None, families: Sequence[str] = (), features: Sequence[str] = (),
                  statuses: Sequence[str] = (), search_after: Sequence[Any] | None = None) -> dict[str, Any]:
    """One page of the metric listing: every filter in the query (so ``size`` counts matches only),
    sorted to a unique key (``metric.id`` last): the same order whatever the paging."""
    filters: list[dict[str, Any]] = []
    for field, value in (("mlmon.model.name", model), ("mlmon.model.version", version)):
        if value is not None:
            filters.append({"term": {field: value}})
    for field, values in (("metric.family", families), ("metric.feature", features), ("metric.status", statuses)):
        if values:
            filters.append({"terms": {field: list(values)}})
    if start is not None:
        filters.append({"range": {"window.end": {"gt": iso(start)}}})
    if end is not None:
        filters.append({"range": {"window.start": {"lt": iso(end)}}})
    body: dict[str, Any] = {
        "size": min(limit, MAX_RESULT_WINDOW), "track_total_hits": True, "query": {"bool": {"filter": filters}},
        "sort": [{"window.end": {"order": "desc"}}, {"metric.feature": {"order": "asc"}},
                 {"metric.name": {"order": "asc"}}, {"metric.id": {"order": "asc"}}]}
    if search_after is not None:
        body["search_after"] = list(search_after)
    return body


def quantiles_body(model: str, start: datetime, end: datetime, fields: Sequence[str], levels: Sequence[float],
                   version: str | None) -> dict[str, Any]:
    percents = [min(max(q * 100.0, 0.0), 100.0) for q in levels]
    return {"size": 0, "query": window_filter(model, start, end, version, None),
            "aggs": {f"q{i}": {"percentiles": {"field": f, "percents": percents, "keyed": False}}
                     for i, f in enumerate(fields)}}


#: Versions or models listed per question; more than this many would be a logging mistake, and is warned about.
MAX_TERMS = 1000


def inventory_filter(model: str | None, version: str | None = None, start: datetime | None = None,
                     end: datetime | None = None) -> dict[str, Any]:
    """A model's (and version's) events, optionally within ``[start, end)``; all events when model is None."""
    filters: list[dict[str, Any]] = []
    if model is not None:
        filters.append({"term": {"mlmon.model.name": model}})
    if version is not None:
        filters.append({"term": {"mlmon.model.version": version}})
    if start is not None or end is not None:
        bounds: dict[str, Any] = {"format": "strict_date_optional_time"}
        if start is not None:
            bounds["gte"] = iso(start)
        if end is not None:
            bounds["lt"] = iso(end)
        filters.append({"range": {"@timestamp": bounds}})
    return {"bool": {"filter": filters}}


def terms_body(field: str, query: dict[str, Any]) -> dict[str, Any]:
    """The distinct values of a keyword field over the matching events (one terms aggregation)."""
    return {"size": 0, "query": query, "aggs": {"values": {"terms": {"field": field, "size": MAX_TERMS}}}}


def data_range_body(model: str, version: str | None) -> dict[str, Any]:
    return {"size": 0, "query": inventory_filter(model, version),
            "aggs": {"first": {"min": {"field": "@timestamp"}}, "last": {"max": {"field": "@timestamp"}}}}


def parse_terms(response: Mapping[str, Any], what: str) -> list[str]:
    agg = (response.get("aggregations") or {}).get("values") or {}
    if agg.get("sum_other_doc_count"):
        log.warning("more than %d %s: listing the %d most frequent", MAX_TERMS, what, MAX_TERMS)
    return sorted(str(b["key"]) for b in agg.get("buckets", []))


def parse_data_range(response: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    aggs = response.get("aggregations") or {}
    first, last = (aggs.get(k, {}).get("value") for k in ("first", "last"))
    if first is None or last is None:
        return None  # min/max of no documents are null
    return (datetime.fromtimestamp(float(first) / 1000, timezone.utc),
            datetime.fromtimestamp(float(last) / 1000, timezone.utc))


# --- the store ------------------------------------------------------------------------------------

class ElasticsearchStore:
    def __init__(self, client: Elasticsearch, predictions: str = PREDICTIONS_PATTERN) -> None:
        self.es = client
        self.predictions = predictions

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ApiError, TransportError) as err:
            raise StoreError(f"Elasticsearch {what} failed after retries: {err}") from err

    def window_statistics(self, query: WindowQuery) -> WindowStatistics:
        result: WindowStatistics | None = None
        for body, nums, cats in window_search_bodies(query):
            resp = self._call("window search", self.es.search, index=self.predictions,
                              ignore_unavailable=True, allow_no_indices=True, **body)
            part = parse_window_response(resp.body, query, nums, cats)
            result = part if result is None else WindowStatistics(
                rows=part.rows, numeric={**result.numeric, **part.numeric},
                categorical={**result.categorical, **part.categorical})
        assert result is not None
        return result

    def window_statistics_batch(self, query: WindowQuery, batch: WindowBatch) -> list[WindowStatistics]:
        """``window_statistics`` of every window of ``batch``, from date_histogram searches over runs of windows
        (``window_batch_bodies``); a batch of one window, or of windows not in whole milliseconds, is asked
        window by window (one window needs no histogram)."""
        if len(batch) == 1 or interval_ms(batch) is None:
            return [self.window_statistics(replace(query, start=s, end=e)) for s, e in batch.windows]
        parts: list[list[WindowStatistics]] = [[] for _ in batch.windows]
        for body, part, nums, cats in window_batch_bodies(query, batch):
            resp = self._call("window batch search", self.es.search, index=self.predictions,
                              ignore_unavailable=True, allow_no_indices=True, **body)
            for position, bucket in zip(part.windows, window_buckets(resp.body, batch, part.windows)):
                parts[position].append(parse_window_aggs(bucket, int(bucket["doc_count"]), query, nums, cats))
        return [WindowStatistics(rows=found[0].rows,
                                 numeric={f: s for p in found for f, s in p.numeric.items()},
                                 categorical={f: s for p in found for f, s in p.categorical.items()})
                for found in parts]

    def quantiles(self, model: str, start: datetime, end: datetime, fields: Sequence[str],
                  levels: Sequence[float], version: str | None = None) -> dict[str, list[float]]:
        body = quantiles_body(model, start, end, fields, levels, version)
        resp = self._call("quantiles search", self.es.search, index=self.predictions, **body).body
        out: dict[str, list[float]] = {}
        for i, f in enumerate(fields):
            vals = [v["value"] for v in resp["aggregations"][f"q{i}"]["values"] if v["value"] is not None]
            if vals:
                out[f] = [float(v) for v in vals]
        return out

    def fields(self, model: str, version: str | None = None) -> list[str]:
        resp = self._call("field caps", self.es.field_caps, index=self.predictions,
                          fields=["mlmon.features.*", "mlmon.prediction.score", "mlmon.prediction.value",
                                  "mlmon.prediction.label"], ignore_unavailable=True, allow_no_indices=True)
        return sorted(f for f in resp.body.get("fields", {}) if f.count(".") >= 2)

    def versions(self, model: str, start: datetime | None = None, end: datetime | None = None) -> list[str]:
        return parse_terms(self._inventory(terms_body("mlmon.model.version", inventory_filter(model, None, start,
                                                                                             end))), "versions")

    def data_range(self, model: str, version: str | None = None) -> tuple[datetime, datetime] | None:
        return parse_data_range(self._inventory(data_range_body(model, version)))

    def models(self) -> list[str]:
        return parse_terms(self._inventory(terms_body("mlmon.model.name", inventory_filter(None))), "models")

    def _inventory(self, body: dict[str, Any]) -> Mapping[str, Any]:
        resp = self._call("inventory search", self.es.search, index=self.predictions, ignore_unavailable=True,
                          allow_no_indices=True, **body)
        body_out: Mapping[str, Any] = resp.body
        return body_out

    def write_metrics(self, docs: Sequence[MetricDocument]) -> None:
        self._bulk(METRICS_INDEX, [(d.id, d.to_source()) for d in docs])

    def _bulk(self, index: str, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Index by ``_id`` (upserts); failed items are retried with backoff, then a StoreError names them."""
        pending = list(items)
        errors: list[Any] = []
        for attempt in range(BULK_ATTEMPTS):
            if not pending:
                return
            if attempt:
                time.sleep(BULK_BACKOFF_S * 2 ** (attempt - 1))
            actions = [{"_op_type": "index", "_index": index, "_id": i, "_source": s} for i, s in pending]
            by_id = dict(pending)
            errors = []
            try:
                for ok, item in helpers.streaming_bulk(self.es, actions, chunk_size=BULK_CHUNK_DOCS,
                                                       max_chunk_bytes=BULK_CHUNK_BYTES, raise_on_error=False,
                                                       raise_on_exception=False, max_retries=2):
                    if not ok:
                        errors.append(item)
            except (ApiError, TransportError) as err:
                errors = [{"index": {"_id": i, "error": str(err)}} for i, _ in pending]
            failed_ids = [e.get("index", {}).get("_id") for e in errors]
            pending = [(i, by_id[i]) for i in failed_ids if i in by_id]
            if errors and len(pending) < len(errors):  # an error without an id: retry everything
                pending = list(items)
            if pending:
                log.warning("bulk to %s: %d of %d documents failed (attempt %d of %d)", index, len(pending),
                            len(items), attempt + 1, BULK_ATTEMPTS)
        if pending:
            first = errors[0].get("index", {}).get("error") if errors else "unknown"
            raise StoreError(f"{len(pending)} of {len(items)} documents could not be written to {index} after "
                             f"{BULK_ATTEMPTS} attempts; first error: {first}")

    def read_metrics(self, model: str | None = None, limit: int = 1000,
                     start: datetime | None = None, end: datetime | None = None, *,
                     version: str | None = None, families: Sequence[str] = (), features: Sequence[str] = (),
                     statuses: Sequence[str] = ()) -> MetricPage:
        """Up to ``limit`` documents in pages of at most MAX_RESULT_WINDOW, all in one point in time."""
        docs: list[dict[str, Any]] = []
        total = 0
        body = metrics_query(model, limit, start, end, version=version, families=families, features=features,
                             statuses=statuses)
        for n, page in enumerate(pit_pages(self.es, METRICS_INDEX, body, what="metrics search", max_hits=limit)):
            if n == 0:
                total = int(page["hits"]["total"]["value"])
            docs += [h["_source"] for h in page["hits"]["hits"]]
        return MetricPage(docs, total=max(total, len(docs)))

    def put_reference(self, profile: ReferenceProfile) -> str:
        self._bulk(REFERENCES_INDEX, [(profile.id, profile.to_document())])
        return profile.id

    def get_reference(self, model: str, version: str | None = None,
                      reference_id: str | None = None) -> ReferenceProfile | None:
        resp = self._call("reference search", self.es.search, index=REFERENCES_INDEX, ignore_unavailable=True,
                          **latest_reference_query(model, version, reference_id))
        hits = resp.body["hits"]["hits"]
        return ReferenceProfile.from_document(hits[0]["_source"]) if hits else None

    def list_references(self, model: str | None = None) -> list[dict[str, Any]]:
        filters = [{"term": {"mlmon.model.name": model}}] if model else []
        resp = self._call("reference search", self.es.search, index=REFERENCES_INDEX, ignore_unavailable=True,
                          size=1000, query={"bool": {"filter": filters}}, source_excludes=["profile"],
                          sort=[{"reference.created_at": {"order": "desc"}}])
        out = []
        for h in resp.body["hits"]["hits"]:
            s = h["_source"]
            out.append({"id": s["reference"]["id"], "model": s["mlmon"]["model"]["name"],
                        "version": s["mlmon"]["model"]["version"], "created_at": s["reference"]["created_at"],
                        "source": s["reference"].get("source", ""), "rows": s["reference"].get("rows")})
        return out

    def get_checkpoint(self, key: str) -> datetime | None:
        try:
            resp = self.es.get(index=CHECKPOINTS_INDEX, id=key)
        except ApiError as err:
            if err.meta.status == 404:
                return None
            raise StoreError(f"reading checkpoint {key} failed: {err}") from err
        except TransportError as err:
            raise StoreError(f"reading checkpoint {key} failed: {err}") from err
        return datetime.fromisoformat(resp.body["_source"]["window"]["end"].replace("Z", "+00:00"))

    def set_checkpoint(self, key: str, window_end: datetime) -> None:
        self._call("checkpoint write", self.es.index, index=CHECKPOINTS_INDEX, id=key, refresh="wait_for",
                   document={"checkpoint": {"key": key}, "window": {"end": iso(window_end)},
                             "@timestamp": iso(datetime.now(timezone.utc))})

    def record_job_runs(self, runs: Sequence[JobRun]) -> None:
        job_runs.record_job_runs(self.es, runs)

    def job_health(self) -> list[JobHealth]:
        return job_runs.job_health(self.es)

    # The other jobs' queries through this client, imported on first use (each pulls in its job's code).
    def labels(self) -> LabelledStore:
        from mlmon.stores.elasticsearch.labels import ElasticsearchLabels

        return ElasticsearchLabels(self.es)

    def explain_queries(self) -> ExplainBackend:
        from mlmon.stores.elasticsearch.explain import ElasticsearchExplainStore

        return ElasticsearchExplainStore(self.es)

    def alert_store(self) -> AlertStore:
        from mlmon.stores.elasticsearch.alerts import ElasticsearchAlertStore

        return ElasticsearchAlertStore(self.es)

    def close(self) -> None:
        self.es.close()
