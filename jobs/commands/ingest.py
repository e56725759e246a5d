"""``mlmon ingest``: JSON-lines event files (or stdin) into the embedded DuckDB store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_STORE = "duckdb:///out/mlmon.duckdb"


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="validate and store JSON-lines events in the embedded store",
                       description="Apply the Logstash pipeline's contract checks, enrichment and routing to JSON "
                                   "lines and store them in DuckDB. Bad lines go to the dead_letters table with "
                                   "the reason; re-ingesting a file stores nothing twice.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="event files; '-' reads standard input")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"duckdb:///path/to/file.duckdb (default {DEFAULT_STORE})")
    p.add_argument("--namespace", default=None, help="data stream namespace recorded in routing (default 'default')")
    p.add_argument("--follow", action="store_true",
                   help="keep reading the file as it grows, across rotations, until SIGINT/SIGTERM (one file only)")
    p.add_argument("--batch-size", type=int, default=None, help="lines per DuckDB insert (default 50000)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def store_path(url: str) -> Path:
    """``duckdb:///abs/path.duckdb`` or ``duckdb://rel/path.duckdb`` or a plain path -> Path."""
    if url.startswith("duckdb://"):
        rest = url.removeprefix("duckdb://")
        if not rest:
            raise SystemExit("mlmon ingest: --store duckdb:// needs a file path, e.g. duckdb:///data/mlmon.duckdb")
        return Path(rest)
    if "://" in url:
        raise SystemExit(f"mlmon ingest: unsupported store {url!r}; use duckdb:///path/to/mlmon.duckdb "
                         "(Elasticsearch is fed by Logstash, see logstash/)")
    return Path(url)


def run(args: argparse.Namespace) -> int:
    from mlmon.ingest.core import (DEFAULT_BATCH_SIZE, batched, ingest_batch, ingest_batches, now_ms, open_store,
                                   validator_for)
    from mlmon.ingest.duckdb_sink import DuckDBSink
    from mlmon.ingest.report import IngestReport
    from mlmon.ingest.sources import StopFlag, batches_until_idle, follow_lines
    from mlmon_logging import contract

    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    if batch_size < 1:
        raise SystemExit("mlmon ingest: --batch-size must be >= 1")
    if args.follow and (len(args.paths) != 1 or args.paths[0] == "-"):
        raise SystemExit("mlmon ingest: --follow takes exactly one file path")
    for name in args.paths:
        if name != "-" and not Path(name).is_file():
            raise SystemExit(f"mlmon ingest: no such file: {name}")
    validator = validator_for(args.namespace or contract.DEFAULT_NAMESPACE)
    total = IngestReport()
    with open_store(store_path(args.store)) as con:
        sink = DuckDBSink(con)
        if args.follow:
            stop = StopFlag()
            stop.install()
            path = Path(args.paths[0])
            for batch in batches_until_idle(follow_lines(path, stop), batch_size):
                part = ingest_batch(batch, sink, validator, now_ms(), str(path.resolve()))
                total.merge(part)
                if part.lines:
                    print(part.summary(), file=sys.stderr, flush=True)
        else:
            for name in args.paths:
                stream = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
                source = None if name == "-" else str(Path(name).resolve())
                try:
                    for part in ingest_batches(batched(stream, batch_size), sink, validator, now_ms, source):
                        total.merge(part)
                finally:
                    if stream is not sys.stdin.buffer:
                        stream.close()
    print(json.dumps(total.as_dict(), sort_keys=True) if args.json else total.summary())
    return 0
