"""A fake Elasticsearch cluster for the label join (and the per-segment attribution sums), at the HTTP edge.

It evaluates exactly the requests the stores send, over DataFrames of events
with the contract's dotted column names: ``bool.filter`` clauses (``term``,
``terms``, ``range`` on ``@timestamp``, ``exists``), pages of predictions by
``search_after``, ``terms`` + ``top_hits`` (latest feedback, sorted by
``@timestamp`` then ``event.id``) over feedback, ``composite`` pages of
feedback ids, and ``extended_stats`` + sign ``range`` aggregations and field caps over
explanations. Response shapes follow Elastic's search API documentation (9.x).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mlmon.stores.duckdb.schema import EVENT_TABLES
from tests.support.fake_http import Reply, Request, es_error, es_reply


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Timestamp):
        return _iso(v)
    return None if isinstance(v, float) and np.isnan(v) else v


def matching(frame: pd.DataFrame, query: dict[str, Any]) -> pd.DataFrame:
    """Rows of ``frame`` that a ``{"bool": {"filter": [...]}}`` query selects."""
    rows = frame
    for f in query.get("bool", {}).get("filter", []):
        (kind, spec), = f.items()
        if kind == "term":
            (field, value), = spec.items()
            rows = rows[rows[field] == value] if field in rows else rows.iloc[:0]
        elif kind == "terms":
            (field, values), = spec.items()
            rows = rows[rows[field].isin(values)] if field in rows else rows.iloc[:0]
        elif kind == "exists":
            rows = rows[rows[spec["field"]].notna()] if spec["field"] in rows else rows.iloc[:0]
        elif kind == "range":
            (field, bounds), = spec.items()
            ts = rows[field]
            if "gte" in bounds:
                rows = rows[ts >= pd.Timestamp(datetime.fromisoformat(bounds["gte"].replace("Z", "+00:00")))]
                ts = rows[field]
            if "lt" in bounds:
                rows = rows[ts < pd.Timestamp(datetime.fromisoformat(bounds["lt"].replace("Z", "+00:00")))]
        else:
            raise AssertionError(f"the fake does not evaluate {kind!r} filters")
    return rows


class FakeCluster:
    """Prediction, feedback (and explanation) data streams as DataFrames."""

    def __init__(self, predictions: pd.DataFrame, feedback: pd.DataFrame,
                 explanations: pd.DataFrame | None = None) -> None:
        self.p = predictions.sort_values("mlmon.prediction.id").reset_index(drop=True)
        self.f = feedback
        self.x = explanations if explanations is not None else pd.DataFrame()

    @classmethod
    def from_duckdb(cls, con: duckdb.DuckDBPyConnection) -> FakeCluster:
        """The events of an embedded store (its predictions, feedback and explanations tables)."""
        def events(table: str) -> pd.DataFrame:
            frame = con.execute(f"SELECT * FROM {table}").df()
            frame["@timestamp"] = pd.to_datetime(frame["@timestamp"], utc=True)
            return frame

        return cls(events(EVENT_TABLES["prediction"]), events(EVENT_TABLES["feedback"]),
                   events(EVENT_TABLES["explanation"]))

    def __call__(self, req: Request) -> Reply:
        body: dict[str, Any] = req.json or {}
        index = req.path.strip("/").split("/")[0]
        if req.path.endswith("/_field_caps"):
            return self._field_caps()
        if "prediction" in index and "aggs" not in body:
            return self._page(body)
        if "feedback" in index and "composite" in str(body.get("aggs")):
            return self._composite(body)
        if "feedback" in index:
            return self._latest(body)
        if "explanation" in index:
            return self._attributions(body)
        if "prediction" in index:
            return self._known(body)
        return es_error(404, "index_not_found_exception", index)

    def _page(self, body: dict[str, Any]) -> Reply:
        rows = matching(self.p, body["query"])
        if "search_after" in body:
            rows = rows[rows["mlmon.prediction.id"] > body["search_after"][0]]
        rows = rows.head(body["size"])
        hits = []
        for r in rows.to_dict("records"):
            hit = {"_index": ".ds-logs-mlmon.prediction-default-2025.03.01-000001", "_id": r["event.id"],
                   "_score": None, "sort": [r["mlmon.prediction.id"]]}
            if body["_source"] is not False:  # "_source": false -> hits without _source
                hit["_source"] = {k: _value(r[k]) for k in body["_source"] if k in r}
            hits.append(hit)
        return es_reply({"took": 2, "timed_out": False, "hits": {"max_score": None, "hits": hits}})

    def _latest(self, body: dict[str, Any]) -> Reply:
        rows = matching(self.f, body["query"])
        top = body["aggs"]["by_id"]["aggs"]["latest"]["top_hits"]
        keys = [next(iter(s)) for s in top["sort"]]
        assert keys == ["@timestamp", "event.id"], keys
        ordered = rows.sort_values(["mlmon.prediction.id", "@timestamp", "event.id"])
        sizes = ordered.groupby("mlmon.prediction.id").size()
        buckets = []
        for last in ordered.drop_duplicates("mlmon.prediction.id", keep="last").to_dict("records"):
            n = int(sizes[last["mlmon.prediction.id"]])
            source = {k: _value(last[k]) for k in top["_source"]["includes"] if k in last}
            buckets.append({"key": last["mlmon.prediction.id"], "doc_count": n, "latest": {"hits": {
                "total": {"value": n, "relation": "eq"}, "max_score": None,
                "hits": [{"_index": ".ds-logs-mlmon.feedback-default-2025.03.01-000001", "_id": last["event.id"],
                          "_score": None, "_source": source,
                          "sort": [int(last["@timestamp"].value // 1_000_000), last["event.id"]]}]}}})
        return es_reply({"took": 3, "timed_out": False,
                         "hits": {"total": {"value": len(rows), "relation": "eq"}, "max_score": None, "hits": []},
                         "aggregations": {"by_id": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                                                    "buckets": buckets}}})

    def _composite(self, body: dict[str, Any]) -> Reply:
        comp = body["aggs"]["ids"]["composite"]
        counts = matching(self.f, body["query"]).groupby("mlmon.prediction.id").size().sort_index()
        if "after" in comp:
            counts = counts[counts.index > comp["after"]["id"]]
        counts = counts.head(comp["size"])
        agg: dict[str, Any] = {"buckets": [{"key": {"id": k}, "doc_count": int(v)} for k, v in counts.items()]}
        if len(counts):
            agg["after_key"] = {"id": counts.index[-1]}
        return es_reply({"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": []},
                         "aggregations": {"ids": agg}})

    def _known(self, body: dict[str, Any]) -> Reply:
        found = matching(self.p, body["query"])["mlmon.prediction.id"]
        return es_reply({"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": []},
                         "aggregations": {"ids": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                                                  "buckets": [{"key": k, "doc_count": 1} for k in found]}}})

    def _field_caps(self) -> Reply:
        fields = {c: {"double": {"type": "double", "metadata_field": False, "searchable": True, "aggregatable": True}}
                  for c in self.x.columns if c.startswith("mlmon.attributions.") and self.x[c].notna().any()}
        return es_reply({"indices": [".ds-logs-mlmon.explanation-default-2025.03.01-000001"], "fields": fields})

    def _attributions(self, body: dict[str, Any]) -> Reply:
        rows = matching(self.x, body["query"])
        aggs: dict[str, Any] = {}
        for name, spec in body["aggs"].items():
            if "extended_stats" in spec:
                v = rows[spec["extended_stats"]["field"]].dropna().to_numpy(dtype=float)
                aggs[name] = {"count": len(v), "sum": float(v.sum()) if len(v) else 0.0,
                              "sum_of_squares": float((v * v).sum()) if len(v) else None}
            else:
                v = rows[spec["range"]["field"]].dropna().to_numpy(dtype=float)
                neg, pos = v[v < 0], v[v >= 0]
                aggs[name] = {"buckets": [
                    {"key": "negative", "to": 0.0, "doc_count": len(neg), "sum": {"value": float(neg.sum())}},
                    {"key": "positive", "from": 0.0, "doc_count": len(pos), "sum": {"value": float(pos.sum())}}]}
        return es_reply({"took": 2, "timed_out": False,
                         "hits": {"total": {"value": len(rows), "relation": "eq"}, "max_score": None, "hits": []},
                         "aggregations": aggs})
