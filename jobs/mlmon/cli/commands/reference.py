"""``mlmon reference build|list``: reference profiles from training data or a production window."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from mlmon.stores.url import DEFAULT_STORE_URL


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("reference", help="build and list reference profiles (what 'no drift' looks like)")
    sub = parser.add_subparsers(dest="reference_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="profile training data (--data) or a production window (--from/--to)")
    build.add_argument("--model", required=True)
    build.add_argument("--version", required=True, help="model version the profile describes")
    build.add_argument("--data", help="training data: a .parquet or .csv file, one column per feature")
    build.add_argument("--from", dest="start", help="start of a production window (ISO 8601, UTC)")
    build.add_argument("--to", dest="end", help="end of a production window (ISO 8601, UTC)")
    build.add_argument("--store", default=DEFAULT_STORE_URL, help=f"store URL (default: {DEFAULT_STORE_URL})")
    build.add_argument("--bins", type=int, default=1000, help="quantile bins per numeric feature (default: 1000)")
    build.add_argument("--numeric", default="", help="comma-separated columns to treat as numeric")
    build.add_argument("--categorical", default="", help="comma-separated columns to treat as categorical")
    build.add_argument("--exclude", default="", help="comma-separated columns to leave out (ids, the label)")
    build.set_defaults(func=run_build)
    lst = sub.add_parser("list", help="list stored profiles")
    lst.add_argument("--store", default=DEFAULT_STORE_URL)
    lst.add_argument("--model")
    lst.set_defaults(func=run_list)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def run_build(args: argparse.Namespace) -> int:
    from mlmon.core import reference as ref
    from mlmon.jobs.reference import build_from_store, read_table
    from mlmon.stores.protocols import StoreError
    from mlmon.stores.url import open_store

    if bool(args.data) == bool(args.start or args.end):
        print("mlmon reference build: give either --data FILE or --from T1 --to T2", file=sys.stderr)
        return 2
    if args.bins < 2:
        print("mlmon reference build: --bins must be >= 2", file=sys.stderr)
        return 2
    try:
        if args.data:
            frame = read_table(args.data)
            profile = ref.build_from_frame(frame, args.model, args.version, bins=args.bins,
                                           numeric=_csv(args.numeric), categorical=_csv(args.categorical),
                                           exclude=_csv(args.exclude), source=f"file:{args.data}")
        store = open_store(args.store)
        try:
            if not args.data:
                start, end = _time(args.start, "--from"), _time(args.end, "--to")
                profile = build_from_store(store, args.model, args.version, start, end, bins=args.bins)
            ref_id = store.put_reference(profile)
        finally:
            store.close()
    except (ref.ProfileError, StoreError, ValueError) as err:
        print(f"mlmon reference build: {err}", file=sys.stderr)
        return 1
    print(f"{ref_id}\t{profile.rows} rows\t{len(profile.numeric)} numeric, {len(profile.categorical)} categorical")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from mlmon.stores.url import open_store

    store = open_store(args.store, read_only=True)
    try:
        for r in store.list_references(args.model):
            print(f"{r['id']}\t{r['model']}\t{r['version']}\t{r['created_at']}\t{r['rows']}\t{r['source']}")
    finally:
        store.close()
    return 0


def _time(value: str | None, flag: str) -> datetime:
    from mlmon.schedule.runner import parse_time

    if not value:
        raise ValueError(f"{flag} is required with a production window")
    return parse_time(value)
