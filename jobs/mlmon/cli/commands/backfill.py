"""``mlmon backfill --from T1 --to T2``: recompute every window in a time range (overwrites, never duplicates)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlmon.cli.commands.run import EXIT_CODES, EXIT_FAILED, EXIT_USAGE, add_fail_on, outcome, send_alerts


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill", help="compute drift, explainability, performance and fairness for every window between "
                         "two times, also windows older than the performance look-back (maturity judged now; "
                         "re-running overwrites, checkpoints never move back)",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mlmon.yaml")
    parser.add_argument("--store", help="store URL (overrides the config's store)")
    parser.add_argument("--from", dest="start", required=True, help="ISO 8601 start (UTC)")
    parser.add_argument("--to", dest="end", required=True, help="ISO 8601 end (UTC), exclusive")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_fail_on(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlmon.config import model as cfg
    from mlmon.schedule.runner import Runner, parse_time
    from mlmon.stores.protocols import StoreError
    from mlmon.stores.url import DEFAULT_STORE_URL, open_store

    try:
        config = cfg.load(args.config)
        start, end = parse_time(args.start), parse_time(args.end)
        if not start < end:
            raise ValueError(f"--from {args.start} must be before --to {args.end}")
    except (cfg.ConfigError, ValueError) as err:
        print(f"mlmon backfill: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = open_store(args.store or config.store or DEFAULT_STORE_URL)
        try:
            report = Runner(config, store).backfill(start, end, progress=not args.no_progress)
        finally:
            store.close()
    except StoreError as err:
        print(f"mlmon backfill: {err}", file=sys.stderr)
        return EXIT_FAILED
    send_alerts("backfill", config, lambda: open_store(args.store or config.store or DEFAULT_STORE_URL))
    return outcome("backfill", report, args.fail_on)
