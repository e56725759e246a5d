"""Parse a run of JSON lines into one flat Arrow table, or say it cannot be done faithfully.

Arrow's JSON reader (C++, multi-threaded) reads a whole chunk of lines at once.
It is not a drop-in for ``orjson.loads`` line by line, so every difference is
caught here or in :mod:`mlmon.ingest.fast_checks`, and such lines go to the
exact per-line checker instead:

- Arrow reads ``NaN`` / ``Infinity`` literals (orjson refuses them): caught by
  the finiteness check on every float column.
- Two objects on one line become two rows; blank lines vanish: the row count
  must equal the line count, else the chunk is :class:`Unprovable`.
- Arrow cannot tell ``"k": null`` from an absent key: each line records whether
  it holds a null value at all; only such lines need the distinction.
- Arrow infers timestamps from date-like strings: those columns are learnt and
  re-read as strings (``explicit_schema``), keeping the exact text. Only paths
  where the contract has text are learnt: one odd line with a date where an
  object belongs would otherwise make every later chunk fail to read.
- Anything Arrow refuses (bad JSON, a type changing between lines, duplicate
  keys, lone surrogates) raises, and the caller splits the chunk.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

#: Escaped UTF-16 surrogates: orjson and Arrow disagree on some, so such lines go per-line.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: A JSON null value (after ":", "," or "["); the text "null" inside a string does not count.
_NULL_VALUE = re.compile(rb"[:,\[][ \t\r\n]*null")
_PLAIN_LEAVES = (pa.types.is_string, pa.types.is_int64, pa.types.is_float64, pa.types.is_boolean,
                 pa.types.is_null, pa.types.is_list)


class Unprovable(Exception):
    """This chunk cannot be read faithfully as a whole; split it or check its lines one by one."""


@dataclass
class FlatChunk:
    """One parsed chunk: dotted leaf columns, struct null masks, and per-line facts."""

    lines: list[bytes]
    leaves: dict[str, pa.Array]
    #: Dotted name of every object -> True where it (or a parent) is null or absent.
    struct_nulls: dict[str, np.ndarray]
    #: True where the line holds a JSON null value (so a null column may be a present key).
    has_null: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)


def surrogate_escapes(text: bytes) -> bool:
    return _SURROGATE_ESCAPE.search(text) is not None


class ChunkParser:
    """Reads chunks with Arrow, remembering which object paths must stay strings.

    ``may_be_text(dotted name)`` says whether the contract allows text there; a
    date-like column anywhere else makes its chunk :class:`Unprovable` instead.
    """

    def __init__(self, may_be_text: Callable[[str], bool] = lambda name: True) -> None:
        self._may_be_text = may_be_text
        self._string_paths: set[tuple[str, ...]] = {("@timestamp",)}
        self._schema = _schema_for(self._string_paths)
        self._learning = threading.Lock()  # chunks are parsed on several threads

    def parse(self, lines: list[bytes], buffer: bytes) -> FlatChunk:
        """Non-blank lines, UTF-8, free of ``\\r`` and surrogate escapes; ``buffer`` is them as
        one newline-delimited text."""
        table = self._read(buffer, len(lines))
        learned = _timestamp_paths(table.schema)
        if learned:
            if not all(self._may_be_text(".".join(path)) for path in learned):
                raise Unprovable("a date-like string where the contract has no text field")
            with self._learning:
                self._string_paths |= learned
                self._schema = _schema_for(self._string_paths)
            table = self._read(buffer, len(lines))
            if _timestamp_paths(table.schema):
                raise Unprovable("a date-like string column could not be kept as text")
        leaves, struct_nulls = _flatten(table)
        return FlatChunk(lines, leaves, struct_nulls, _lines_holding_null(lines, leaves, struct_nulls))

    def _read(self, buffer: bytes, expected_rows: int) -> pa.Table:
        try:
            # One thread per chunk: the caller parses chunks side by side, which measured
            # faster (and less CPU) here than Arrow splitting each chunk across threads.
            table = pj.read_json(io.BytesIO(buffer), read_options=pj.ReadOptions(use_threads=False),
                                 parse_options=pj.ParseOptions(explicit_schema=self._schema,
                                                               unexpected_field_behavior="infer"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise Unprovable(str(exc)) from None
        if table.num_rows != expected_rows:  # two objects on a line, or a line Arrow skipped
            raise Unprovable(f"{table.num_rows} rows from {expected_rows} lines")
        return table


def _lines_holding_null(lines: list[bytes], leaves: dict[str, pa.Array],
                        struct_nulls: dict[str, np.ndarray]) -> np.ndarray:
    """True where the line holds a JSON null value.

    A null value leaves a null in its column (or a null item in its list), so only
    rows with a null somewhere are searched; the usual batch, every field present,
    costs no text scan at all.
    """
    n = len(lines)
    maybe = np.zeros(n, dtype=bool)
    for array in leaves.values():
        if array.null_count:
            maybe |= ~np.asarray(array.is_valid(), dtype=bool)
        if pa.types.is_list(array.type):
            items = pc.list_flatten(array)
            if items.null_count:
                parents = np.asarray(pc.list_parent_indices(array))
                maybe[parents[~np.asarray(items.is_valid(), dtype=bool)]] = True
    for nulls in struct_nulls.values():
        maybe |= nulls
    found = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(maybe):
        found[i] = _NULL_VALUE.search(lines[i]) is not None
    return found


def _schema_for(paths: set[tuple[str, ...]]) -> pa.Schema:
    """Nested explicit schema holding the given paths as strings; other fields are inferred."""
    tree: dict[str, dict | None] = {}
    for path in sorted(paths):
        node = tree
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if child is None:  # a path is both a leaf and an object: keep the leaf
                break
            node = child
        else:
            node.setdefault(path[-1], None)

    def fields(node: dict[str, dict | None]) -> list[pa.Field]:
        return [pa.field(k, pa.string() if v is None else pa.struct(fields(v))) for k, v in node.items()]

    return pa.schema(fields(tree))


def _timestamp_paths(schema: pa.Schema) -> set[tuple[str, ...]]:
    """Paths of leaves whose type is not one the checks know (e.g. an inferred timestamp)."""
    found: set[tuple[str, ...]] = set()
    pending: list[tuple[pa.Field, tuple[str, ...]]] = [(field, (field.name,)) for field in schema]
    while pending:  # a loop, not recursion: no depth of input can exhaust the stack
        field, path = pending.pop()
        if pa.types.is_struct(field.type):
            pending.extend((child, (*path, child.name)) for child in field.type)
        elif pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            found.add(path)
    return found


def _flatten(table: pa.Table) -> tuple[dict[str, pa.Array], dict[str, np.ndarray]]:
    """Dotted leaf columns (parent nulls merged in) and null masks of every object."""
    leaves: dict[str, pa.Array] = {}
    struct_nulls: dict[str, np.ndarray] = {}
    pending: list[tuple[str, pa.Array]] = [(n, c.combine_chunks() if c.num_chunks != 1 else c.chunk(0))
                                           for n, c in zip(table.column_names, table.columns)]
    while pending:
        name, array = pending.pop()
        if pa.types.is_struct(array.type):
            if name in struct_nulls or name in leaves:
                raise Unprovable(f"field {name!r} appears both nested and dotted")
            struct_nulls[name] = np.asarray(array.is_null(), dtype=bool)
            children = array.flatten()  # StructArray.flatten merges the parent's validity
            pending.extend((f"{name}.{array.type.field(i).name}", child) for i, child in enumerate(children))
        elif name in leaves or name in struct_nulls:
            raise Unprovable(f"field {name!r} appears both nested and dotted")
        elif not any(test(array.type) for test in _PLAIN_LEAVES):
            raise Unprovable(f"field {name!r} has type {array.type}")
        else:
            leaves[name] = array
    for name in struct_nulls:
        if name in leaves:
            raise Unprovable(f"field {name!r} appears both nested and dotted")
    return leaves, struct_nulls
