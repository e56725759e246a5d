"""``mlmon ingest``: JSON-lines event files (or stdin) into the embedded DuckDB store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmon.stores.url import DEFAULT_STORE_URL, StoreURLError, duckdb_file

if TYPE_CHECKING:
    from mlmon.ingest.report import IngestReport
    from mlmon.ingest.validate import Validator


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="validate and store JSON-lines events in the embedded store",
                       description="Apply the Logstash pipeline's contract checks, enrichment and routing to JSON "
                                   "lines and store them in DuckDB. Bad lines go to the dead_letters table with "
                                   "the reason; re-ingesting a file stores nothing twice.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="event files; '-' reads standard input")
    p.add_argument("--store", default=DEFAULT_STORE_URL,
                   help=f"duckdb:///relative/path.duckdb, duckdb:////absolute/path.duckdb or a *.duckdb path, the store the other "
                        f"commands read (default {DEFAULT_STORE_URL})")
    p.add_argument("--namespace", default=None, help="data stream namespace recorded in routing (default 'default')")
    p.add_argument("--follow", action="store_true",
                   help="keep reading the file as it grows, across rotations, until SIGINT/SIGTERM; one PATH, "
                        "which may be a quoted glob ('events-*.jsonl': every matching file, new ones included)")
    p.add_argument("--batch-size", type=int, default=None, help="lines per DuckDB insert (default 50000)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def store_path(url: str) -> Path:
    """The DuckDB file of ``--store``: a ``duckdb:`` URL or a ``*.duckdb`` path, read as every
    other command reads it (:func:`mlmon.stores.url.duckdb_file`)."""
    try:
        path = duckdb_file(url)
    except StoreURLError as err:
        raise SystemExit(f"mlmon ingest: --store {err}") from None
    if path is None:
        raise SystemExit(f"mlmon ingest: unsupported store {url!r}; use duckdb:///path/to/mlmon.duckdb "
                         "(Elasticsearch is fed by Logstash, see logstash/)")
    return Path(path)


def run(args: argparse.Namespace) -> int:
    from mlmon.ingest.core import DEFAULT_BATCH_SIZE, validator_for
    from mlmon.ingest.sources import is_pattern
    from mlmon_logging import contract

    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    if batch_size < 1:
        raise SystemExit("mlmon ingest: --batch-size must be >= 1")
    if args.follow and (len(args.paths) != 1 or args.paths[0] == "-"):
        raise SystemExit("mlmon ingest: --follow takes exactly one file path")
    for name in args.paths:
        if name != "-" and not Path(name).is_file() and not (args.follow and is_pattern(name)):
            raise SystemExit(f"mlmon ingest: no such file: {name}")
    validator = validator_for(args.namespace or contract.DEFAULT_NAMESPACE)
    db = store_path(args.store)
    if args.follow:
        total, status = _follow(args.paths[0], db, validator, batch_size)
    else:
        total, status = _ingest_files(args.paths, db, validator, batch_size), 0
    print(json.dumps(total.as_dict(), sort_keys=True) if args.json else total.summary())
    return status


def _ingest_files(paths: list[str], db: Path, validator: Validator, batch_size: int) -> IngestReport:
    from mlmon.ingest.core import batched, ingest_batches, now_ms, open_store
    from mlmon.ingest.duckdb_sink import DuckDBSink
    from mlmon.ingest.lines import read_lines
    from mlmon.ingest.report import IngestReport

    total = IngestReport()
    with open_store(db) as con:  # a store held past the wait is a StoreError, reported by mlmon.cli.main
        sink = DuckDBSink(con)
        for name in paths:
            stream = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
            source = None if name == "-" else str(Path(name).resolve())
            try:
                lines = read_lines(stream, validator.max_line_bytes)  # bounded memory, whatever a line's size
                for part in ingest_batches(batched(lines, batch_size), sink, validator, now_ms, source):
                    total.merge(part)
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
    return total


def _follow(source: str, db: Path, validator: Validator, batch_size: int) -> tuple[IngestReport, int]:
    """Store what is appended to the file ``source`` (or the files matching it) until SIGINT/SIGTERM;
    (report, exit status)."""
    from mlmon.ingest.follow import NotStored, follow_into_store
    from mlmon.ingest.report import IngestReport
    from mlmon.ingest.sources import StopFlag

    def progress(part: IngestReport) -> None:
        if part.lines:
            print(part.summary(), file=sys.stderr, flush=True)

    stop = StopFlag()
    stop.install()
    try:
        return follow_into_store(source, db, validator, batch_size, stop, progress), 0
    except NotStored as err:
        print(f"mlmon ingest: {err}; they are read again on the next run (which resumes after the last "
              f"batch stored; stored events are not stored twice)", file=sys.stderr)
        return err.report, 1
