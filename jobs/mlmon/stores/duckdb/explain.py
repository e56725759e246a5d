"""Explainability statistics from the embedded DuckDB store.

Each answer is one SQL statement whose result size depends on features or
segment values, never on rows:

- attribution sums per feature over a window of explanation events: one scan
  with ``count / sum(abs) / sum / sum of squares`` per ``mlmon.attributions.<f>``
  column; per segment value when asked (explanations carry no segment: they
  take their prediction's, joined by prediction id);
- a reproducible sample of labelled rows (for the optional permutation importance);
- the ``attribution_references`` table: reference attribution sums, one JSON document per reference.

Fairness asks the performance job's label join (``mlmon.stores.duckdb.labels``), not this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from mlmon.core.perf_stats import AttributionSums
from mlmon.stores.protocols import StoreError
from mlmon.stores.duckdb.schema import (EVENT_TABLES, newest_reference_document, put_reference_document, quote,
                                        reference_table_ddl, table_columns)
from mlmon.core.labels import EXPLANATION_LOOKBACK
from mlmon.core.queries import WindowBatch
from mlmon.stores.duckdb.labels import batch_is_contiguous, window_slot_sql

EXPLANATIONS = EVENT_TABLES["explanation"]
PREDICTIONS = EVENT_TABLES["prediction"]
FEEDBACK = EVENT_TABLES["feedback"]
ATTRIBUTIONS_PREFIX = "mlmon.attributions."
SEGMENT_PREFIX = "mlmon.segment."
NUMERIC_PREFIX = "mlmon.features.numeric."
CATEGORICAL_PREFIX = "mlmon.features.categorical."
ATTRIBUTION_REFERENCES_TABLE = "attribution_references"

_REFERENCES_DDL = reference_table_ddl(ATTRIBUTION_REFERENCES_TABLE)

# Order of feedback events of one prediction: the latest wins, ties broken by event id (so re-runs agree).
_LATEST = f"struct_pack(t := {quote('@timestamp')}, i := {quote('event.id')})"


class DuckDBExplainStore:
    """Explainability / fairness queries on an open DuckDB connection (e.g. ``DuckDBStore.con``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._ensured = False

    # --- attributions -------------------------------------------------------------------------------

    def attribution_features(self, model: str, version: str | None = None) -> list[str]:
        """Feature names with an attribution column (features some explanation event carried)."""
        return sorted(c[len(ATTRIBUTIONS_PREFIX):] for c in table_columns(self.con, EXPLANATIONS)
                      if c.startswith(ATTRIBUTIONS_PREFIX))

    def attribution_sums(self, model: str, start: datetime, end: datetime, *, version: str | None = None,
                         method: str | None = None, features: Sequence[str] = (),
                         segment: tuple[str, str] | None = None) -> dict[str, AttributionSums]:
        """Count, sum |a|, sum a and sum a² per feature over explanation events in ``[start, end)``.

        Unweighted by sample rate on purpose: importance is a mean, which the
        emitter's id-based sampling leaves unbiased, and the drift z-score
        needs the real number of explanations. Features never logged get empty sums.
        ``segment`` = (name, value): only explanations whose prediction (same
        ``mlmon.prediction.id`` and model, logged in ``[start - EXPLANATION_LOOKBACK, end)``)
        has ``mlmon.segment.<name>`` = value.
        """
        return self.attribution_sums_batch(model, WindowBatch(((start, end),)), version=version, method=method,
                                           features=features, segment=segment)[0]

    def attribution_sums_batch(self, model: str, batch: WindowBatch, *, version: str | None = None,
                               method: str | None = None, features: Sequence[str] = (),
                               segment: tuple[str, str] | None = None) -> list[dict[str, AttributionSums]]:
        """:meth:`attribution_sums` of every window of ``batch``, grouped by window slot in one scan; with a
        segment, each explanation's prediction is looked for in its own window's bounds."""
        wanted = list(features) or self.attribution_features(model, version)
        present = set(table_columns(self.con, EXPLANATIONS))
        columns = [f for f in wanted if ATTRIBUTIONS_PREFIX + f in present]
        out = [{f: AttributionSums.empty() for f in wanted} for _ in batch.windows]
        if segment is not None and SEGMENT_PREFIX + segment[0] not in table_columns(self.con, PREDICTIONS):
            return out  # no prediction ever carried this segment
        if not columns:
            return out
        slot = window_slot_sql(batch)
        selects = [slot]
        for f in columns:
            col = quote(ATTRIBUTIONS_PREFIX + f)
            selects += [f"count({col})::DOUBLE", f"coalesce(sum(abs({col})), 0)", f"coalesce(sum({col}), 0)",
                        f"coalesce(sum({col} * {col}), 0)"]
        where, params = _window_where(model, batch.start, batch.end, version)
        if not batch_is_contiguous(batch):
            where += f" AND list_contains($slots, {slot})"
            params["slots"] = list(batch.slots)
        if method is not None:
            where += f" AND {quote('mlmon.explanation.method')} = $method"
            params["method"] = method
        if segment is not None:
            # The explanation's slot, qualified: inside the subquery a bare @timestamp is the prediction's.
            own_slot = slot.replace(quote("@timestamp"), f"e.{quote('@timestamp')}")
            where += " AND " + _segment_clause(batch, own_slot, SEGMENT_PREFIX + segment[0])
            params.update(segment_value=segment[1], predictions_from=params["start"] - EXPLANATION_LOOKBACK)
        try:
            rows = self.con.execute(f"SELECT {', '.join(selects)} FROM {EXPLANATIONS} e WHERE {where} GROUP BY ALL",
                                    params).fetchall()
        except duckdb.Error as err:
            raise StoreError(f"attribution sums query failed: {err}") from err
        position = {s: i for i, s in enumerate(batch.slots)}
        for row in rows:
            sums = out[position[int(row[0])]]
            for i, f in enumerate(columns):
                n, sum_abs, total, sum_sq = (float(v) for v in row[1 + 4 * i: 5 + 4 * i])
                sums[f] = AttributionSums(n, sum_abs, total, sum_sq)
        return out

    # --- labelled rows for permutation importance ---------------------------------------------------------

    def labelled_sample(self, model: str, start: datetime, end: datetime, *, features: Sequence[str],
                        size: int, seed: int, version: str | None = None) -> Any:
        """Up to ``size`` labelled predictions of the window: feature columns (plain names) + ``actual``.

        A uniform reservoir sample with a fixed seed, so a re-run of the window
        draws the same rows. Returns a pandas DataFrame.
        """
        present = table_columns(self.con, PREDICTIONS)
        cols = []
        for f in features:
            for prefix in (NUMERIC_PREFIX, CATEGORICAL_PREFIX):
                if prefix + f in present:
                    cols.append(f"p.{quote(prefix + f)} AS {quote(f)}")
                    break
            else:
                raise StoreError(f"feature {f!r} was never logged for any model in this store")
        where, params = _window_where(model, start, end, version, prefix="p.")
        pid = quote("mlmon.prediction.id")
        sql = f"""
        WITH fb AS (
            SELECT {pid} AS pid, arg_max({quote('mlmon.feedback.actual')}, {_LATEST}) AS actual,
                   arg_max({quote('mlmon.feedback.actual_value')}, {_LATEST}) AS actual_value
            FROM {FEEDBACK} WHERE {quote('mlmon.model.name')} = $model GROUP BY {pid}),
        labelled AS (
            SELECT {', '.join(cols)}, coalesce(fb.actual, CAST(fb.actual_value AS VARCHAR)) AS actual,
                   fb.actual_value AS actual_value, p.{pid} AS pid
            FROM {PREDICTIONS} p JOIN fb ON fb.pid = p.{pid}
            WHERE {where} AND (fb.actual IS NOT NULL OR fb.actual_value IS NOT NULL))
        SELECT * EXCLUDE (pid) FROM labelled ORDER BY hash(pid || $seed::VARCHAR) LIMIT $size"""
        params.update(size=size, seed=seed)
        try:
            return self.con.execute(sql, params).df()
        except duckdb.Error as err:
            raise StoreError(f"labelled sample query failed: {err}") from err

    # --- attribution references ---------------------------------------------------------------------------

    def put_attribution_reference(self, reference_id: str, model: str, version: str, created_at: datetime,
                                  source: str, rows: int, document: Mapping[str, Any]) -> str:
        self._ensure_tables()
        put_reference_document(self.con, ATTRIBUTION_REFERENCES_TABLE, reference_id, model, version, created_at,
                               source, rows, document)
        return reference_id

    def get_attribution_reference(self, model: str, version: str | None = None,
                                  reference_id: str | None = None) -> dict[str, Any] | None:
        """The stored document by id, or the newest for model (and version); None if there is none."""
        self._ensure_tables()
        return newest_reference_document(self.con, ATTRIBUTION_REFERENCES_TABLE, model, version, reference_id)

    def _ensure_tables(self) -> None:
        if not self._ensured:
            self.con.execute(_REFERENCES_DDL)
            self._ensured = True


def _segment_clause(batch: WindowBatch, slot: str, column: str) -> str:
    """A semi-join on the prediction id (explanation events carry no segment of their own): the prediction
    has the segment value and was logged in ``[start - EXPLANATION_LOOKBACK, end)`` of the explanation's window."""
    pid, ts = quote("mlmon.prediction.id"), quote("@timestamp")
    t0 = int(batch.start.timestamp()) * 1_000_000 + batch.start.microsecond
    size = batch.size // timedelta(microseconds=1)
    lookback = EXPLANATION_LOOKBACK // timedelta(microseconds=1)
    return (f"EXISTS (SELECT 1 FROM {PREDICTIONS} p WHERE p.{pid} = e.{pid} "
            f"AND p.{quote('mlmon.model.name')} = $model AND p.{ts} >= $predictions_from AND p.{ts} < $end "
            f"AND epoch_us(p.{ts}) >= {t0:d} + {slot} * {size:d} - {lookback:d} "
            f"AND epoch_us(p.{ts}) < {t0:d} + ({slot} + 1) * {size:d} "
            f"AND p.{quote(column)} = $segment_value)")


def _window_where(model: str, start: datetime, end: datetime, version: str | None,
                  prefix: str = "") -> tuple[str, dict[str, Any]]:
    for t in (start, end):
        if t.tzinfo is None:
            raise ValueError(f"naive datetime {t!r}: window bounds must be timezone-aware (UTC)")
    clauses = [f"{prefix}{quote('mlmon.model.name')} = $model", f"{prefix}{quote('@timestamp')} >= $start",
               f"{prefix}{quote('@timestamp')} < $end"]
    params: dict[str, Any] = {"model": model, "start": start.astimezone(timezone.utc),
                              "end": end.astimezone(timezone.utc)}
    if version is not None:
        clauses.append(f"{prefix}{quote('mlmon.model.version')} = $version")
        params["version"] = version
    return " AND ".join(clauses), params
