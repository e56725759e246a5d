"""Validate, enrich and route one JSON line: the Python twin of logstash/ruby/mlmon_event.rb.

Both read the same spec (:mod:`mlmon.ingest.spec`) and must give the same
result - same document, same error type, same error message - on every golden
file in ``logstash/tests``. Checks run in a fixed order and the first failure
is reported: size, UTF-8, JSON, object, structure, dataset, schema version,
then every field in the event's own key order, then required fields, task
fields and the clock.
"""

from __future__ import annotations

import hashlib
import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import orjson

from mlmon.ingest.lines import line_length
from mlmon.ingest.nesting import nests_deeper
from mlmon.ingest.timestamps import Instant, parse_iso
from mlmon_logging import contract


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid, enriched event: its flat dotted fields and where it goes."""

    kind: str
    index: str
    event_id: str
    #: Dotted field -> value, dates as normalised ISO strings, in the event's order.
    fields: dict[str, Any]
    #: Dotted date field -> instant, for stores that keep real timestamps.
    instants: dict[str, Instant]

    @property
    def doc_id(self) -> str:
        return document_id(self.event_id)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A dead letter: the original line and why it was refused."""

    index: str
    error_type: str
    error_message: str
    original: str
    ingested: Instant
    source_path: str | None = None
    fields: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        ingested = self.ingested.iso()
        doc: dict[str, Any] = {
            "@timestamp": ingested,
            "event.id": hashlib.sha256(self.original.encode("utf-8")).hexdigest(),
            "event.dataset": "mlmon.deadletter",
            "event.ingested": ingested,
            "event.original": self.original,
            "error.type": self.error_type,
            "error.message": self.error_message,
        }
        if self.source_path is not None:
            doc["log.file.path"] = self.source_path
        object.__setattr__(self, "fields", doc)

    @property
    def event_id(self) -> str:
        return str(self.fields["event.id"])

    @property
    def doc_id(self) -> str:
        return document_id(self.event_id)


def document_id(event_id: str) -> str:
    """Elasticsearch ``_id``: what Logstash's fingerprint filter (SHA256, no key) computes from event.id."""
    return hashlib.sha256(event_id.encode("utf-8")).hexdigest()


class _Reject(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


_JSON_TYPE = {str: "string", bool: "boolean", int: "integer", float: "float", list: "array", dict: "object",
              type(None): "null"}
_EXPECTED = {"keyword": "a string", "text": "a string", "double": "a number", "long": "an integer",
             "boolean": "true or false", "date": "an ISO 8601 timestamp string"}
_TS_HINT = "2025-01-31T12:00:00.000Z"
#: A long is what Elasticsearch's ``long`` holds; anything wider would fail the bulk request later.
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _jtype(value: Any) -> str:
    return _JSON_TYPE.get(type(value), "unknown")


def _cut(text: str, limit: int = 200) -> str:
    return text[:limit]


class Validator:
    """Compiled rules of one spec; :meth:`process` handles one line."""

    def __init__(self, spec: dict[str, Any], namespace: str | None = None) -> None:
        self.spec = spec
        ns = namespace or spec["default_namespace"]
        self.namespace = ns
        self.schema_version: str = spec["schema_version"]
        self.kind_of_dataset: dict[str, str] = dict(spec["datasets"])
        self.ecs_kind: dict[str, str] = spec["ecs_event_kind"]
        self.index_of_kind = {kind: f"{spec['data_stream_type']}-{ds}-{ns}" for ds, kind in spec["datasets"].items()}
        self.dead_letter_index = f"{spec['data_stream_type']}-{spec['dead_letter_dataset']}-{ns}"
        self.fields: dict[str, dict[str, Any]] = spec["fields"]
        self.kinds_of_field = {n: frozenset(f["kinds"]) for n, f in self.fields.items()}
        self.allowed = {n: frozenset(f["allowed"]) for n, f in self.fields.items() if f["allowed"]}
        self.derived = frozenset(n for n, f in self.fields.items() if f["derived"])
        self.required = {kind: tuple(n for n, f in self.fields.items() if kind in f["required_in"])
                         for kind in spec["datasets"].values()}
        self.families: dict[str, dict[str, Any]] = spec["families"]
        self.family_kinds = {p: frozenset(f["kinds"]) for p, f in self.families.items()}
        self.name_pattern: str = spec["name_pattern"]
        self._name_re = re.compile(self.name_pattern)
        self._good_names: set[str] = set()  # names seen valid: features repeat on every event
        self.max_family_fields: int = spec["max_family_fields"]
        self.task_required: dict[str, dict[str, list[str]]] = spec["task_required"]
        self.latency_bounds: list[float] = spec["latency_buckets_ms"]
        self.latency_labels: list[str] = spec["latency_bucket_labels"]
        self.max_line_bytes: int = spec["max_line_bytes"]
        self.future_tolerance: int = spec["future_tolerance_seconds"]
        self.non_finite = frozenset(spec["non_finite_strings"])
        self.max_depth: int = spec["max_nesting_depth"]
        self.non_empty = frozenset(spec["non_empty_fields"])
        self.datasets_text = ", ".join(spec["datasets"])

    # -- the one entry point ----------------------------------------------------
    def process(self, raw: bytes, now: Instant, source_path: str | None = None) -> Accepted | Rejected:
        """Validate and enrich one line (without its newline)."""
        try:
            return self._accept(raw, now)
        except _Reject as r:
            return Rejected(self.dead_letter_index, r.error_type, r.message, self._original(raw), now, source_path)

    def _original(self, raw: bytes) -> str:
        if len(raw) > self.max_line_bytes:  # cut, dropping a character split by the cut
            return raw[: self.max_line_bytes].decode("utf-8", errors="ignore")
        return raw.decode("utf-8", errors="replace")

    def _accept(self, raw: bytes, now: Instant) -> Accepted:
        if len(raw) > self.max_line_bytes:  # a CutLine holds only its head: ask for its real size
            raise _Reject("oversized_line",
                          f"line of {line_length(raw)} bytes exceeds the limit of {self.max_line_bytes} bytes")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Reject("invalid_utf8", "line is not valid UTF-8") from None
        if nests_deeper(raw, self.max_depth):  # before any parser or tree walk meets it
            raise _Reject("not_json", f"line nests objects and arrays more than {self.max_depth} levels deep")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Reject("not_json", "line is not valid JSON") from None
        if type(obj) is not dict:
            raise _Reject("not_json_object", f"line is JSON but not an object (got {_jtype(obj)})")
        flat: dict[str, Any] = {}
        _flatten(obj, "", flat)
        kind = self._kind(flat)
        version = flat.get("mlmon.schema_version")
        if type(version) is str and version != self.schema_version:
            raise _Reject("unsupported_schema_version", f"mlmon.schema_version '{_cut(version, 100)}' is not supported "
                                                        f"(this pipeline reads version {self.schema_version})")
        instants: dict[str, Instant] = {}
        family_counts: dict[str, int] = {}
        for name in list(flat):
            value = flat[name]
            rule = self.fields.get(name)
            if rule is None:
                self._check_family_field(kind, name, value, family_counts)
                continue
            if kind not in self.kinds_of_field[name]:
                raise _Reject("unknown_field", f"field '{_cut(name)}' is not part of a {kind} event in the contract")
            if name in self.derived:  # set below from trusted inputs only
                del flat[name]
                continue
            if value is None:
                continue
            instant = self._check_value(name, rule, value)
            if instant is not None:
                instants[name] = instant
                flat[name] = instant.iso()
        for name in self.required[kind]:
            if flat.get(name) is None:
                raise _Reject("missing_field", f"required field '{name}' is missing in this {kind} event")
        expected_kind = self.ecs_kind[kind]
        if flat["event.kind"] != expected_kind:
            raise _Reject("invalid_value", f"field 'event.kind' must be '{expected_kind}' in a {kind} event")
        task_fields = self.task_required.get(kind)
        if task_fields is not None:
            task = flat["mlmon.model.task"]
            for name in task_fields[task]:
                if flat.get(name) is None:
                    raise _Reject("missing_field", f"field '{name}' is required in a {task} {kind} event")
        if instants["@timestamp"].after(now, self.future_tolerance):
            raise _Reject("future_timestamp",
                          f"@timestamp is more than {self.future_tolerance} s ahead of the ingest time")
        # -- enrichment -----------------------------------------------------------
        ingested = now.iso()
        flat["event.ingested"] = ingested
        instants["event.ingested"] = now
        latency = flat.get("mlmon.prediction.latency_ms")
        if latency is not None:
            flat["mlmon.prediction.latency_bucket"] = self.latency_labels[bisect_right(self.latency_bounds, latency)]
        return Accepted(kind, self.index_of_kind[kind], flat["event.id"], flat, instants)

    def _kind(self, flat: dict[str, Any]) -> str:
        dataset = flat.get("event.dataset")
        if dataset is None:
            raise _Reject("missing_field", "required field 'event.dataset' is missing")
        if type(dataset) is not str:
            raise _Reject("wrong_type", f"field 'event.dataset' must be a string, got {_jtype(dataset)}")
        kind = self.kind_of_dataset.get(dataset)
        if kind is None:
            raise _Reject("unknown_dataset", f"event.dataset '{_cut(dataset, 100)}' is not one of {self.datasets_text}")
        return kind

    def _check_family_field(self, kind: str, name: str, value: Any, counts: dict[str, int]) -> None:
        prefix, _, short = name.rpartition(".")
        fam = self.families.get(prefix)
        if fam is None or kind not in self.family_kinds[prefix]:
            raise _Reject("unknown_field", f"field '{_cut(name)}' is not part of a {kind} event in the contract")
        if short not in self._good_names:
            if not self._name_re.fullmatch(short):
                raise _Reject("invalid_field_name",
                              f"field '{_cut(name)}': user-chosen names must match {self.name_pattern}")
            self._good_names.add(short)
        n = counts.get(prefix, 0) + 1
        if n > self.max_family_fields:
            raise _Reject("too_many_fields", f"more than {self.max_family_fields} fields under '{prefix}.'")
        counts[prefix] = n
        if value is not None:
            self._check_scalar(name, fam["type"], value)

    def _check_value(self, name: str, rule: dict[str, Any], value: Any) -> Instant | None:
        if rule["array"]:
            if type(value) is not list or any(type(v) is not str for v in value):
                raise _Reject("wrong_type", f"field '{name}' must be a list of strings, got {_jtype(value)}"
                              if type(value) is not list else f"field '{name}' must be a list of strings")
            return None
        instant = self._check_scalar(name, rule["type"], value)
        if value == "" and name in self.non_empty:
            raise _Reject("invalid_value", f"field '{name}' must not be empty")
        allowed = self.allowed.get(name)
        if allowed is not None and value not in allowed:
            raise _Reject("invalid_value", f"field '{name}' must be one of {', '.join(rule['allowed'])}, "
                                           f"got '{_cut(value, 100)}'")
        bounds = rule.get("range")
        if bounds is not None:
            lo, hi = bounds["min"], bounds["max"]
            ok = (value >= lo if bounds["min_inclusive"] else value > lo) and (
                hi is None or (value <= hi if bounds["max_inclusive"] else value < hi))
            if not ok:
                raise _Reject("invalid_value", f"field '{name}' must be {bounds['text']}")
        return instant

    def _check_scalar(self, name: str, es_type: str, value: Any) -> Instant | None:
        t = type(value)
        if es_type == "double":
            if t is float:
                if not math.isfinite(value):
                    raise _Reject("non_finite_number", f"field '{name}' must be a finite number")
                return None
            if t is int:
                return None
            if t is str and value in self.non_finite:
                raise _Reject("non_finite_number",
                              f"field '{name}' must be a finite number, got the string '{value}'")
        elif es_type == "keyword" or es_type == "text":
            if t is str:
                return None
        elif es_type == "long":
            if t is int:
                if _LONG_MIN <= value <= _LONG_MAX:
                    return None
                raise _Reject("invalid_value", f"field '{name}' must be a 64-bit integer (-2^63 to 2^63-1)")
        elif es_type == "date":
            if t is str:
                instant = parse_iso(value)
                if instant is None:
                    raise _Reject("invalid_timestamp", f"field '{name}' is not an ISO 8601 timestamp with a "
                                                       f"time zone (e.g. {_TS_HINT})")
                return instant
        elif es_type == "boolean":
            if t is bool:
                return None
        raise _Reject("wrong_type", f"field '{name}' must be {_EXPECTED[es_type]}, got {_jtype(value)}")


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """Nested objects -> dotted names; dotted keys in the input are accepted as the same field."""
    for key, value in obj.items():
        name = prefix + key
        if type(value) is dict:
            _flatten(value, name + ".", out)
        elif name in out:
            raise _Reject("duplicate_field", f"field '{_cut(name)}' appears twice (nested and dotted)")
        else:
            out[name] = value


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted names -> the nested document Elasticsearch stores as ``_source``."""
    doc: dict[str, Any] = {}
    for name, value in flat.items():
        parts = name.split(".")
        node = doc
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return doc
