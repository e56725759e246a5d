"""The contract checks of :class:`mlmon.ingest.validate.Validator`, column by column.

A row passes only when the per-line checker would accept it *and* store the
same values; every other row - refused, or merely doubtful - is handed back to
the per-line checker, which gives the exact verdict and reason. So this module
never writes a dead letter and never needs to rank errors: it only has to be
sure about what it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlmon.ingest.arrow_timestamps import parse_iso_column
from mlmon.ingest.fast_parse import FlatChunk
from mlmon.ingest.timestamps import Instant
from mlmon.ingest.validate import Validator

LINE_COLUMN = "__line"  # batch position of a row: first copy of an event.id wins, across both paths
_TS_TYPE = pa.timestamp("us", tz="UTC")
_MAX_CACHED_RULES = 20_000
_ARROW_OF = {"keyword": pa.string(), "text": pa.string(), "double": pa.float64(), "long": pa.int64(),
             "boolean": pa.bool_()}


@dataclass(frozen=True)
class ColumnRule:
    """What the contract says about one dotted name: which kinds may carry it, and its type."""

    kinds: frozenset[str]
    es_type: str
    array: bool = False
    family: str | None = None
    derived: bool = False


@dataclass
class CheckedChunk:
    tables: dict[str, pa.Table]   # kind -> rows proven valid, contract-typed columns + LINE_COLUMN
    recheck: np.ndarray           # True where the per-line checker must decide


def _present(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_valid(), dtype=bool)


class ColumnarChecker:
    """Compiled from a :class:`Validator` so both read the one spec."""

    def __init__(self, validator: Validator) -> None:
        self.v = validator
        self.kinds = list(dict.fromkeys(validator.kind_of_dataset.values()))
        self._rules: dict[str, ColumnRule] = {}

    # -- rules -------------------------------------------------------------------
    def rule(self, name: str) -> ColumnRule:
        cached = self._rules.get(name)
        if cached is None:
            cached = self._make_rule(name)
            if len(self._rules) < _MAX_CACHED_RULES:  # names come from the input: bound the cache
                self._rules[name] = cached
        return cached

    def _make_rule(self, name: str) -> ColumnRule:
        v = self.v
        spec = v.fields.get(name)
        if spec is not None:
            return ColumnRule(v.kinds_of_field[name], spec["type"], spec["array"], derived=name in v.derived)
        prefix, _, short = name.rpartition(".")
        family = v.families.get(prefix)
        if family is None or v._name_re.fullmatch(short) is None:
            return ColumnRule(frozenset(), "unknown")
        return ColumnRule(v.family_kinds[prefix], family["type"], family=prefix)

    # -- the check ---------------------------------------------------------------
    def check(self, chunk: FlatChunk, line_numbers: np.ndarray, now: Instant) -> CheckedChunk:
        n = len(chunk)
        recheck = np.zeros(n, dtype=bool)
        kind_of_row = self._kinds(chunk, recheck)
        mentions = _Mentions(chunk)
        values: dict[str, pa.Array] = {}
        for name, array in chunk.leaves.items():
            self._check_column(name, array, kind_of_row, chunk, mentions, recheck, values)
        for name, nulls in chunk.struct_nulls.items():
            # ``"obj": null`` is a present field the contract does not know: per-line refuses it.
            recheck |= mentions.maybe(nulls & chunk.has_null, name)
        for code, kind in enumerate(self.kinds):
            rows = kind_of_row == code
            if rows.any():
                self._check_kind_rules(kind, rows, values, recheck, now)
                self._check_family_sizes(kind, rows, chunk, recheck)
        self._recheck_null_only_keys(kind_of_row, chunk, values, mentions, recheck)
        tables: dict[str, pa.Table] = {}
        for code, kind in enumerate(self.kinds):
            keep = (kind_of_row == code) & ~recheck
            if keep.any():
                tables[kind] = self._table(kind, keep, chunk, values, line_numbers, now)
        return CheckedChunk(tables, recheck)

    def _kinds(self, chunk: FlatChunk, recheck: np.ndarray) -> np.ndarray:
        """Kind code per row (index in self.kinds), -1 where unknown (sent back)."""
        dataset = chunk.leaves.get("event.dataset")
        if dataset is None or not pa.types.is_string(dataset.type):
            recheck[:] = True
            return np.full(len(chunk), -1)
        datasets = [d for d, k in self.v.kind_of_dataset.items()]
        codes = pc.index_in(dataset, value_set=pa.array(datasets, pa.string())).fill_null(-1)
        dataset_code = np.asarray(codes, dtype=np.int64)
        to_kind = np.array([self.kinds.index(self.v.kind_of_dataset[d]) for d in datasets] + [-1], dtype=np.int64)
        kind_of_row = to_kind[dataset_code]
        recheck |= kind_of_row < 0
        return kind_of_row

    def _check_column(self, name: str, array: pa.Array, kind_of_row: np.ndarray, chunk: FlatChunk,
                      mentions: _Mentions, recheck: np.ndarray, values: dict[str, pa.Array]) -> None:
        rule = self.rule(name)
        present = _present(array)
        allowed_kind = np.isin(kind_of_row, [i for i, k in enumerate(self.kinds) if k in rule.kinds])
        # A field of another kind (or no kind): refused when present, doubtful when maybe a null.
        recheck |= ~allowed_kind & present
        recheck |= mentions.maybe(~allowed_kind & ~present & chunk.has_null, name)
        if rule.derived or not (allowed_kind & present).any():
            return
        typed, bad = self._typed(rule, array)
        recheck |= bad & present
        if typed is not None:
            values[name] = typed

    def _typed(self, rule: ColumnRule, array: pa.Array) -> tuple[pa.Array | None, np.ndarray]:
        """(values as the store types them, rows whose value the per-line checker would refuse)."""
        t = array.type
        n = len(array)
        everything_bad = np.ones(n, dtype=bool)
        if pa.types.is_null(t):
            return None, np.zeros(n, dtype=bool)
        if rule.array:
            if not (pa.types.is_list(t) and pa.types.is_string(t.value_type)):
                return None, everything_bad
            bad = np.zeros(n, dtype=bool)
            items = pc.list_flatten(array)
            if items.null_count:
                parents = np.asarray(pc.list_parent_indices(array))
                bad[parents[~_present(items)]] = True
            return array, bad
        es_type = rule.es_type
        if es_type == "date":
            if not pa.types.is_string(t):
                return None, everything_bad
            micros, bad = parse_iso_column(array)
            return pa.array(micros, pa.int64(), mask=~_present(array)).cast(_TS_TYPE), bad
        if es_type == "double":
            if pa.types.is_int64(t):
                return array.cast(pa.float64(), safe=False), np.zeros(n, dtype=bool)
            if pa.types.is_float64(t):
                bad = ~np.isfinite(np.asarray(array.fill_null(0.0)))
                return array, bad
            return None, everything_bad
        wanted = _ARROW_OF.get(es_type)
        if wanted is None or t != wanted:
            return None, everything_bad
        return array, np.zeros(n, dtype=bool)  # allowed values and ranges: see _check_kind_rules

    def _check_kind_rules(self, kind: str, rows: np.ndarray, values: dict[str, pa.Array], recheck: np.ndarray,
                          now: Instant) -> None:
        """Required fields, allowed values, ranges, schema version, event.kind, task fields, the clock."""
        v = self.v
        for name in v.required[kind]:
            column = values.get(name)
            recheck |= rows & (~_present(column) if column is not None else True)
        for name, allowed in v.allowed.items():
            column = values.get(name)
            if column is not None:
                listed = np.asarray(pc.is_in(column, value_set=pa.array(sorted(allowed))), dtype=bool)
                recheck |= rows & ~listed & _present(column)
        for name, spec in v.fields.items():
            bounds = spec.get("range")
            column = values.get(name)
            if bounds is None or column is None:
                continue
            # Unsafe: a long beyond 2**53 has no exact double; the bounds are far from there.
            x = np.asarray(column.cast(pa.float64(), safe=False).fill_null(np.nan), dtype=np.float64)
            lo, hi = bounds["min"], bounds["max"]
            with np.errstate(invalid="ignore"):
                ok = (x >= lo) if bounds["min_inclusive"] else (x > lo)
                if hi is not None:
                    ok &= (x <= hi) if bounds["max_inclusive"] else (x < hi)
            recheck |= rows & ~ok & ~np.isnan(x)
        version = values.get("mlmon.schema_version")
        if version is not None:
            recheck |= rows & np.asarray(pc.not_equal(version, v.schema_version).fill_null(False), dtype=bool)
        event_kind = values.get("event.kind")
        if event_kind is not None:
            recheck |= rows & np.asarray(pc.not_equal(event_kind, v.ecs_kind[kind]).fill_null(False), dtype=bool)
        event_id = values.get("event.id")
        if event_id is not None:  # an empty id is refused (see Validator._check_value)
            recheck |= rows & np.asarray(pc.equal(event_id, "").fill_null(False), dtype=bool)
        task_fields = v.task_required.get(kind)
        if task_fields is not None:
            task = values.get("mlmon.model.task")
            if task is None:
                recheck |= rows
            else:
                known = np.zeros(len(rows), dtype=bool)
                for task_name, needed in task_fields.items():
                    of_task = np.asarray(pc.equal(task, task_name).fill_null(False), dtype=bool)
                    known |= of_task
                    for name in needed:
                        column = values.get(name)
                        recheck |= rows & of_task & (~_present(column) if column is not None else True)
                recheck |= rows & ~known
        stamp = values.get("@timestamp")
        if stamp is not None:
            # Within a microsecond of the limit, only nanoseconds decide: leave it to the exact checker.
            limit = (now.seconds + v.future_tolerance) * 1_000_000 + now.nanos // 1000
            micros = np.asarray(stamp.cast(pa.int64()).fill_null(np.iinfo(np.int64).min), dtype=np.int64)
            recheck |= rows & (micros >= limit)

    def _check_family_sizes(self, kind: str, rows: np.ndarray, chunk: FlatChunk, recheck: np.ndarray) -> None:
        """Rows with more fields in a family than allowed (nulls count too, so null lines are doubtful)."""
        by_family: dict[str, list[str]] = {}
        for name in chunk.leaves:
            rule = self.rule(name)
            if rule.family is not None and kind in rule.kinds:
                by_family.setdefault(rule.family, []).append(name)
        for names in by_family.values():
            if len(names) <= self.v.max_family_fields:
                continue
            count = sum(_present(chunk.leaves[n]).astype(np.int64) for n in names)
            recheck |= rows & ((count > self.v.max_family_fields) | chunk.has_null)

    def _recheck_null_only_keys(self, kind_of_row: np.ndarray, chunk: FlatChunk, values: dict[str, pa.Array],
                                mentions: _Mentions, recheck: np.ndarray) -> None:
        """The per-line store adds a column for a family key sent only as null; leave such rows to it.

        Repeated until stable: sending a row back can leave another column null-only.
        """
        while True:
            before = int(recheck.sum())
            for code, kind in enumerate(self.kinds):
                keep = (kind_of_row == code) & ~recheck
                doubtful = keep & chunk.has_null
                if not doubtful.any():
                    continue
                for name, array in chunk.leaves.items():
                    rule = self.rule(name)
                    if rule.family is None or kind not in rule.kinds:
                        continue
                    if name not in values or not (_present(array) & keep).any():
                        recheck |= mentions.maybe(doubtful, name)
            if int(recheck.sum()) == before:
                return

    def _table(self, kind: str, keep: np.ndarray, chunk: FlatChunk, values: dict[str, pa.Array],
               line_numbers: np.ndarray, now: Instant) -> pa.Table:
        mask = pa.array(keep)
        columns: dict[str, pa.Array] = {}
        for name, array in chunk.leaves.items():
            rule = self.rule(name)
            typed = values.get(name)
            if kind not in rule.kinds or rule.derived or typed is None or not (_present(array) & keep).any():
                continue
            columns[name] = typed.filter(mask)
        n_rows = int(keep.sum())
        columns["event.ingested"] = pa.array(np.full(n_rows, now.micros, dtype=np.int64)).cast(_TS_TYPE)
        latency = columns.get("mlmon.prediction.latency_ms")
        if latency is not None:
            columns["mlmon.prediction.latency_bucket"] = self._latency_buckets(latency)
        columns[LINE_COLUMN] = pa.array(line_numbers[keep])
        return pa.table(columns)

    def _latency_buckets(self, latency: pa.Array) -> pa.Array:
        bounds = np.asarray(self.v.latency_bounds, dtype=np.float64)
        x = np.asarray(latency.fill_null(0.0), dtype=np.float64)
        index = np.searchsorted(bounds, x, side="right")  # == bisect_right, as the per-line checker
        labels = pa.array(self.v.latency_labels, pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32), mask=~_present(latency)),
                                              labels).cast(pa.string())


class _Mentions:
    """Does a line mention a key? Only asked about lines holding a null, to tell null from absent."""

    def __init__(self, chunk: FlatChunk) -> None:
        self.lines = chunk.lines

    def maybe(self, rows: np.ndarray, name: str) -> np.ndarray:
        """Subset of ``rows`` whose line may hold the key ``name`` (its last segment, any escape)."""
        if not rows.any():
            return rows
        needle = name.rpartition(".")[2].encode("utf-8") + b'"'
        out = np.zeros(len(rows), dtype=bool)
        for i in np.flatnonzero(rows):
            line = self.lines[i]
            out[i] = needle in line or b"\\" in line
        return out

