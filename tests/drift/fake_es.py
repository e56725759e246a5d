"""An in-memory Elasticsearch for the drift store tests, behind tests.support.fake_http.FakeServer.

It evaluates the aggregations the jobs send (range, extended_stats, missing,
terms with include/exclude, sum sub-aggregations, and a ``date_histogram``
parent over them) over numpy columns, and answers in the shapes Elastic
documents for the search, bulk, get and index APIs. Filters: with
``timestamps`` (epoch ms per row), the ``range`` on ``@timestamp`` is evaluated,
and a ``term`` on a keyword column; other clauses (model, version) are not: every
stored row is the model's. Without ``timestamps`` every row is in the window.

The ``date_histogram`` follows Elasticsearch 9.x (``InternalDateHistogram``,
``LongBounds``): ``fixed_interval``/``offset`` in ms units, keys
``floor((t - offset) / interval) * interval + offset``; ``hard_bounds`` keep keys
in ``[min, max)`` and ``extended_bounds`` add keys from min to max inclusive, both
rounded without the offset then shifted by it; extended bounds outside hard
bounds are refused; ``min_doc_count`` (default 0) fills empty buckets between.

Every search first passes the limits a 9.4 cluster enforces
(``tests.support.fake_elastic.search_refusal``: result window, buckets, terms,
top_hits, search_after); buckets are then counted again with a date_histogram
multiplying its sub-aggregations' by its own number of buckets, as the server's
reduce does (``bucket_count`` does not know a histogram's bucket count without the data).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from tests.support.fake_elastic import MAX_BUCKETS, bucket_count, search_refusal
from tests.support.fake_http import Reply, Request, es_error, es_reply


@dataclass
class FakeElasticsearch:
    numeric: dict[str, np.ndarray] = field(default_factory=dict)      # field -> values (NaN = missing)
    keyword: dict[str, np.ndarray] = field(default_factory=dict)      # field -> object array (None = missing)
    rows: int = 0
    #: @timestamp of each row in epoch milliseconds; None: every row is in every window asked.
    timestamps: np.ndarray | None = None
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)     # "index/id" -> source
    #: Hook to inject faults: return a Reply to answer instead, or None to proceed.
    fault: Callable[[Request], Reply | None] = lambda req: None

    def __call__(self, req: Request) -> Reply:
        injected = self.fault(req)
        if injected is not None:
            return injected
        if req.path.endswith("/_search"):
            return self._search(req)
        if req.path.endswith("/_bulk"):
            return self._bulk(req)
        if "/_doc/" in req.path:
            index, _, doc_id = req.path.strip("/").partition("/_doc/")
            if req.method == "GET":
                src = self.docs.get(f"{index}/{doc_id}")
                if src is None:
                    return es_reply({"_index": index, "_id": doc_id, "found": False}, 404)
                return es_reply({"_index": index, "_id": doc_id, "found": True, "_source": src})
            self.docs[f"{index}/{doc_id}"] = req.json
            return es_reply({"_index": index, "_id": doc_id, "result": "created", "_version": 1})
        return es_error(404, "no_route", f"{req.method} {req.path}")

    # --- search -----------------------------------------------------------------------------------
    def _search(self, req: Request) -> Reply:
        body = req.json or {}
        refused = search_refusal(body)
        if refused is not None:
            return refused
        index = req.path.strip("/").split("/")[0]
        if index.startswith("mlmon-"):
            hits = [{"_index": index, "_id": k.split("/", 1)[1], "_source": v}
                    for k, v in self.docs.items() if k.startswith(index + "/")]
            return es_reply({"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits), "relation": "eq"},
                                                                      "hits": hits[: body.get("size", 10)]}})
        mask = self._matching(body.get("query", {}))
        top = body.get("aggs", {})
        try:
            buckets = sum(self._histogram_keys(spec["date_histogram"], mask).size * (1 + bucket_count(spec.get("aggs", {})))
                          if "date_histogram" in spec else bucket_count({name: spec}) for name, spec in top.items())
        except ValueError as err:
            return es_error(400, "illegal_argument_exception", str(err))
        if buckets > MAX_BUCKETS:
            return es_error(400, "too_many_buckets_exception",
                            f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}] but "
                            f"this number of buckets was exceeded. This limit can be set by changing the "
                            f"[search.max_buckets] cluster level setting.")
        aggs = {name: self._agg(spec, mask) for name, spec in top.items()}
        return es_reply({"took": 3, "timed_out": False,
                         "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                         "hits": {"total": {"value": int(mask.sum()), "relation": "eq"}, "max_score": None,
                                  "hits": []},
                         "aggregations": aggs})

    def _matching(self, query: Mapping[str, Any]) -> np.ndarray:
        """Rows the query selects: the @timestamp range (with timestamps) and terms on keyword columns."""
        mask = np.ones(self.rows, dtype=bool)
        for clause in query.get("bool", {}).get("filter", []):
            (kind, spec), = clause.items()
            (name, arg), = spec.items()
            ts = self.timestamps
            if kind == "range" and name == "@timestamp" and ts is not None:
                if "gte" in arg:
                    mask = mask & (ts >= _epoch_ms(arg["gte"]))
                if "lt" in arg:
                    mask = mask & (ts < _epoch_ms(arg["lt"]))
            elif kind == "term" and name in self.keyword:
                mask = mask & (self.keyword[name] == arg)
        return mask

    def _histogram_keys(self, spec: Mapping[str, Any], mask: np.ndarray) -> np.ndarray:
        """The bucket keys a date_histogram answers over the rows of ``mask`` (sorted epoch ms)."""
        if self.timestamps is None:
            raise AssertionError("a date_histogram needs the fake's timestamps")
        interval = _ms(spec["fixed_interval"])
        offset = _ms(spec.get("offset", "0ms"))
        if not 0 <= offset < interval:
            raise ValueError(f"offset [{spec['offset']}] must be in [0, {interval})")
        hard, ext = spec.get("hard_bounds"), spec.get("extended_bounds")
        rounded = {k: {b: (v // interval) * interval for b, v in bounds.items()}
                   for k, bounds in (("hard", hard), ("ext", ext)) if bounds is not None}
        if hard is not None and ext is not None and (rounded["ext"]["max"] > rounded["hard"]["max"]
                                                     or rounded["ext"]["min"] < rounded["hard"]["min"]):
            raise ValueError(f"Extended bounds have to be inside hard bounds, hard bounds: "
                             f"[{hard['min']}--{hard['max']}], extended bounds: [{ext['min']}--{ext['max']}]")
        keys = (self.timestamps[mask] - offset) // interval * interval + offset
        if "hard" in rounded:
            keys = keys[(keys >= rounded["hard"]["min"]) & (keys < rounded["hard"]["max"])]
        present = np.unique(keys)
        if int(spec.get("min_doc_count", 0)) > 0:
            counts = {int(k): int(c) for k, c in zip(*np.unique(keys, return_counts=True))}
            return np.array([k for k in present if counts[int(k)] >= int(spec["min_doc_count"])], dtype=np.int64)
        lo = [int(present[0])] if present.size else []
        hi = [int(present[-1])] if present.size else []
        if "ext" in rounded:
            lo.append(rounded["ext"]["min"] + offset)
            hi.append(rounded["ext"]["max"] + offset)
        if not lo:
            return np.array([], dtype=np.int64)
        return np.arange(min(lo), max(hi) + 1, interval, dtype=np.int64)

    def _agg(self, spec: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
        if "date_histogram" in spec:
            dh = spec["date_histogram"]
            interval, offset = _ms(dh["fixed_interval"]), _ms(dh.get("offset", "0ms"))
            assert self.timestamps is not None
            row_keys = (self.timestamps - offset) // interval * interval + offset
            buckets = []
            for key in self._histogram_keys(dh, mask).tolist():
                in_bucket = mask & (row_keys == key)
                bucket: dict[str, Any] = {"key_as_string": _iso_ms(key), "key": key, "doc_count": int(in_bucket.sum())}
                bucket.update({name: self._agg(sub, in_bucket) for name, sub in spec.get("aggs", {}).items()})
                buckets.append(bucket)
            return {"buckets": buckets}
        if "range" in spec:
            r = spec["range"]
            x = self.numeric[r["field"]][mask] if r["field"] in self.numeric else np.array([])
            # Sorted values + prefix sums answer each range by binary search: a 1M-row fake stays fast.
            xs = np.sort(x[~np.isnan(x)])
            prefix = np.concatenate(([0.0], np.cumsum(xs)))
            buckets = []
            for rng in r["ranges"]:
                lo = int(np.searchsorted(xs, rng["from"], side="left")) if "from" in rng else 0
                hi = int(np.searchsorted(xs, rng["to"], side="left")) if "to" in rng else xs.size
                hi = max(hi, lo)
                b: dict[str, Any] = {"key": rng.get("key", f"{rng.get('from', '*')}-{rng.get('to', '*')}"),
                                     "doc_count": hi - lo}
                if "from" in rng:
                    b["from"] = rng["from"]
                if "to" in rng:
                    b["to"] = rng["to"]
                for sub, sub_spec in spec.get("aggs", {}).items():
                    assert "sum" in sub_spec
                    b[sub] = {"value": float(prefix[hi] - prefix[lo])}
                buckets.append(b)
            return {"buckets": buckets}
        if "extended_stats" in spec:
            f = spec["extended_stats"]["field"]
            x = self.numeric.get(f, np.array([]))[mask] if f in self.numeric else np.array([])
            x = x[~np.isnan(x)]
            if x.size == 0:
                return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0, "sum_of_squares": None,
                        "variance": None, "std_deviation": None}
            return {"count": int(x.size), "min": float(x.min()), "max": float(x.max()), "avg": float(x.mean()),
                    "sum": float(x.sum()), "sum_of_squares": float(np.dot(x, x)), "variance": float(x.var()),
                    "std_deviation": float(x.std())}
        if "missing" in spec:
            f = spec["missing"]["field"]
            if f in self.numeric:
                return {"doc_count": int(np.isnan(self.numeric[f][mask]).sum())}
            if f in self.keyword:
                return {"doc_count": int(_is_none(self.keyword[f][mask]).sum())}
            return {"doc_count": int(mask.sum())}
        if "terms" in spec:
            t = spec["terms"]
            values = self.keyword[t["field"]][mask] if t["field"] in self.keyword else np.array([], dtype=object)
            pairs = list(Counter(str(v) for v in values[~_is_none(values)].tolist()).items())
            if "include" in t:
                pairs = [p for p in pairs if p[0] in set(t["include"])]
            if "exclude" in t:
                pairs = [p for p in pairs if p[0] not in set(t["exclude"])]
            pairs.sort(key=lambda kv: (-kv[1], kv[0]))
            size = t.get("size", 10)
            return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": int(sum(c for _, c in pairs[size:])),
                    "buckets": [{"key": k, "doc_count": int(c)} for k, c in pairs[:size]]}
        raise AssertionError(f"aggregation not supported by the fake: {spec}")

    # --- bulk -------------------------------------------------------------------------------------
    def _bulk(self, req: Request, fail_ids: set[str] | None = None) -> Reply:
        lines = [json.loads(line) for line in req.raw_body.decode().splitlines() if line.strip()]
        items = []
        for action, source in zip(lines[::2], lines[1::2]):
            meta = action["index"]
            self.docs[f"{meta['_index']}/{meta['_id']}"] = source
            items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "_version": 1,
                                    "result": "created", "status": 201}})
        return es_reply({"took": 2, "errors": False, "items": items})


def _is_none(values: np.ndarray) -> np.ndarray:
    """Which cells of an object column are missing (None)."""
    return np.fromiter((v is None for v in values.tolist()), dtype=bool, count=values.size)


def _ms(value: str) -> int:
    """A time value of the units mlmon sends (``3600000ms``, ``+1800000ms``) in milliseconds."""
    match = re.fullmatch(r"\+?(\d+)ms", value)
    if match is None:
        raise ValueError(f"failed to parse [{value}]: the fake takes whole milliseconds")
    return int(match[1])


def _epoch_ms(iso: str) -> int:
    return int(round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000))


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bulk_failing(fake: FakeElasticsearch, times: int, status: int = 500) -> Callable[[Request], Reply | None]:
    """A fault hook: the first ``times`` bulk requests fail their FIRST item (a partial failure)."""
    state = {"left": times}

    def fault(req: Request) -> Reply | None:
        if not req.path.endswith("/_bulk") or state["left"] == 0:
            return None
        state["left"] -= 1
        lines = [json.loads(line) for line in req.raw_body.decode().splitlines() if line.strip()]
        items = []
        for n, (action, source) in enumerate(zip(lines[::2], lines[1::2])):
            meta = action["index"]
            if n == 0:
                items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "status": status,
                                        "error": {"type": "mapper_parsing_exception" if status == 400 else
                                                  "unavailable_shards_exception", "reason": "injected"}}})
            else:
                fake.docs[f"{meta['_index']}/{meta['_id']}"] = source
                items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "_version": 1,
                                        "result": "created", "status": 201}})
        return es_reply({"took": 2, "errors": True, "items": items})

    return fault
