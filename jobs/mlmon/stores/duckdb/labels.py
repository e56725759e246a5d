"""Label join on the embedded store: SQL over the ``predictions`` and ``feedback`` tables.

One pass joins the window's predictions to the latest feedback of each
(``arg_max`` by feedback time, a hash join on the prediction id, restricted to
the window's ids) into a temporary table; small GROUP BY queries then turn it
into ``mlmon.core.perf_stats`` objects. Nothing but those statistics reaches Python.
The same join answers all traffic and every segment a job asks together
(``labelled_windows_by_segment``): its statistics group by (window, part, value).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from mlmon.core.perf_stats import (LOG_LOSS_EPS, CbpeStats, ClassificationStats, ConfusionCounts, Histogram, LogLossSums,
                              PredictedScoreBins, RegressionSums, ScoreBins)
from mlmon.stores.protocols import StoreError
from mlmon.stores.duckdb.schema import EVENT_TABLES, quote, table_columns
from mlmon.core.labels import (DELAY_EDGES_S, LabelledWindow, LabelQuery, OrphanFeedback, SegmentedWindows)
from mlmon.core.queries import WindowBatch, WindowInputs

PREDICTIONS = EVENT_TABLES["prediction"]
FEEDBACK = EVENT_TABLES["feedback"]
PERFORMANCE_REFERENCES_TABLE = "performance_references"
_JOINED = "_mlmon_perf_joined"
_ORPHAN_EXAMPLES = 5
#: Predictions joined in one pass at most (a window above it is joined alone): bounds the joined table's memory.
MAX_JOIN_ROWS = 2_000_000
#: (window slot, part, segment value): the key of every grouped answer of the join (see ``_Parts``).
Cell = tuple[int, int, str]
#: Answer of ``labelled_windows_by_segment``: None (all traffic) or a segment -> per window, its values.
SegmentedBatches = dict[str | None, list[SegmentedWindows]]

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


def bin_sql(x: str, edges_param: str, k: int, guess: str) -> str:
    """0-based bin of ``x`` (already inside [edges[0], edges[-1]]) under perf_stats' convention.

    ``guess`` is an arithmetic estimate (floor of the scaled value) that rounding
    can put one bin off at an exact edge; comparing with the edges themselves
    fixes it, so SQL bins equal numpy's ``searchsorted`` bins exactly.
    """
    g = f"least(greatest(CAST(floor({guess}) AS BIGINT), 0), {k - 1})"
    return (f"(CASE WHEN {g} < {k - 1} AND {x} >= list_extract({edges_param}, {g} + 2) THEN {g} + 1 "
            f"WHEN {g} > 0 AND {x} < list_extract({edges_param}, {g} + 1) THEN {g} - 1 ELSE {g} END)")


def _uniform_guess(x: str, edges: tuple[float, ...]) -> str:
    lo, hi = edges[0], edges[-1]
    return f"(({x}) - {lo!r}) * {(len(edges) - 1) / (hi - lo)!r}"


def _delay_guess(x: str) -> str:
    # DELAY_EDGES_S: [0, e1) then geometric; bin i >= 1 starts at e1 * r^(i-1).
    first, last, k = DELAY_EDGES_S[1], DELAY_EDGES_S[-1], len(DELAY_EDGES_S) - 1
    ratio = (last / first) ** (1.0 / (k - 1))
    return f"(CASE WHEN {x} < {first!r} THEN 0 ELSE 1 + ln({x} / {first!r}) / ln({ratio!r}) END)"


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
        try:
            for piece in self._bounded(query.model, query.version, batch):
                params: dict[str, Any] = {"model": query.model, "start": piece.start, "end": piece.end}
                try:
                    self._join(query, piece, pcols, parts, params)
                    for name, found in zip(parts.names, self._statistics(query, piece, parts)):
                        out[name] += found
                finally:
                    self.con.execute(f"DROP TABLE IF EXISTS {_JOINED}")
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

    def _join(self, query: LabelQuery, batch: WindowBatch, pcols: Mapping[str, str], parts: _Parts,
              params: dict[str, Any]) -> None:
        def col(name: str) -> str:
            return quote(name) if name in pcols else "NULL"

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
        select = [f"{slot} AS slot", f"{quote('mlmon.prediction.id')} AS pid", f"{quote('@timestamp')} AS pts",
                  *(f"{quote(f'mlmon.segment.{s}')} AS seg{i}" for i, (s, _) in enumerate(parts.segments)),
                  f"1.0 / coalesce({quote('mlmon.sample_rate')}, 1.0) AS w"]
        if query.task == "classification":
            select.append(f"{col('mlmon.prediction.label')} AS pred")
            if query.multiclass:
                select += [f"CAST({col(f'mlmon.prediction.scores.{c}')} AS DOUBLE) AS s{i}"
                           for i, c in enumerate(query.classes)]
            else:
                select.append(f"CAST({col('mlmon.prediction.score')} AS DOUBLE) AS s0")
            actual = quote("mlmon.feedback.actual")
        else:
            select.append(f"{col('mlmon.prediction.value')} AS pval")
            actual = quote("mlmon.feedback.actual_value")
        latest = f"struct_pack(t := {quote('@timestamp')}, e := {quote('event.id')})"
        lo, hi = query.score_edges[0], query.score_edges[-1]
        clipped = "".join(f", least(greatest(p.{column}, {lo!r}), {hi!r}) AS {column}_clipped"
                          for _, column in self._score_columns(query)) if query.task == "classification" else ""
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {_JOINED} AS
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
                GROUP BY ALL),
            j AS (
                SELECT p.*, f.actual, f.fts, coalesce(f.n_feedback, 0) AS n_feedback,
                       (epoch_ms(f.fts) - epoch_ms(p.pts)) / 1000.0 AS delay{clipped}
                FROM p LEFT JOIN f USING (pid))
            SELECT *, {', '.join(self._bins(query, params))} FROM j""", params)

    def _bins(self, query: LabelQuery, params: dict[str, Any]) -> list[str]:
        """Bins the statistics group by, computed once per joined row (every part and query reads them): the
        label delay's (-1: underflow, feedback stamped before its prediction; ``len(DELAY_EDGES_S) - 1``: past
        the last edge) and, for classification, each clipped score's (columns ``s<i>_clipped``)."""
        edges = DELAY_EDGES_S
        k = len(edges) - 1
        params["delay_edges"] = list(edges)
        bins = [f"CASE WHEN delay < 0 THEN -1 WHEN delay > {edges[-1]!r} THEN {k} "
                f"ELSE {bin_sql('delay', '$delay_edges', k, _delay_guess('delay'))} END AS delay_bin"]
        if query.task == "classification":
            score_edges = query.score_edges
            params["score_edges"] = list(score_edges)
            for _, column in self._score_columns(query):
                clipped = f"{column}_clipped"
                guess = _uniform_guess(clipped, score_edges)
                bins.append(f"{bin_sql(clipped, '$score_edges', len(score_edges) - 1, guess)} AS {column}_bin")
        return bins

    def _statistics(self, query: LabelQuery, batch: WindowBatch,
                    parts: _Parts) -> list[list[dict[str, LabelledWindow]]]:
        """Per part (all traffic, then each segment) and window of ``batch`` (in order): segment value -> its
        statistics. Every query below groups by the cells of ``parts``; their answers are keyed the same way."""
        lab = "actual IS NOT NULL AND pred IS NOT NULL" if query.task == "classification" \
            else "actual IS NOT NULL AND pval IS NOT NULL"
        totals = self._rows(f"""
            SELECT slot, part, seg, count(*), fsum(w), count(*) FILTER (WHERE {lab}),
                   coalesce(fsum(w) FILTER (WHERE {lab}), 0), CAST(sum(greatest(n_feedback - 1, 0)) AS BIGINT)
            FROM {parts.source} GROUP BY slot, part, seg ORDER BY slot, part, seg""", parts)
        if parts.overall:
            seen = {r[0] for r in totals if r[1] == 0}
            totals += [(s, 0, "", 0, 0.0, 0, 0.0, 0) for s in batch.slots if s not in seen]
        delays = self._delays(lab, parts)
        if query.task == "classification":
            per_seg = self._classification(query, lab, parts, {(r[0], r[1], r[2]): float(r[4] or 0.0) for r in totals})
            predicted = self._predicted(parts)
            cbpe = self._cbpe(query, parts) if query.cbpe else {}
        else:
            sums = self._regression(query, lab, parts)
        found: dict[tuple[int, int], dict[str, LabelledWindow]] = {}
        for slot, part, seg, rows, n, lrows, nlab, dupes in totals:
            key = (slot, part, seg)
            common: dict[str, Any] = dict(rows=int(rows), n_predictions=float(n or 0.0), labelled_rows=int(lrows),
                                          n_labelled=float(nlab), duplicate_feedback=int(dupes or 0),
                                          delay=delays.get(key) or _empty_delay())
            if query.task == "classification":
                window = LabelledWindow(**common, classification=per_seg[key], cbpe=cbpe.get(key, {}),
                                        predicted=predicted.get(key, {}))
            else:
                window = LabelledWindow(**common, regression=sums.get(key, RegressionSums.empty(query.shift)))
            found.setdefault((part, slot), {})[seg] = window
        return [[found.get((part, s), {}) for s in batch.slots] for part in range(len(parts.names))]

    def _rows(self, sql: str, parts: _Parts, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a grouped query whose first columns are the cell (slot, part, seg), typed (int, int, str)."""
        rows = self.con.execute(sql, {**parts.params, **(params or {})}).fetchall()
        return [(int(r[0]), int(r[1]), str(r[2]), *r[3:]) for r in rows]

    def _predicted(self, parts: _Parts) -> dict[Cell, dict[str, float]]:
        """Weighted predictions per predicted label, labelled or not, per cell."""
        out: dict[Cell, dict[str, float]] = {}
        for slot, part, seg, pred, n in self._rows(
                f"SELECT slot, part, seg, pred, fsum(w) FROM {parts.source} WHERE pred IS NOT NULL "
                "GROUP BY slot, part, seg, pred ORDER BY slot, part, seg, pred", parts):
            out.setdefault((slot, part, seg), {})[str(pred)] = float(n)
        return out

    def _delays(self, lab: str, parts: _Parts) -> dict[Cell, Histogram]:
        rows = self.con.execute(f"""
            SELECT slot, part, seg, delay_bin AS b, fsum(w) AS v0 FROM {parts.source}
            WHERE {lab} AND fts IS NOT NULL GROUP BY slot, part, seg, b ORDER BY slot, part, seg""",
                                parts.params).fetchnumpy()
        return _histograms(DELAY_EDGES_S, rows)

    def _score_columns(self, query: LabelQuery) -> list[tuple[str, str]]:
        """(class, column of its score in the joined table)."""
        if query.multiclass:
            return [(c, f"s{i}") for i, c in enumerate(query.classes)]
        return [(query.positive_label, "s0")]

    def _classification(self, query: LabelQuery, lab: str, parts: _Parts,
                        segments: Mapping[Cell, float]) -> dict[Cell, ClassificationStats]:
        """Per cell -> its weighted prediction count: confusion, score bins, log loss."""
        pairs: dict[Cell, dict[tuple[str, str], float]] = {s: {} for s in segments}
        for slot, part, seg, actual, pred, n in self._rows(
                f"SELECT slot, part, seg, actual, pred, fsum(w) FROM {parts.source} WHERE {lab} "
                f"GROUP BY slot, part, seg, actual, pred", parts):
            pairs.setdefault((slot, part, seg), {})[(str(actual), str(pred))] = float(n)
        edges = query.score_edges
        k = len(edges) - 1
        scores: dict[Cell, dict[str, ScoreBins]] = {s: {} for s in segments}
        for cls, column in self._score_columns(query):
            rows = self.con.execute(f"""
                WITH x AS (SELECT *, {column}_clipped AS s, {column}_bin AS b, actual = $cls AS pos FROM {parts.source}
                           WHERE {lab} AND {column} IS NOT NULL)
                SELECT slot, part, seg, b,
                       coalesce(fsum(w) FILTER (WHERE pos), 0) AS v0, coalesce(fsum(w) FILTER (WHERE NOT pos), 0) AS v1,
                       fsum(w * s) AS v2
                FROM x GROUP BY slot, part, seg, b ORDER BY slot, part, seg""",
                                    {**parts.params, "cls": cls}).fetchnumpy()
            for key, (pos, neg, ssum) in _binned(rows, k, 3).items():
                scores.setdefault(key, {})[cls] = ScoreBins(edges, pos, neg, ssum)
        log_loss = self._log_loss(query, lab, parts)
        return {key: ClassificationStats(ConfusionCounts.from_pairs(pairs.get(key, {})), n,
                                         scores.get(key, {}), log_loss.get(key))
                for key, n in segments.items()}

    def _log_loss(self, query: LabelQuery, lab: str, parts: _Parts) -> dict[Cell, LogLossSums]:
        if query.multiclass:
            cases = " ".join(f"WHEN $c{i} THEN s{i}" for i in range(len(query.classes)))
            # An actual class without a score column gets probability 0 (clipped to eps), as a model that never
            # scored it deserves; a row missing its scores is left out.
            p_actual = f"CASE actual {cases} ELSE 0.0 END"
            present = " AND ".join(f"s{i} IS NOT NULL" for i in range(len(query.classes)))
            params: dict[str, Any] = {f"c{i}": c for i, c in enumerate(query.classes)}
        else:
            p_actual = "CASE WHEN actual = $pos THEN s0 ELSE 1.0 - s0 END"
            present = "s0 IS NOT NULL"
            params = {"pos": query.positive_label}
        rows = self._rows(f"""
            SELECT slot, part, seg,
                   fsum(w * -ln(least(greatest({p_actual}, {LOG_LOSS_EPS!r}), {1.0 - LOG_LOSS_EPS!r}))), fsum(w)
            FROM {parts.source} WHERE {lab} AND {present} GROUP BY slot, part, seg""", parts, params)
        return {(slot, part, seg): LogLossSums(float(nll), float(n)) for slot, part, seg, nll, n in rows}

    def _cbpe(self, query: LabelQuery, parts: _Parts) -> dict[Cell, dict[str, CbpeStats]]:
        """Raw-score bins of every prediction (labelled or not), split by predicted class, per class."""
        edges = query.score_edges
        k = len(edges) - 1
        out: dict[Cell, dict[str, CbpeStats]] = {}
        for cls, column in self._score_columns(query):
            rows = self.con.execute(f"""
                WITH x AS (SELECT *, {column}_clipped AS s, {column}_bin AS b, coalesce(pred = $cls, FALSE) AS pp
                           FROM {parts.source} WHERE {column} IS NOT NULL)
                SELECT slot, part, seg, pp, b, fsum(w) AS v0, fsum(w * s) AS v1
                FROM x GROUP BY slot, part, seg, pp, b ORDER BY slot, part, seg""",
                                    {**parts.params, "cls": cls}).fetchnumpy()
            # Both sides in one pass: predicted positive in bins [0, k), negative in [k, 2k) (a cell present on
            # one side only gets empty bins on the other).
            both = {**rows, "b": np.where(rows["pp"], rows["b"], rows["b"] + k)}
            for key, bins in _binned(both, 2 * k, 2).items():
                (n1, t1), (n0, t0) = bins[:, :k], bins[:, k:]
                out.setdefault(key, {})[cls] = CbpeStats(PredictedScoreBins(edges, n1, t1),
                                                         PredictedScoreBins(edges, n0, t0))
        return out

    def _regression(self, query: LabelQuery, lab: str, parts: _Parts) -> dict[Cell, RegressionSums]:
        # Actuals' sums are centred on each cell's own mean (k), whatever query.shift says: with
        # actuals like 1e6 + N(0, 1), sums around a far shift (0, when there is no reference) lose R².
        rows = self._rows(f"""
            WITH x AS (SELECT slot, part, seg, w, pval - actual AS e, actual AS y FROM {parts.source} WHERE {lab}),
                 c AS (SELECT slot, part, seg, coalesce(fsum(w * y) / nullif(fsum(w), 0), $shift) AS k FROM x
                       GROUP BY slot, part, seg)
            SELECT slot, part, seg, fsum(w), fsum(w * e), fsum(w * abs(e)), fsum(w * e * e), fsum(w * (y - k)),
                   fsum(w * (y - k) * (y - k)),
                   coalesce(fsum(w * abs(e) / abs(y)) FILTER (WHERE y <> 0), 0),
                   coalesce(fsum(w) FILTER (WHERE y <> 0), 0), any_value(k)
            FROM x JOIN c USING (slot, part, seg) GROUP BY slot, part, seg""", parts, {"shift": query.shift})
        hists = self._error_histograms(query, lab, parts)
        out: dict[Cell, RegressionSums] = {}
        for slot, part, seg, *sums in rows:
            n, s_e, s_abs, s_sq, s_y, s_yy, s_ape, n_ape, k = (float(v) for v in sums)
            key = (slot, part, seg)
            out[key] = RegressionSums(n, s_e, s_abs, s_sq, s_y, s_yy, s_ape, n_ape, shift=k,
                                      error_histogram=hists.get(key) if query.error_edges else None)
        return out

    def _error_histograms(self, query: LabelQuery, lab: str, parts: _Parts) -> dict[Cell, Histogram]:
        edges = query.error_edges
        if edges is None:
            return {}
        k = len(edges) - 1
        # Bin -1 is underflow, k overflow.
        rows = self.con.execute(f"""
            WITH x AS (SELECT slot, part, seg, w, pval - actual AS e FROM {parts.source} WHERE {lab})
            SELECT slot, part, seg, CASE WHEN e < {edges[0]!r} THEN -1 WHEN e > {edges[-1]!r} THEN {k}
                                         ELSE {bin_sql('e', '$edges', k, _uniform_guess('e', edges))} END AS b,
                   fsum(w) AS v0
            FROM x GROUP BY slot, part, seg, b ORDER BY slot, part, seg""",
                                {**parts.params, "edges": list(edges)}).fetchnumpy()
        return _histograms(edges, rows)

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

    ``source`` is the joined table once per part (a row of a segment part only when the row carries the
    segment, one of the values asked if any), with columns ``part`` and ``seg``: every statistic groups by
    (slot, part, seg), so one join answers each part as if it had been asked alone.
    """

    overall: bool
    segments: tuple[tuple[str, tuple[str, ...] | None], ...]

    @property
    def names(self) -> list[str | None]:
        return [*([None] if self.overall else []), *(s for s, _ in self.segments)]

    @property
    def source(self) -> str:
        branches = [f"SELECT 0 AS part, '' AS seg, * FROM {_JOINED}"] if self.overall else []
        for i, (_, values) in enumerate(self.segments):
            asked = f" AND list_contains($segment_values{i}, seg{i})" if values is not None else ""
            branches.append(f"SELECT {i + self.overall:d} AS part, CAST(seg{i} AS VARCHAR) AS seg, * FROM {_JOINED} "
                            f"WHERE seg{i} IS NOT NULL{asked}")
        return f"({' UNION ALL '.join(branches)})"

    @property
    def params(self) -> dict[str, list[str]]:
        return {f"segment_values{i}": list(values) for i, (_, values) in enumerate(self.segments)
                if values is not None}


def _binned(rows: Mapping[str, np.ndarray], k: int, values: int) -> dict[Cell, np.ndarray]:
    """Per cell: ``values`` rows of ``k`` bins (0.0 where no row), from the columns ``slot, part, seg, b``
    and ``v0``, ``v1`` ... of rows ordered by cell: numpy per cell instead of Python per row."""
    slot, part, seg, b = rows["slot"], rows["part"], rows["seg"], rows["b"]
    cols = [np.asarray(rows[f"v{i}"], dtype=np.float64) for i in range(values)]
    if len(slot) == 0:
        return {}
    first = np.concatenate(([True], (slot[1:] != slot[:-1]) | (part[1:] != part[:-1]) | (seg[1:] != seg[:-1])))
    starts = np.flatnonzero(first)
    # Every cell's bins filled in one assignment per value column, not one per cell.
    cell = np.cumsum(first) - 1
    bins = np.zeros((len(starts), values, k))
    for i, c in enumerate(cols):
        bins[cell, i, b] = c
    keys = zip(slot[starts].tolist(), part[starts].tolist(), seg[starts].tolist())
    return {(int(s), int(p), str(g)): bins[j] for j, (s, p, g) in enumerate(keys)}


def _histograms(edges: tuple[float, ...], rows: Mapping[str, np.ndarray]) -> dict[Cell, Histogram]:
    """Histograms per cell from the columns ``slot, part, seg, b, v0`` (bin -1: underflow, ``len(edges) - 1``:
    overflow) of rows ordered by cell."""
    k = len(edges) - 1
    shifted = {**rows, "b": np.asarray(rows["b"]) + 1}  # underflow, the bins, overflow: k + 2 bins from 0
    return {key: Histogram(edges, counts[1:-1], counts[0], counts[-1])
            for key, (counts,) in _binned(shifted, k + 2, 1).items()}


def _empty_delay() -> Histogram:
    return Histogram(DELAY_EDGES_S, (0.0,) * (len(DELAY_EDGES_S) - 1))
