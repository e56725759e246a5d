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
from datetime import datetime, timezone
from typing import Any

import duckdb

from mlmon.core.perf_stats import AttributionSums
from mlmon.stores.protocols import StoreError
from mlmon.stores.duckdb.schema import (EVENT_TABLES, newest_reference_document, put_reference_document, quote,
                                        reference_table_ddl, table_columns)
from mlmon.core.labels import EXPLANATION_LOOKBACK

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
        wanted = list(features) or self.attribution_features(model, version)
        present = set(table_columns(self.con, EXPLANATIONS))
        columns = [f for f in wanted if ATTRIBUTIONS_PREFIX + f in present]
        out = {f: AttributionSums.empty() for f in wanted}
        if segment is not None and SEGMENT_PREFIX + segment[0] not in table_columns(self.con, PREDICTIONS):
            return out  # no prediction ever carried this segment
        if not columns:
            return out
        selects = []
        for f in columns:
            col = quote(ATTRIBUTIONS_PREFIX + f)
            selects += [f"count({col})::DOUBLE", f"coalesce(sum(abs({col})), 0)", f"coalesce(sum({col}), 0)",
                        f"coalesce(sum({col} * {col}), 0)"]
        where, params = _window_where(model, start, end, version)
        if method is not None:
            where += f" AND {quote('mlmon.explanation.method')} = $method"
            params["method"] = method
        if segment is not None:
            pid = quote("mlmon.prediction.id")
            # A semi-join on the prediction id: explanation events carry no segment of their own.
            ts = quote("@timestamp")
            where += (f" AND {pid} IN (SELECT {pid} FROM {PREDICTIONS} WHERE {quote('mlmon.model.name')} = $model"
                      f" AND {ts} >= $predictions_from AND {ts} < $end"
                      f" AND {quote(SEGMENT_PREFIX + segment[0])} = $segment_value)")
            params.update(segment_value=segment[1], predictions_from=params["start"] - EXPLANATION_LOOKBACK)
        row = self._one(f"SELECT {', '.join(selects)} FROM {EXPLANATIONS} WHERE {where}", params, "attribution sums")
        for i, f in enumerate(columns):
            n, sum_abs, total, sum_sq = (float(v) for v in row[4 * i: 4 * i + 4])
            out[f] = AttributionSums(n, sum_abs, total, sum_sq)
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

    def _one(self, sql: str, params: Mapping[str, Any], what: str) -> tuple[Any, ...]:
        try:
            row = self.con.execute(sql, dict(params)).fetchone()
        except duckdb.Error as err:
            raise StoreError(f"{what} query failed: {err}") from err
        if row is None:
            raise StoreError(f"{what} query returned no row")
        return row


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
