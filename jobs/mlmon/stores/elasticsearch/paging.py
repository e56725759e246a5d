"""Reading every hit of a search, page by page, in a point in time.

A cluster refuses ``from + size`` above ``index.max_result_window`` (10,000), so long
listings are read with ``search_after``. Without a point in time (PIT) each page
searches the indices as they are at that moment: a refresh between two pages moves
documents across the page boundary (one skipped, one read twice), and each page sorts
the whole match set again. In a PIT every page sees the same snapshot, and Elasticsearch
adds its ``_shard_doc`` tiebreaker to the sort, so ``search_after`` on the last hit's
``sort`` values neither skips nor repeats (Elastic's "Paginate search results" guide).

::

    for page in pit_pages(es, "mlmon-metrics", {"size": 1000, "query": ..., "sort": [...]}, what="metrics"):
        hits = page["hits"]["hits"]      # every response body, the first one even when it has no hits
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from mlmon.stores.protocols import StoreError

#: How long the PIT lives between two pages (renewed by every page); short, so an abandoned
#: reader does not pin old segments for long.
KEEP_ALIVE = "2m"


def pit_pages(es: Elasticsearch, index: str | list[str], body: Mapping[str, Any], *, what: str,
              keep_alive: str = KEEP_ALIVE, max_hits: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield the response bodies of ``body`` (which must sort) page by page (``body["size"]`` hits each)
    until exhausted or ``max_hits`` read; the PIT is closed however the iteration ends."""
    if not body.get("sort"):
        raise ValueError("search_after paging needs a sort")
    try:
        pit_id = es.open_point_in_time(index=index, keep_alive=keep_alive, ignore_unavailable=True).body["id"]
    except NotFoundError:
        return  # nothing to read: the index does not exist (yet)
    except (ApiError, TransportError) as err:
        raise StoreError(f"Elasticsearch {what}: opening a point in time failed: {err}") from err
    read = 0
    after: list[Any] | None = None
    try:
        while True:
            size = int(body["size"]) if max_hits is None else min(int(body["size"]), max_hits - read)
            if size <= 0:
                return
            page: dict[str, Any] = {**body, "size": size, "pit": {"id": pit_id, "keep_alive": keep_alive}}
            if after is not None:
                page["search_after"] = after
            try:
                resp = es.search(**page).body
            except (ApiError, TransportError) as err:
                raise StoreError(f"Elasticsearch {what} failed after retries: {err}") from err
            pit_id = resp.get("pit_id", pit_id)  # the id may change from one response to the next
            hits: list[dict[str, Any]] = resp["hits"]["hits"]
            if hits or after is None:
                yield dict(resp)
            read += len(hits)
            if len(hits) < size:
                return
            after = hits[-1]["sort"]
    finally:
        try:
            es.close_point_in_time(id=pit_id)
        except (ApiError, TransportError):
            pass  # it expires by itself after keep_alive
