"""Many windows in one search: a ``date_histogram`` over the windows, the per-window aggregations under it.

A :class:`~mlmon.core.queries.WindowBatch` (aligned windows of one size, gaps
allowed) is answered by searches whose one top-level aggregation is a
``date_histogram`` with ``fixed_interval`` = the window size, so each bucket is
one window and its sub-aggregations are exactly the aggregations a search of
that window alone would send. Elasticsearch 9.x semantics this relies on
(``InternalDateHistogram``, ``LongBounds``, ``DateHistogramAggregationBuilder``):

- a fixed interval rounds ``floor((t - offset) / interval) * interval + offset``
  in UTC (no ``time_zone``: the default is UTC, and a zone would shift nothing
  for fixed intervals but add a per-document conversion); bucket keys are epoch
  milliseconds. mlmon's windows are epoch-aligned (``core.windows``), so the
  offset is 0 and is sent only for a batch that is not (``+<ms>ms``, in ``[0, interval)``);
- ``min_doc_count: 0`` with ``extended_bounds`` {first window start, last window
  start} returns every window of the run, empty ones with ``doc_count`` 0 and
  the sub-aggregations' empty answers (extended bounds are rounded without the
  offset, then the offset is added back: a window start rounds to itself);
- ``hard_bounds`` {run start, run end} keeps keys in ``[min, max)`` (``LongBounds.contain``),
  and must contain the extended bounds (else 400 "Extended bounds have to be inside hard bounds").

Gaps: a search covers one run of consecutive windows (its range filter and
bounds are the run's), so a window not asked for is neither computed nor returned.

``search.max_buckets`` (65,536) counts every bucket of the answer: a window's
buckets are its histogram bucket plus its sub-aggregations' buckets, so a
search's count is windows x (1 + per-window buckets). :func:`plan_slices` splits
the batch into runs of windows and groups of fields so that no search exceeds
the budget, choosing the split with the fewest searches (ties: fewer field
groups, i.e. fewer passes over the same documents).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlmon.core.queries import WindowBatch
from mlmon.core.windows import EPOCH
from mlmon.stores.protocols import StoreError

#: The name of the top-level date_histogram in a batch search.
WINDOWS_AGG = "windows"
_MS = timedelta(milliseconds=1)


def epoch_ms(t: datetime) -> int:
    return (t - EPOCH) // _MS


def interval_ms(batch: WindowBatch) -> int | None:
    """The window size in whole milliseconds (a ``date`` field's resolution), or None when a window bound
    falls between milliseconds: such a batch cannot be bucketed by Elasticsearch and is asked window by window."""
    size, start = batch.size, batch.start - EPOCH
    if size % _MS or start % _MS:
        return None
    return size // _MS


@dataclass(frozen=True)
class Slice:
    """One search of a batch: consecutive windows (positions in ``batch.windows``) x a group of fields
    (positions in the caller's field list)."""

    windows: tuple[int, ...]
    fields: tuple[int, ...]


def contiguous_runs(batch: WindowBatch) -> list[list[int]]:
    """Positions of the batch's windows grouped in runs of consecutive slots (a gap starts a new run)."""
    runs: list[list[int]] = []
    previous: int | None = None
    for position, slot in enumerate(batch.slots):
        if previous is None or slot != previous + 1:
            runs.append([])
        runs[-1].append(position)
        previous = slot
    return runs


def _groups(costs: Sequence[int], cap: int) -> list[list[int]]:
    """Fields in order, a new group when the next would push the group's per-window buckets over ``cap``
    (a field above ``cap`` on its own still gets a group: the server then says why it refuses)."""
    groups: list[list[int]] = []
    used = 0
    for i, cost in enumerate(costs):
        if not groups or used + cost > cap:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += cost
    return groups


def plan_slices(batch: WindowBatch, costs: Sequence[int], budget: int) -> list[Slice]:
    """The searches of a batch: every (window, field) pair in exactly one, each under ``budget`` buckets.

    ``costs``: buckets per window of each field's sub-aggregations. Tried: every number of windows per
    search from 1 to the longest run; for each, fields are grouped under what that leaves per window.
    """
    runs = contiguous_runs(batch)
    if not costs:
        return [Slice(tuple(run), ()) for run in runs]
    best: tuple[int, int, list[list[int]], int] | None = None  # (searches, groups, groups, windows per search)
    for per_search in range(1, max(len(r) for r in runs) + 1):
        cap = budget // per_search - 1  # the histogram bucket itself counts too
        if cap < 1:
            break
        groups = _groups(costs, cap)
        widest = max(sum(costs[i] for i in g) for g in groups)
        fits = max(budget // (widest + 1), 1)  # the group may allow more windows than asked
        searches = len(groups) * sum(-(-len(r) // fits) for r in runs)
        if best is None or (searches, len(groups)) < (best[0], best[1]):
            best = (searches, len(groups), groups, fits)
    assert best is not None
    _, _, groups, fits = best
    return [Slice(tuple(run[i:i + fits]), tuple(group))
            for group in groups for run in runs for i in range(0, len(run), fits)]


def slice_bounds(batch: WindowBatch, windows: Sequence[int]) -> tuple[datetime, datetime]:
    """``[start, end)`` of a run of consecutive windows."""
    return batch.windows[windows[0]][0], batch.windows[windows[-1]][1]


def histogram_agg(batch: WindowBatch, windows: Sequence[int], sub_aggs: Mapping[str, Any]) -> dict[str, Any]:
    """The date_histogram whose buckets are the run's windows, each with ``sub_aggs``."""
    interval = interval_ms(batch)
    if interval is None:
        raise ValueError(f"windows of {batch.size} starting {batch.start} are not whole milliseconds")
    start, end = slice_bounds(batch, windows)
    first, last = epoch_ms(start), epoch_ms(batch.windows[windows[-1]][0])
    spec: dict[str, Any] = {
        "field": "@timestamp", "fixed_interval": f"{interval}ms", "min_doc_count": 0,
        "extended_bounds": {"min": first, "max": last},
        "hard_bounds": {"min": first, "max": epoch_ms(end)},
    }
    offset = first % interval
    if offset:
        spec["offset"] = f"+{offset}ms"
    return {"date_histogram": spec, "aggs": dict(sub_aggs)}


def window_buckets(response: Mapping[str, Any], batch: WindowBatch,
                   windows: Sequence[int]) -> list[Mapping[str, Any]]:
    """The histogram bucket of each window of the run, in order (a missing one is a bad answer)."""
    aggs = response.get("aggregations") or {}
    try:
        by_key = {int(b["key"]): b for b in aggs[WINDOWS_AGG]["buckets"]}
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(f"batch search answer lacks the {WINDOWS_AGG!r} date_histogram ({err})") from err
    out = []
    for position in windows:
        start = batch.windows[position][0]
        bucket = by_key.get(epoch_ms(start))
        if bucket is None:
            raise StoreError(f"batch search answer has no bucket for the window starting {start.isoformat()}")
        out.append(bucket)
    return out
