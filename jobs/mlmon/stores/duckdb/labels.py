"""Label join on the embedded store: SQL over the ``predictions`` and ``feedback`` tables.

One query per pass joins the windows' predictions to the latest feedback of each
(``arg_max`` by feedback time, a hash join on the prediction id, restricted to
the windows' ids) and hands the joined rows over as Arrow columns: the columns
the metrics read (window slot, segments, weight, prediction, scores, actual,
delay, feedback count), never the features. ``mlmon.core.label_folds`` turns
them into ``perf_stats`` objects with one weighted ``bincount`` per statistic
over (window, segment value, bin), so the same pass answers all traffic and
every segment a job asks together (``labelled_windows_by_segment``): one pass
over the rows, not a GROUP BY query per statistic.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlmon.stores.protocols import StoreError
from mlmon.stores.duckdb.schema import EVENT_TABLES, quote, table_columns
from mlmon.core.label_folds import Coded, JoinedRows, empty_window, fold_cells
from mlmon.core.labels import LabelledWindow, LabelQuery, OrphanFeedback, SegmentedWindows
from mlmon.core.queries import WindowBatch, WindowInputs

PREDICTIONS = EVENT_TABLES["prediction"]
FEEDBACK = EVENT_TABLES["feedback"]
PERFORMANCE_REFERENCES_TABLE = "performance_references"
_ORPHAN_EXAMPLES = 5
#: Predictions joined in one pass at most (a window above it is joined alone): bounds the memory of the joined
#: rows, which come into Python as columns (~350 bytes a row at the peak of a pass, the statistics' bins apart;
#: two passes are held while one is folded and the next joined).
MAX_JOIN_ROWS = 1_000_000
#: Answer of ``labelled_windows_by_segment``: None (all traffic) or a segment -> per window, its values.
SegmentedBatches = dict[str | None, list[SegmentedWindows]]
#: One pass of the join: each row's window slot, its value of each segment asked, the rows folded.
_Joined = tuple[np.ndarray, list[Coded], JoinedRows]

#: Per (job key, window start): the fingerprint of the inputs its stored documents were computed from.
FINGERPRINTS_TABLE = "mlmon_window_fingerprints"
_FINGERPRINTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {FINGERPRINTS_TABLE} "
    "(key VARCHAR NOT NULL, window_start TIMESTAMPTZ NOT NULL, fingerprint VARCHAR NOT NULL, "
    "PRIMARY KEY (key, window_start))"
)

_REFERENCES_DDL = (
    f"CREATE TABLE IF NOT EXISTS {PERFORMANCE_REFERENCES_TABLE} "
    "(key VARCHAR PRIMARY KEY, updated_at TIMESTAMPTZ NOT NULL, document JSON NOT NULL)"
)


# Window slots, shared by every batched query of the embedded store (statistics, label join, attributions).
def window_slot_sql(batch: WindowBatch, column: str = "@timestamp") -> str:
    """SQL of an event's window slot in ``batch``: whole window sizes from its first start (integers we
    computed, inlined as literals)."""
    t0 = int(batch.start.timestamp()) * 1_000_000 + batch.start.microsecond
    size = batch.size // timedelta(microseconds=1)
    return f"((epoch_us({quote(column)}) - {t0:d}) // {size:d})"


def batch_is_contiguous(batch: WindowBatch) -> bool:
    """No gap between the windows: the time range alone selects their events."""
    return batch.slots[-1] == len(batch) - 1


class DuckDBLabels:
    """LabelledStore over a DuckDB connection (the one of ``DuckDBStore``, or any with the mlmon tables)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, read_only: bool = False) -> None:
        self.con = con
        #: (model, version, window start, end) -> predictions, as the last ``window_inputs`` counted them.
        self._counted: dict[tuple[str, str | None, datetime, datetime], int] = {}
        # A read-only store (``mlmon report``) can join labels but cannot create the references table.
        if not read_only:
            self.con.execute(_REFERENCES_DDL)
            self.con.execute(_FINGERPRINTS_DDL)

    # --- the join ---------------------------------------------------------------------------

    def labelled_window(self, query: LabelQuery) -> SegmentedWindows:
        return self.labelled_windows(query, WindowBatch(((query.start, query.end),)))[0]

    def labelled_windows(self, query: LabelQuery, batch: WindowBatch) -> list[SegmentedWindows]:
        """The join of every window of ``batch``, as many windows per pass as keep the joined table
        under ``MAX_JOIN_ROWS`` predictions (a window above it is joined alone): statistics are grouped
        by (window slot, segment value), so each window's answer is what it would be asked alone."""
        if not query.segment:
            return self._answer(replace(query, segment=None, segment_values=None), batch, True, {})[None]
        segments = {query.segment: query.segment_values}
        return self._answer(replace(query, segment=None, segment_values=None), batch, False, segments)[query.segment]

    def labelled_windows_by_segment(self, query: LabelQuery, batch: WindowBatch,
                                    segments: Mapping[str, tuple[str, ...] | None]) -> SegmentedBatches:
        """``labelled_windows`` of ``query`` over all traffic (key None) and of each of ``segments`` (segment ->
        the values asked, None for all), from one join per pass: a label round asks all of them together."""
        if query.segment:
            raise ValueError("labelled_windows_by_segment takes the segments apart, not in the query")
        return self._answer(query, batch, True, segments)

    def _answer(self, query: LabelQuery, batch: WindowBatch, overall: bool,
                segments: Mapping[str, tuple[str, ...] | None]) -> SegmentedBatches:
        pcols = table_columns(self.con, PREDICTIONS)
        out: dict[str | None, list[SegmentedWindows]] = {}
        # A segment no prediction ever carried has no values in any window.
        out.update({s: [{} for _ in batch.windows] for s in segments if f"mlmon.segment.{s}" not in pcols})
        parts = _Parts(overall, tuple((s, v) for s, v in segments.items() if s not in out))
        if not parts.names:
            return out
        for name in parts.names:
            out[name] = []
        pieces = self._bounded(query.model, query.version, batch)
        try:
            for piece, (slots, segs, rows) in zip(pieces, self._joins(query, pieces, pcols, parts)):
                for name, found in zip(parts.names, parts.answers(query, piece, slots, segs, rows)):
                    out[name] += found
        except duckdb.Error as err:
            raise StoreError(f"label join of {query.model} [{batch.start}, {batch.end}) failed: {err}") from err
        return out

    def _bounded(self, model: str, version: str | None, batch: WindowBatch) -> list[WindowBatch]:
        """``batch`` cut into runs of windows holding at most ``MAX_JOIN_ROWS`` predictions together."""
        if len(batch) == 1:
            return [batch]
        # Counted by this round's window inputs, when it asked them: a memory guard needs no fresher count.
        counts = {s: self._counted.get((model, version, *window)) for window, s in zip(batch.windows, batch.slots)}
        if None in counts.values():
            slot = window_slot_sql(batch)
            where = (f"{quote('mlmon.model.name')} = ? AND {quote('@timestamp')} >= ? AND {quote('@timestamp')} < ?"
                     + (f" AND {quote('mlmon.model.version')} = ?" if version is not None else ""))
            params = [model, batch.start, batch.end, *([version] if version is not None else [])]
            counts = dict(self.con.execute(f"SELECT {slot}, count(*) FROM {PREDICTIONS} WHERE {where} GROUP BY ALL",
                                           params).fetchall())
        pieces: list[WindowBatch] = []
        current: list[tuple[datetime, datetime]] = []
        rows = 0
        for window, s in zip(batch.windows, batch.slots):
            n = int(counts.get(s) or 0)
            if current and rows + n > MAX_JOIN_ROWS:
                pieces.append(WindowBatch(tuple(current)))
                current, rows = [], 0
            current.append(window)
            rows += n
        pieces.append(WindowBatch(tuple(current)))
        return pieces

    def _joins(self, query: LabelQuery, pieces: Sequence[WindowBatch], pcols: Mapping[str, str],
               parts: _Parts) -> Iterator[_Joined]:
        """Each pass's joined rows, in order. With several passes (big windows), the next one is joined (DuckDB,
        which releases the GIL) while the caller folds the one it was handed (numpy, one core): the fold hides
        behind the join. Memory then holds two passes."""
        if len(pieces) == 1:
            yield self._joined(self.con, query, pieces[0], pcols, parts)
            return
        # A connection of its own, used by the pool's thread alone; it reads what is committed (a round's jobs
        # read committed events: ingest writes them apart).
        cursor = self.con.cursor()
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                ahead = pool.submit(self._joined, cursor, query, pieces[0], pcols, parts)
                for following in [*pieces[1:], None]:
                    current = ahead.result()
                    if following is not None:
                        ahead = pool.submit(self._joined, cursor, query, following, pcols, parts)
                    yield current
        finally:
            cursor.close()

    def _joined(self, con: duckdb.DuckDBPyConnection, query: LabelQuery, batch: WindowBatch,
                pcols: Mapping[str, str], parts: _Parts) -> _Joined:
        """The batch's predictions joined to their latest feedback, as columns: each row's window slot, its
        value of each segment of ``parts`` and the rows ``mlmon.core.label_folds`` folds into statistics."""
        def col(name: str) -> str:
            return quote(name) if name in pcols else "NULL"

        params: dict[str, Any] = {"model": query.model, "start": batch.start, "end": batch.end}
        where = [f"{quote('mlmon.model.name')} = $model", f"{quote('@timestamp')} >= $start",
                 f"{quote('@timestamp')} < $end"]
        slot = window_slot_sql(batch)
        if not batch_is_contiguous(batch):
            where.append(f"list_contains($slots, {slot})")
            params["slots"] = list(batch.slots)
        if query.version is not None:
            where.append(f"{quote('mlmon.model.version')} = $version")
            params["version"] = query.version
        if not parts.overall and len(parts.segments) == 1:
            # One segment alone: only its rows are joined (with all traffic too, every row is).
            (segment, values), = parts.segments
            where.append(f"{quote(f'mlmon.segment.{segment}')} IS NOT NULL")
            if values is not None:
                where.append(f"list_contains($segment_values, {quote(f'mlmon.segment.{segment}')})")
                params["segment_values"] = list(values)
        segs = [f"seg{i}" for i in range(len(parts.segments))]
        select = [f"{slot} AS slot", f"{quote('mlmon.prediction.id')} AS pid", f"{quote('@timestamp')} AS pts",
                  f"{PREDICTIONS}.rowid AS rid",
                  *(f"CAST({quote(f'mlmon.segment.{s}')} AS VARCHAR) AS {seg}" for (s, _), seg in zip(parts.segments, segs)),
                  f"1.0 / coalesce({quote('mlmon.sample_rate')}, 1.0) AS w"]
        if query.task == "classification":
            scores = [f"s{i}" for i in range(len(query.score_classes))]
            select.append(f"CAST({col('mlmon.prediction.label')} AS VARCHAR) AS pred")
            if query.multiclass:
                select += [f"CAST({col(f'mlmon.prediction.scores.{c}')} AS DOUBLE) AS s{i}"
                           for i, c in enumerate(query.classes)]
            else:
                select.append(f"CAST({col('mlmon.prediction.score')} AS DOUBLE) AS s0")
            actual = f"CAST({quote('mlmon.feedback.actual')} AS VARCHAR)"
            joined = ["pred", "actual", *scores]
        else:
            select.append(f"CAST({col('mlmon.prediction.value')} AS DOUBLE) AS pred")
            actual = f"CAST({quote('mlmon.feedback.actual_value')} AS DOUBLE)"
            joined = ["pred", "actual"]
        latest = f"struct_pack(t := {quote('@timestamp')}, e := {quote('event.id')})"
        table = con.sql(f"""
            WITH p AS (SELECT {', '.join(select)} FROM {PREDICTIONS} WHERE {' AND '.join(where)}),
            f AS (
                SELECT {quote('mlmon.prediction.id')} AS pid,
                       arg_max({actual}, {latest}) FILTER (WHERE {actual} IS NOT NULL) AS actual,
                       -- the latest's time: the key orders by time first (a second arg_max costs ~15 %)
                       max({quote('@timestamp')}) FILTER (WHERE {actual} IS NOT NULL) AS fts,
                       count(*) AS n_feedback
                FROM {FEEDBACK}
                WHERE {quote('mlmon.model.name')} = $model
                  AND {quote('mlmon.prediction.id')} IN (SELECT pid FROM p)
                GROUP BY ALL)
            SELECT slot, rid, {', '.join([*segs, 'w', *joined])}, (epoch_ms(f.fts) - epoch_ms(p.pts)) / 1000.0 AS delay,
                   coalesce(f.n_feedback, 0) AS n_feedback
            FROM p LEFT JOIN f USING (pid)""", params=params).to_arrow_table()
        # Rows in the predictions table's order (its row ids): the statistics sum a window's rows in this order, so
        # a window gets the same bits alone and in any batch, and again on the same table (a parallel join hands
        # its rows in any order). The join keeps runs of rows in table order, which a stable
        # sort merges in a few milliseconds; an ORDER BY would sort the joined rows. Columns are made one at a
        # time: one column's copy at most beside the Arrow table.
        order = np.argsort(_numpy(table.column("rid"), np.int64), kind="stable")

        def floats(name: str) -> np.ndarray:
            return _numpy(table.column(name), np.float64)[order]

        def coded(name: str) -> Coded:
            return _coded(table.column(name), order)

        rows = JoinedRows(floats("w"), floats("delay"), _numpy(table.column("n_feedback"), np.int64)[order])
        if query.task == "classification":
            rows = replace(rows, pred=coded("pred"), actual=coded("actual"),
                           scores=np.stack([floats(s) for s in scores], axis=1))
        else:
            rows = replace(rows, value=floats("pred"), actual_value=floats("actual"))
        return _numpy(table.column("slot"), np.int64)[order], [coded(s) for s in segs], rows

    # --- feedback without a prediction ---------------------------------------------------------

    def orphan_feedback(self, model: str, start: datetime, end: datetime,
                        version: str | None = None) -> OrphanFeedback:
        return self.orphan_feedback_batch(model, WindowBatch(((start, end),)), version)[0]

    def orphan_feedback_batch(self, model: str, batch: WindowBatch,
                              version: str | None = None) -> list[OrphanFeedback]:
        """Per window of ``batch``: its feedback events and those whose prediction is not stored (one scan)."""
        params: dict[str, Any] = {"model": model, "start": batch.start, "end": batch.end}
        slot = window_slot_sql(batch).replace(quote("@timestamp"), f"f.{quote('@timestamp')}")
        clauses = ""
        if version is not None:
            clauses += f" AND f.{quote('mlmon.model.version')} = $version"
            params["version"] = version
        if not batch_is_contiguous(batch):
            clauses += f" AND list_contains($slots, {slot})"
            params["slots"] = list(batch.slots)
        pid = quote("mlmon.prediction.id")
        try:
            rows = self.con.execute(f"""
                WITH fb AS (
                    SELECT {slot} AS slot, f.{pid} AS pid, NOT EXISTS (
                        SELECT 1 FROM {PREDICTIONS} p
                        WHERE p.{pid} = f.{pid} AND p.{quote('mlmon.model.name')} = $model) AS orphan
                    FROM {FEEDBACK} f
                    WHERE f.{quote('mlmon.model.name')} = $model AND f.{quote('@timestamp')} >= $start
                      AND f.{quote('@timestamp')} < $end {clauses})
                SELECT slot, count(*), count(*) FILTER (WHERE orphan),
                       list(pid ORDER BY pid) FILTER (WHERE orphan)[1:{_ORPHAN_EXAMPLES}]
                FROM fb GROUP BY slot""", params).fetchall()
        except duckdb.Error as err:
            raise StoreError(f"orphan feedback count of {model} failed: {err}") from err
        by_slot = {int(r[0]): OrphanFeedback(int(r[1]), int(r[2]), tuple(r[3] or ())) for r in rows}
        return [by_slot.get(s, OrphanFeedback(0, 0)) for s in batch.slots]

    # --- what a window's join reads, to skip windows whose inputs did not change --------------------

    def window_inputs(self, model: str, batch: WindowBatch, version: str | None = None) -> list[WindowInputs]:
        """Per window of ``batch``: its prediction count and a digest of the events its label join and its
        orphan-feedback count read (one scan each of predictions and feedback, no statistics)."""
        slot = window_slot_sql(batch)
        fslot = slot.replace(quote("@timestamp"), f"f.{quote('@timestamp')}")
        params: dict[str, Any] = {"model": model, "start": batch.start, "end": batch.end}
        pwhere = fwhere = ""
        if version is not None:
            pwhere += f" AND {quote('mlmon.model.version')} = $version"
            fwhere += f" AND f.{quote('mlmon.model.version')} = $version"
            params["version"] = version
        if not batch_is_contiguous(batch):
            pwhere += f" AND list_contains($slots, {slot})"
            fwhere += f" AND list_contains($slots, {fslot})"
            params["slots"] = list(batch.slots)
        pid, eid, name, ts = (quote(c) for c in ("mlmon.prediction.id", "event.id", "mlmon.model.name", "@timestamp"))
        try:
            rows = self.con.execute(f"""
                WITH p AS (SELECT {slot} AS slot, {pid} AS pid, hash({eid}) AS h FROM {PREDICTIONS}
                           WHERE {name} = $model AND {ts} >= $start AND {ts} < $end {pwhere}),
                     f AS (SELECT {pid} AS pid, count(*) AS n, bit_xor(hash({eid})) AS h FROM {FEEDBACK}
                           WHERE {name} = $model AND {pid} IN (SELECT pid FROM p) GROUP BY ALL),
                     joined AS (SELECT slot, count(*) AS n, bit_xor(p.h) AS ph, coalesce(sum(f.n), 0) AS fn,
                                       bit_xor(f.h) AS fh
                                FROM p LEFT JOIN f USING (pid) GROUP BY slot),
                     fb AS (SELECT {fslot} AS slot, f.{eid} AS eid, f.{pid} AS pid, NOT EXISTS (
                                SELECT 1 FROM {PREDICTIONS} p WHERE p.{pid} = f.{pid} AND p.{name} = $model) AS orphan
                            FROM {FEEDBACK} f
                            WHERE f.{name} = $model AND f.{ts} >= $start AND f.{ts} < $end {fwhere}),
                     stamped AS (SELECT slot, count(*) AS n, bit_xor(hash(eid, orphan)) AS h,
                                        count(*) FILTER (WHERE orphan) AS orphans,
                                        list(pid ORDER BY pid) FILTER (WHERE orphan)[1:{_ORPHAN_EXAMPLES}] AS examples
                                 FROM fb GROUP BY slot)
                SELECT coalesce(joined.slot, stamped.slot), coalesce(joined.n, 0), joined.ph, joined.fn, joined.fh,
                       stamped.n, stamped.h, stamped.orphans, stamped.examples
                FROM joined FULL JOIN stamped ON joined.slot = stamped.slot""", params).fetchall()
        except duckdb.Error as err:
            raise StoreError(f"window inputs of {model} [{batch.start}, {batch.end}) failed: {err}") from err
        # The digest is the columns up to the stamped feedback's hash (as stored fingerprints were made); the
        # orphan count reads the same stamped feedback, as ``orphan_feedback_batch`` counts it.
        by_slot = {int(r[0]): WindowInputs(int(r[1]), "|".join(str(v) for v in r[1:7]),
                                           OrphanFeedback(int(r[5] or 0), int(r[7] or 0), tuple(r[8] or ())))
                   for r in rows}
        self._counted = {(model, version, *window): by_slot[s].predictions if s in by_slot else 0
                         for window, s in zip(batch.windows, batch.slots)}
        return [by_slot.get(s, WindowInputs(0, "", OrphanFeedback(0, 0))) for s in batch.slots]

    def stored_fingerprints(self, key: str, batch: WindowBatch) -> dict[datetime, str]:
        """Window start -> the fingerprint stored for ``key``, for the windows of ``batch`` that have one."""
        if not table_columns(self.con, FINGERPRINTS_TABLE):
            return {}  # a read-only store written before any fingerprint
        rows = self.con.execute(f"SELECT window_start, fingerprint FROM {FINGERPRINTS_TABLE} "
                                "WHERE key = ? AND window_start >= ? AND window_start < ?",
                                [key, batch.start, batch.end]).fetchall()
        return {start.astimezone(timezone.utc): str(fp) for start, fp in rows}

    def put_fingerprints(self, key: str, fingerprints: Sequence[tuple[datetime, str]]) -> None:
        """One INSERT of an Arrow batch (``executemany`` runs a statement per row); the last one per window wins."""
        latest = dict(fingerprints)
        if not latest:
            return
        batch = pa.table({"key": pa.array([key] * len(latest), pa.string()),
                          "window_start": pa.array(list(latest), pa.timestamp("us", tz="UTC")),
                          "fingerprint": pa.array(list(latest.values()), pa.string())})
        cur = self.con.cursor()  # its own registration: never meets a result pending on the shared connection
        try:
            cur.register("_mlmon_fingerprints", batch)
            cur.execute(f"INSERT OR REPLACE INTO {FINGERPRINTS_TABLE} SELECT * FROM _mlmon_fingerprints")
        finally:
            cur.close()

    # --- performance references ----------------------------------------------------------------

    def put_performance_reference(self, key: str, document: Mapping[str, Any]) -> None:
        self.con.execute(f"INSERT OR REPLACE INTO {PERFORMANCE_REFERENCES_TABLE} VALUES (?, ?, ?)",
                         [key, datetime.now(timezone.utc), json.dumps(document, allow_nan=False)])

    def get_performance_reference(self, key: str) -> dict[str, Any] | None:
        if not table_columns(self.con, PERFORMANCE_REFERENCES_TABLE):
            return None  # a read-only store written before any performance job ran
        row = self.con.execute(f"SELECT document FROM {PERFORMANCE_REFERENCES_TABLE} WHERE key = ?",
                               [key]).fetchone()
        return json.loads(row[0]) if row else None


@dataclass(frozen=True)
class _Parts:
    """What one join answers: all traffic (segment value ``""``) and/or segments (by value), as parts 0, 1, ...

    A row of a segment part is a row carrying the segment (one of the values asked, if any): every part's
    cells are (window slot, segment value), so one join answers each part as if it had been asked alone.
    """

    overall: bool
    segments: tuple[tuple[str, tuple[str, ...] | None], ...]

    @property
    def names(self) -> list[str | None]:
        return [*([None] if self.overall else []), *(s for s, _ in self.segments)]

    def answers(self, query: LabelQuery, batch: WindowBatch, slots: np.ndarray, segs: Sequence[Coded],
                rows: JoinedRows) -> list[list[SegmentedWindows]]:
        """Per part (in ``names`` order) and window of ``batch``: segment value -> its statistics."""
        out: list[list[SegmentedWindows]] = []
        if self.overall:
            found = fold_cells(query, rows, slots)
            # A window without predictions is answered too: its coverage documents say so.
            out.append([{"": found.get(s) or empty_window(query)} for s in batch.slots])
        for (_, values), seg in zip(self.segments, segs):
            asked = np.array([values is None or v in values for v in seg.names] + [False])
            keep = np.flatnonzero(asked[seg.codes])   # code -1 (no value) reads the appended False
            width = max(len(seg.names), 1)
            found = fold_cells(query, rows.take(keep), slots[keep] * width + seg.codes[keep])
            by_slot: dict[int, dict[str, LabelledWindow]] = {}
            for cell, window in found.items():
                by_slot.setdefault(cell // width, {})[seg.names[cell % width]] = window
            out.append([by_slot.get(s, {}) for s in batch.slots])
        return out


def _numpy(column: pa.Array | pa.ChunkedArray, dtype: type) -> np.ndarray:
    """A numeric column as numpy (NULL: NaN for floats)."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def _coded(column: pa.Array | pa.ChunkedArray, order: np.ndarray) -> Coded:
    """A text column as codes into its distinct values (-1: NULL), by Arrow's hash encoding, rows in ``order``
    (one dictionary for all chunks: they are joined first)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    encoded = pc.dictionary_encode(array)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)[order].astype(np.int64)
    return Coded(codes, tuple(str(v) for v in encoded.dictionary.to_pylist()))
