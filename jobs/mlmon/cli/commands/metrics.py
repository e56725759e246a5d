"""``mlmon metrics``: list stored metric documents as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("metrics", help="list metric documents")
    parser.add_argument("--store", default=None, help="store URL (default: duckdb:///mlmon.duckdb)")
    parser.add_argument("--model")
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    parser.add_argument("--status", help="only these statuses, comma-separated (e.g. warning,alert)")
    parser.add_argument("--limit", type=int, default=200)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlmon.stores.url import DEFAULT_STORE_URL, open_store

    store = open_store(args.store or DEFAULT_STORE_URL)
    try:
        docs = store.read_metrics(args.model, limit=args.limit)
    finally:
        store.close()
    if args.status:
        wanted = {s.strip() for s in args.status.split(",")}
        docs = [d for d in docs if d["metric"]["status"] in wanted]
    if args.format == "jsonl":
        for d in docs:
            sys.stdout.write(json.dumps(d, sort_keys=True) + "\n")
        return 0
    header = ("window_start", "model", "version", "family", "feature", "metric", "value", "status")
    rows = [(d["window"]["start"], d["mlmon"]["model"]["name"], d["mlmon"]["model"]["version"],
             d["metric"]["family"], d["metric"]["feature"] or "-", d["metric"]["name"],
             "-" if d["metric"]["value"] is None else f"{d['metric']['value']:.4g}", d["metric"]["status"])
            for d in docs]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0
