"""Embedded ingest: the Logstash pipeline's contract checks, enrichment and routing, into DuckDB.

>>> report = ingest_lines(open("events.jsonl", "rb"), "out/mlmon.duckdb")  # doctest: +SKIP
>>> report.stored["prediction"], dict(report.dead_lettered)                  # doctest: +SKIP
"""

from mlmon.ingest.core import DEFAULT_BATCH_SIZE, ingest_lines, open_store
from mlmon.ingest.report import IngestReport
from mlmon.ingest.validate import Accepted, Rejected, Validator, nest

__all__ = ["DEFAULT_BATCH_SIZE", "Accepted", "IngestReport", "Rejected", "Validator", "ingest_lines", "nest",
           "open_store"]
