"""A fake Elasticsearch cluster for the label join (and the per-segment attribution sums), at the HTTP edge.

It evaluates exactly the requests the stores send, over DataFrames of events
with the contract's dotted column names: ``bool.filter`` clauses (``term``,
``terms``, ``range`` on ``@timestamp``, ``exists``); points in time (``POST
/<index>/_pit``, ``pit`` in a search body, ``DELETE /_pit``) with their lifetimes;
``sort`` (``_shard_doc`` = a row's position in its frame, ``@timestamp`` as epoch
milliseconds like a ``date`` field) with ``search_after`` and, in a point in time,
the ``_shard_doc`` tiebreaker Elasticsearch appends; ``collapse`` (the top sorted
hit per key); ``terms`` aggregations with ``min_doc_count``; ``composite`` pages of
feedback ids; ``extended_stats`` + sign ``range`` aggregations and field caps over
explanations. Events listed in ``FakeCluster.epoch_millis_events`` hold their ``@timestamp`` in ``_source`` as
epoch milliseconds (a number), as a document indexed that way returns it. Every search body first goes through
:func:`tests.support.fake_elastic.search_refusal`, so this fake refuses what a 9.4
cluster refuses (result window, buckets, terms count, top_hits size, search_after
rules). Response shapes follow Elastic's search API documentation (9.x).
"""

from __future__ import annotations

import fnmatch
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mlmon.stores.duckdb.schema import EVENT_TABLES
from tests.support.fake_elastic import MAX_KEEP_ALIVE_S, keep_alive_seconds, search_refusal
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


@dataclass
class _Pit:
    kind: str | None  # "prediction", "feedback", "explanation"; None: opened over no index
    expires: float


def _kind(index: str) -> str | None:
    return next((k for k in ("prediction", "feedback", "explanation") if k in index), None)


def _sort_keys(body: dict[str, Any], in_pit: bool) -> list[tuple[str, bool]]:
    """(field, ascending) of the body's sort, with the tiebreaker Elasticsearch adds in a point in time."""
    keys: list[tuple[str, bool]] = []
    for spec in body.get("sort", []):
        (field, order), = spec.items() if isinstance(spec, dict) else ((spec, "asc"),)
        keys.append((field, (order["order"] if isinstance(order, dict) else order) == "asc"))
    if in_pit and keys and keys[-1][0] != "_shard_doc":
        keys.append(("_shard_doc", True))
    return keys


def _sort_values(rows: pd.DataFrame, field: str) -> pd.Series:
    if field == "_shard_doc":
        return pd.Series(rows.index, index=rows.index, dtype="int64")
    if field == "@timestamp":  # a date field sorts (and reports sort values) in epoch milliseconds
        ts = pd.to_datetime(rows[field], utc=True)
        return (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return rows[field] if field in rows else pd.Series(None, index=rows.index, dtype=object)


def sorted_after(rows: pd.DataFrame, keys: list[tuple[str, bool]], after: list[Any] | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows`` in sort order, from after ``after`` on; and their sort values (one column per key)."""
    values = pd.DataFrame({f"k{i}": _sort_values(rows, f) for i, (f, _) in enumerate(keys)}, index=rows.index)
    if after is not None:
        beyond = pd.Series(False, index=rows.index)
        tied = pd.Series(True, index=rows.index)
        for i, ((_, asc), a) in enumerate(zip(keys, after)):
            v = values[f"k{i}"]
            beyond |= tied & ((v > a) if asc else (v < a))
            tied &= v == a
        values = values[beyond]
    if keys:
        values = values.sort_values(list(values.columns), ascending=[asc for _, asc in keys], kind="stable")
    return rows.loc[values.index], values


def filtered(value: Any, paths: list[list[str]]) -> Any:
    """Elasticsearch's ``filter_path`` (dotted paths, ``*`` for any key; a list is filtered item by item);
    None when nothing is left, as Elasticsearch leaves out empty objects."""
    if any(not p for p in paths):
        return value
    if isinstance(value, list):
        items = [f for item in value if (f := filtered(item, paths)) not in (None, {})]
        return items or None
    if not isinstance(value, dict):
        return None
    out = {}
    for key, sub in value.items():
        rest = [p[1:] for p in paths if fnmatch.fnmatchcase(key, p[0])]
        if rest and (f := filtered(sub, rest)) not in (None, {}, []):
            out[key] = f
    return out or None


def _source(row: dict[str, Any], spec: Any, epoch_millis: frozenset[str] = frozenset()) -> dict[str, Any]:
    fields = spec.get("includes", []) if isinstance(spec, dict) else spec
    out = {k: _value(row[k]) for k in fields if k in row}
    if "@timestamp" in out and row.get("event.id") in epoch_millis:  # _source is the document as it was indexed
        out["@timestamp"] = int((row["@timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
    return out


def _millis(value: str) -> int:
    """A fixed interval or offset as Elasticsearch parses it (``3600000ms``, ``+1h``, ``-30m``), in ms."""
    sign = -1 if value.startswith("-") else 1
    return sign * round(keep_alive_seconds(value.lstrip("+-")) * 1000)


def _composite_key(rows: pd.DataFrame, source: tuple[str, dict[str, Any]]) -> pd.Series:
    kind, spec = source
    if kind == "terms":
        return rows[spec["field"]]
    if kind == "date_histogram" and set(spec) <= {"field", "fixed_interval", "offset"}:
        ms = (pd.to_datetime(rows[spec["field"]], utc=True) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        interval, offset = _millis(spec["fixed_interval"]), _millis(spec.get("offset", "0ms"))
        return (ms - offset) // interval * interval + offset
    raise AssertionError(f"the fake does not evaluate composite source {source!r}")


class FakeCluster:
    """Prediction, feedback (and explanation) data streams as DataFrames; a row's position is its _shard_doc."""

    def __init__(self, predictions: pd.DataFrame, feedback: pd.DataFrame,
                 explanations: pd.DataFrame | None = None) -> None:
        self.p = predictions.reset_index(drop=True)
        self.f = feedback.reset_index(drop=True)
        self.x = explanations if explanations is not None else pd.DataFrame()
        self.pits: dict[str, _Pit] = {}
        self.clock: Callable[[], float] = time.monotonic  # tests move it to expire points in time
        self.epoch_millis_events: frozenset[str] = frozenset()  # their _source @timestamp: epoch millis
        self._pit_ids = itertools.count(1)

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
        index = req.path.strip("/").split("/")[0]
        if req.method == "POST" and req.path.endswith("/_pit"):
            return self._open_pit(req, index)
        if req.method == "DELETE" and req.path == "/_pit":
            return self._close_pit(req)
        if req.path.endswith("/_field_caps"):
            return self._field_caps()
        body: dict[str, Any] = req.json or {}
        refused = search_refusal(body)
        if refused is not None:
            return refused
        if "collapse" in body and "search_after" in body and [next(iter(s)) for s in body.get("sort", [])] != [
                body["collapse"]["field"]]:
            return es_error(400, "search_phase_execution_exception", "collapse field and sort field must be the "
                            "same when use `collapse` in conjunction with `search_after`")
        kind: str | None
        if "pit" in body:
            if req.path != "/_search":
                return es_error(400, "action_request_validation_exception", "Validation Failed: 1: [indices] "
                                "cannot be used with point in time. Do not specify any index with point in time.;")
            pit = self.pits.get(str(body["pit"].get("id")))
            if pit is None or pit.expires < self.clock():
                return es_error(404, "search_context_missing_exception",
                                f"No search context found for id [{body['pit'].get('id')}]")
            if "keep_alive" in body["pit"]:
                refused = self._keep_alive_refusal(str(body["pit"]["keep_alive"]))
                if refused is not None:
                    return refused
                pit.expires = self.clock() + keep_alive_seconds(str(body["pit"]["keep_alive"]))
            kind = pit.kind
        else:
            kind = _kind(index)
        reply = self._route(kind, body)
        if "pit" in body and reply.status == 200:
            reply.body["pit_id"] = body["pit"]["id"]
        if "filter_path" in req.query and reply.status == 200:
            paths = [p.split(".") for p in req.query["filter_path"][0].split(",")]
            reply.body = filtered(reply.body, paths) or {}
        return reply

    def _route(self, kind: str | None, body: dict[str, Any]) -> Reply:
        aggs = str(body.get("aggs"))
        if kind == "prediction" and "aggs" not in body:
            return self._page(body)
        if kind == "feedback" and "composite" in aggs:
            return self._composite(body)
        if kind == "feedback" and "collapse" in body:
            return self._latest(body)
        if kind == "explanation":
            return self._attributions(body)
        if kind == "prediction":
            return self._known(body)
        if kind is None and "pit" in body:  # a PIT over no index: nothing matches
            return es_reply({"took": 0, "timed_out": False, "hits": {"max_score": None, "hits": []}})
        return es_error(404, "index_not_found_exception", str(kind))

    @staticmethod
    def _keep_alive_refusal(keep_alive: str) -> Reply | None:
        if keep_alive_seconds(keep_alive) > MAX_KEEP_ALIVE_S:
            return es_error(400, "illegal_argument_exception",
                            f"Keep alive for request ({keep_alive}) is too large. It must be less than (1d). This "
                            f"limit can be set by changing the [point_in_time.max_keep_alive] cluster level setting.")
        return None

    def _open_pit(self, req: Request, index: str) -> Reply:
        keep_alive = (req.query.get("keep_alive") or [""])[0]
        if not keep_alive:
            return es_error(400, "action_request_validation_exception",
                            "Validation Failed: 1: [keep_alive] is not specified;")
        refused = self._keep_alive_refusal(keep_alive)
        if refused is not None:
            return refused
        kind = _kind(index)
        if kind is None and req.query.get("ignore_unavailable") != ["true"]:
            return es_error(404, "index_not_found_exception", f"no such index [{index}]")
        pit_id = f"pit-{next(self._pit_ids)}"
        self.pits[pit_id] = _Pit(kind, self.clock() + keep_alive_seconds(keep_alive))
        return es_reply({"id": pit_id, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})

    def _close_pit(self, req: Request) -> Reply:
        found = self.pits.pop(str((req.json or {}).get("id")), None) is not None
        return es_reply({"succeeded": found, "num_freed": int(found)}, 200 if found else 404)

    def _page(self, body: dict[str, Any]) -> Reply:
        rows, values = sorted_after(matching(self.p, body["query"]), _sort_keys(body, "pit" in body),
                                    body.get("search_after"))
        rows, values = rows.head(body["size"]), values.head(body["size"])
        hits = []
        for r, v in zip(rows.to_dict("records"), values.itertuples(index=False)):
            hit = {"_index": ".ds-logs-mlmon.prediction-default-2025.03.01-000001", "_id": r["event.id"],
                   "_score": None, "sort": [_value(x) for x in v]}
            if body["_source"] is not False:  # "_source": false -> hits without _source
                hit["_source"] = _source(r, body["_source"], self.epoch_millis_events)
            hits.append(hit)
        return es_reply({"took": 2, "timed_out": False, "hits": {"max_score": None, "hits": hits}})

    def _latest(self, body: dict[str, Any]) -> Reply:
        """Collapsed hits (the top sorted hit per key) and the aggregations' ``terms`` buckets."""
        matched = matching(self.f, body["query"])
        rows, values = sorted_after(matched, _sort_keys(body, "pit" in body), body.get("search_after"))
        key = body["collapse"]["field"]
        first = ~rows[key].duplicated(keep="first")
        rows, values = rows[first].head(body["size"]), values[first].head(body["size"])
        hits = [{"_index": ".ds-logs-mlmon.feedback-default-2025.03.01-000001", "_id": r["event.id"],
                 "_score": None, "_source": _source(r, body.get("_source", {"includes": list(r)}),
                                                    self.epoch_millis_events),
                 "sort": [_value(x) for x in v], "fields": {key: [r[key]]}}
                for r, v in zip(rows.to_dict("records"), values.itertuples(index=False))]
        out: dict[str, Any] = {"took": 3, "timed_out": False, "hits": {"max_score": None, "hits": hits}}
        if body.get("aggs"):
            out["aggregations"] = {name: self._terms(matched, spec["terms"]) for name, spec in body["aggs"].items()}
        return es_reply(out)

    @staticmethod
    def _terms(rows: pd.DataFrame, spec: dict[str, Any]) -> dict[str, Any]:
        counts = rows.groupby(spec["field"]).size()
        counts = counts[counts >= int(spec.get("min_doc_count", 1))]
        ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), kv[0]))  # doc_count desc, then key asc
        kept = ordered[: int(spec.get("size", 10))]
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": int(sum(n for _, n in ordered[len(kept):])),
                "buckets": [{"key": k, "doc_count": int(n)} for k, n in kept]}

    def _composite(self, body: dict[str, Any]) -> Reply:
        """Composite pages over ``terms`` and ``date_histogram`` sources (``fixed_interval`` and ``offset``:
        a bucket's key is the epoch millis of its start, ``floor((t - offset) / interval) * interval + offset``),
        sorted by the sources in order, ascending."""
        comp = body["aggs"]["ids"]["composite"]
        rows = matching(self.f, body["query"])
        names = [next(iter(src)) for src in comp["sources"]]
        keys = pd.DataFrame({name: _composite_key(rows, next(iter(source.items()))) for name, source in
                             (next(iter(src.items())) for src in comp["sources"])}, index=rows.index)
        counts = keys.groupby(names).size().reset_index(name="doc_count").sort_values(names, kind="stable")
        if "after" in comp:
            after = tuple(comp["after"][n] for n in names)
            beyond = [tuple(k) > after for k in counts[names].itertuples(index=False)]
            counts = counts[beyond]
        counts = counts.head(comp["size"])
        keys_of = [{n: _value(r[n]) for n in names} for r in counts.to_dict("records")]
        buckets = [{"key": k, "doc_count": int(n)} for k, n in zip(keys_of, counts["doc_count"])]
        agg: dict[str, Any] = {"buckets": buckets}
        if keys_of:
            agg["after_key"] = dict(keys_of[-1])
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
