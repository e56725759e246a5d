"""An in-memory Elasticsearch for the drift store tests, behind tests.support.fake_http.FakeServer.

It evaluates the aggregations the jobs send (range, extended_stats, missing,
terms with include/exclude, sum sub-aggregations) over numpy columns, and
answers in the shapes Elastic documents for the search, bulk, get and index
APIs. Filters are not evaluated: every stored row is in the window (tests
load exactly the window's events). Every search first passes the limits a 9.4
cluster enforces (``tests.support.fake_elastic.search_refusal``: result window,
buckets, terms, top_hits, search_after).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.support.fake_elastic import search_refusal
from tests.support.fake_http import Reply, Request, es_error, es_reply


@dataclass
class FakeElasticsearch:
    numeric: dict[str, np.ndarray] = field(default_factory=dict)      # field -> values (NaN = missing)
    keyword: dict[str, np.ndarray] = field(default_factory=dict)      # field -> object array (None = missing)
    rows: int = 0
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
        aggs = {name: self._agg(spec, np.ones(self.rows, dtype=bool)) for name, spec in body.get("aggs", {}).items()}
        return es_reply({"took": 3, "timed_out": False,
                         "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                         "hits": {"total": {"value": self.rows, "relation": "eq"}, "max_score": None, "hits": []},
                         "aggregations": aggs})

    def _agg(self, spec: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
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
                b: dict[str, Any] = {"key": f"{rng.get('from', '*')}-{rng.get('to', '*')}", "doc_count": hi - lo}
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
                return {"doc_count": int(np.equal(self.keyword[f][mask], None).sum())}
            return {"doc_count": int(mask.sum())}
        if "terms" in spec:
            t = spec["terms"]
            values = self.keyword.get(t["field"], np.array([], dtype=object))
            pairs = list(Counter(str(v) for v in values[np.not_equal(values, None)].tolist()).items())
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
