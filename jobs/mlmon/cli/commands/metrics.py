"""``mlmon metrics``: list stored metric documents as a table, CSV, JSON or JSON lines.

Every filter goes into the store's query, so ``--limit`` counts matching documents; when
the limit cuts the answer, stderr says how many matched.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, get_args

from mlmon.core.documents import Family, Status

FORMATS = ("table", "csv", "json", "jsonl")
COLUMNS = ("window_start", "model", "version", "family", "feature", "class", "segment", "metric", "value",
           "status", "maturity")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("metrics", help="list metric documents (newest window first)")
    parser.add_argument("--store", default=None, help="store URL (default: duckdb:///mlmon.duckdb)")
    parser.add_argument("--model", help="only this model")
    parser.add_argument("--version", dest="model_version", metavar="VERSION", help="only this model version")
    parser.add_argument("--family", help=f"only these families, comma-separated ({', '.join(get_args(Family))})")
    parser.add_argument("--feature", help="only these features, comma-separated")
    parser.add_argument("--status", help=f"only these statuses, comma-separated ({', '.join(get_args(Status))})")
    parser.add_argument("--from", dest="start", help="only windows ending after this time (ISO 8601, UTC)")
    parser.add_argument("--to", dest="end", help="only windows starting before this time (ISO 8601, UTC)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default), csv (the table's columns), json (one array), jsonl (one document a line)")
    parser.add_argument("--limit", type=int, default=200,
                        help="at most this many documents, after the filters (default: 200)")
    parser.set_defaults(func=run)


class UsageError(ValueError):
    pass


def _choices(value: str | None, flag: str, allowed: Sequence[str] | None = None) -> list[str]:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    unknown = [v for v in items if allowed is not None and v not in allowed]
    if unknown:
        raise UsageError(f"{flag} {','.join(unknown)}: unknown; expected one of {', '.join(allowed or ())}")
    return items


def run(args: argparse.Namespace) -> int:
    from mlmon.schedule.runner import parse_time
    from mlmon.stores.url import DEFAULT_STORE_URL, open_store

    try:
        if args.limit < 1:
            raise UsageError(f"--limit {args.limit}: expected a number of documents >= 1")
        statuses = _choices(args.status, "--status", get_args(Status))
        families = _choices(args.family, "--family", get_args(Family))
        features = _choices(args.feature, "--feature")
        start = _time(parse_time, args.start, "--from")
        end = _time(parse_time, args.end, "--to")
        if start is not None and end is not None and not start < end:
            raise UsageError("--from must be before --to")
    except UsageError as err:
        print(f"mlmon metrics: {err}", file=sys.stderr)
        return 2
    url = args.store or DEFAULT_STORE_URL
    store = open_store(url, read_only=True)
    try:
        docs = store.read_metrics(args.model, limit=args.limit, start=start, end=end, version=args.model_version,
                                  families=families, features=features, statuses=statuses)
    finally:
        store.close()
    WRITERS[args.format](docs)
    if not docs:
        print(f"mlmon metrics: no metric documents in {url}" + (" match the filters" if _filtered(args) else ""),
              file=sys.stderr)
    elif docs.total > len(docs):
        print(f"mlmon metrics: showing {len(docs):,} of {docs.total:,}; use --limit {docs.total} for all",
              file=sys.stderr)
    return 0


def _time(parse: Callable[[str], datetime], value: str | None, flag: str) -> datetime | None:
    try:
        return parse(value) if value else None
    except ValueError as err:
        raise UsageError(f"{flag} {err}") from None


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.model, args.model_version, args.family, args.feature, args.status, args.start, args.end))


def row(d: dict[str, Any]) -> tuple[str, ...]:
    """A document's cells, in COLUMNS order ('-' where a field does not apply)."""
    m = d["metric"]
    segment = m.get("segment") or {}
    value = m.get("value")
    return (d["window"]["start"], d["mlmon"]["model"]["name"], d["mlmon"]["model"]["version"], m["family"],
            m.get("feature") or "-", m.get("class") or "-",
            f"{segment['field']}={segment.get('value')}" if segment.get("field") else "-", m["name"],
            "-" if value is None else f"{value:.4g}", m["status"], m.get("maturity") or "-")


def write_table(docs: Sequence[dict[str, Any]]) -> None:
    rows = [COLUMNS, *(row(d) for d in docs)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def write_csv(docs: Sequence[dict[str, Any]]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)
    out.writerows(row(d) for d in docs)


def write_json(docs: Sequence[dict[str, Any]]) -> None:
    sys.stdout.write(json.dumps(list(docs), sort_keys=True, indent=1) + "\n")


def write_jsonl(docs: Sequence[dict[str, Any]]) -> None:
    for d in docs:
        sys.stdout.write(json.dumps(d, sort_keys=True) + "\n")


WRITERS = {"table": write_table, "csv": write_csv, "json": write_json, "jsonl": write_jsonl}
