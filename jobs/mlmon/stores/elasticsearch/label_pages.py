"""The label join's reads: the window's predictions page by page in a point in time, and per page the
latest feedback of its ids in one collapsed search.

Predictions. One point in time (PIT) over the prediction streams, sorted by ``_shard_doc`` only
(index order: nothing to sort, and Elasticsearch's cheapest way to read every match), paged with
``search_after`` (:func:`mlmon.stores.elasticsearch.paging.pit_pages`). Every prediction is read once:
two predictions sharing an id are both read, wherever a page ends, because ``_shard_doc`` is unique
per document inside the PIT; a page never re-sorts the window.

Feedback. Per page ONE search on the feedback streams: a ``terms`` query on the page's distinct ids
(at most ``MAX_PAGE_SIZE``, far below ``index.max_terms_count``, 65,536), ``collapse`` on
``mlmon.prediction.id`` with the sort ``@timestamp`` then ``event.id``, both descending: one hit per
labelled prediction, its latest feedback, ties broken by the greatest event id exactly as the DuckDB
store's ``arg_max`` over ``(time, event id)`` does. Elasticsearch keeps the top sorted document of
each collapse key by the whole sort, not its first field. The same request counts repeated feedback
with a ``terms`` aggregation restricted to ``min_doc_count: 2``: its buckets are the ids with
duplicates only. So the response carries one small hit per labelled prediction and one bucket per
prediction with duplicate feedback; an unlabelled prediction costs nothing but its id in the request.
No ``top_hits`` (a fetch per bucket) and no bucket per prediction.

The feedback search runs outside a point in time: it is one request per page over that page's ids,
so there is nothing for a snapshot to keep consistent across requests, and the latest hit and the
duplicate counts come from the same request.

Memory: the caller gets one page at a time (``page_size`` predictions and at most as many feedback
hits) and is expected to fold it into additive statistics before asking for the next.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from mlmon.core.documents import iso
from mlmon.core.labels import LabelQuery
from mlmon.stores.elasticsearch.paging import pit_pages
from mlmon.stores.protocols import StoreError
from mlmon_logging.contract import data_stream

PREDICTIONS = data_stream("prediction", "*")
FEEDBACK = data_stream("feedback", "*")
ID = "mlmon.prediction.id"
#: What a feedback lookup needs of its response (``filter_path``): per hit its ``_source``, per bucket its key
#: and count; not the index name, id, score and sort values that would double its size.
LOOKUP_FILTER_PATH = "hits.hits._source,aggregations.repeated.buckets.key,aggregations.repeated.buckets.doc_count"
#: The largest page: a page's collapsed feedback search returns up to one hit per id, and
#: ``from + size`` may not pass index.max_result_window (10,000).
MAX_PAGE_SIZE = 10_000


def actual_field(task: str) -> str:
    return "mlmon.feedback.actual" if task == "classification" else "mlmon.feedback.actual_value"


# --- request bodies (pure; type-checked against Elastic's API types in the tests) ----------------

def prediction_page_body(query: LabelQuery, size: int) -> dict[str, Any]:
    """One page of the window's predictions, in a PIT (``pit_pages`` adds ``pit`` and ``search_after``)."""
    filters: list[dict[str, Any]] = [
        {"term": {"mlmon.model.name": query.model}},
        {"range": {"@timestamp": {"gte": iso(query.start), "lt": iso(query.end), "format": "strict_date_optional_time"}}},
    ]
    if query.version is not None:
        filters.append({"term": {"mlmon.model.version": query.version}})
    if query.segment is not None:
        seg = f"mlmon.segment.{query.segment}"
        filters.append({"terms": {seg: list(query.segment_values)}} if query.segment_values is not None
                       else {"exists": {"field": seg}})
    fields = [ID, "@timestamp", "mlmon.sample_rate"]
    if query.task == "classification":
        fields += ["mlmon.prediction.label"] + ([f"mlmon.prediction.scores.{c}" for c in query.classes]
                                                if query.multiclass else ["mlmon.prediction.score"])
    else:
        fields.append("mlmon.prediction.value")
    if query.segment is not None:
        fields.append(f"mlmon.segment.{query.segment}")
    return {"size": size, "query": {"bool": {"filter": filters}}, "_source": fields,
            "sort": [{"_shard_doc": {"order": "asc"}}], "track_total_hits": False}


def latest_feedback_body(model: str, ids: Sequence[str], task: str) -> dict[str, Any]:
    """The latest feedback of each of ``ids`` (distinct) that has any, and the ids with more than one."""
    actual = actual_field(task)
    n = max(len(ids), 1)
    return {
        "size": len(ids),
        "query": {"bool": {"filter": [{"term": {"mlmon.model.name": model}}, {"terms": {ID: list(ids)}},
                                      {"exists": {"field": actual}}]}},
        "collapse": {"field": ID},
        "sort": [{"@timestamp": {"order": "desc"}}, {"event.id": {"order": "desc"}}],
        "_source": {"includes": [ID, actual, "@timestamp"]},
        "track_total_hits": False,
        # shard_size = every id a shard can hold for this page, so each count is exact across backing indices.
        "aggs": {"repeated": {"terms": {"field": ID, "min_doc_count": 2, "size": n, "shard_size": n}}},
    }


# --- reading ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatestFeedback:
    """A prediction's latest feedback (flattened ``_source``) and how many feedback events it has."""

    source: dict[str, Any]
    count: int


def flat_source(source: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested or dotted ``_source`` -> dotted keys (events may be stored either way)."""
    out: dict[str, Any] = {}
    for k, v in source.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flat_source(v, f"{key}."))
        else:
            out[key] = v
    return out


def latest_feedback(response: Mapping[str, Any]) -> dict[str, LatestFeedback]:
    """Prediction id -> its latest feedback, from a :func:`latest_feedback_body` response (filtered by
    ``LOOKUP_FILTER_PATH``: Elasticsearch leaves out what is empty, down to ``{}``)."""
    buckets = response.get("aggregations", {}).get("repeated", {}).get("buckets", [])
    repeated = {str(b["key"]): int(b["doc_count"]) for b in buckets}
    out: dict[str, LatestFeedback] = {}
    for hit in response.get("hits", {}).get("hits", []):
        source = flat_source(hit["_source"])
        pid = str(source[ID])
        out[pid] = LatestFeedback(source, repeated.get(pid, 1))
    return out


@dataclass
class JoinedPage:
    """One page of predictions (flattened ``_source``) and the latest feedback of those that have any."""

    predictions: list[dict[str, Any]]
    feedback: dict[str, LatestFeedback]


def joined_pages(es: Elasticsearch, query: LabelQuery, page_size: int) -> Iterator[JoinedPage]:
    """The window's predictions with their latest feedback, one page at a time (two requests a page)."""
    if not 0 < page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be in 1..{MAX_PAGE_SIZE}, got {page_size}")
    for response in pit_pages(es, PREDICTIONS, prediction_page_body(query, page_size), what="prediction page"):
        predictions = [flat_source(h["_source"]) for h in response["hits"]["hits"]]
        if not predictions:
            continue
        ids = list(dict.fromkeys(str(p[ID]) for p in predictions))  # distinct, in page order
        try:
            found = es.search(index=FEEDBACK, ignore_unavailable=True, allow_no_indices=True,
                              filter_path=LOOKUP_FILTER_PATH, **latest_feedback_body(query.model, ids, query.task)).body
        except (ApiError, TransportError) as err:
            raise StoreError(f"Elasticsearch latest feedback failed after retries: {err}") from err
        yield JoinedPage(predictions, latest_feedback(found))
