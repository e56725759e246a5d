"""``mlmon run``: one round of every configured model's jobs, or ``--every 5m`` until stopped."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlmon.config.model import Config
    from mlmon.schedule.runner import RoundReport
    from mlmon.stores.protocols import Store

#: Exit codes of `mlmon run` and `mlmon backfill` (also in README.md, "Command line").
EXIT_CODES = """\
exit codes:
  0  every job ran (the summary says what was evaluated, and why when little or nothing)
  1  a job of some model failed (the others ran; stderr names model and job), or the store failed
  2  usage or configuration error
  3  --fail-on STATUS: a document written, or an alert fired, has that status or a worse one
"""
EXIT_FAILED, EXIT_USAGE, EXIT_GATE = 1, 2, 3


def add_fail_on(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on", choices=("warning", "alert"),
                        help="exit 3 when any document written (or alert fired) has this status or a worse one; "
                             "for CI checks")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="compute the due windows of every configured model (drift, performance, explainability, "
                    "fairness) and evaluate the alert rules",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mlmon.yaml", help="configuration file (default: mlmon.yaml)")
    parser.add_argument("--store", help="store URL (overrides the config's store)")
    parser.add_argument("--at", help="compute as if it were this time (ISO 8601, UTC; default: now)")
    parser.add_argument("--every", help="keep going: a round every DURATION (30s, 5m, 1h) until SIGTERM/Ctrl-C")
    add_fail_on(parser)
    parser.set_defaults(func=run)


def outcome(command: str, report: RoundReport, fail_on: str | None) -> int:
    """Print the round's summary per model; the exit code: failures 1, else a --fail-on status reached 3, else 0."""
    print(f"{report.windows} windows, {report.documents} metric documents, {report.alerts} alerts")
    for summary in report.models.values():
        for line in summary.lines():
            print(line)
    failures = report.failures
    if failures:
        for f in failures:
            print(f"mlmon {command}: failed: {f.line()}", file=sys.stderr)
        models = sorted({f.model for f in failures})
        print(f"mlmon {command}: {len(failures)} job(s) failed ({', '.join(models)}); the others ran",
              file=sys.stderr)
        return EXIT_FAILED
    if fail_on is not None:
        reached = report.reached(fail_on)
        if reached:
            print(f"mlmon {command}: --fail-on {fail_on}: {reached} documents or alerts at {fail_on} or worse",
                  file=sys.stderr)
            return EXIT_GATE
    return 0


def run(args: argparse.Namespace) -> int:
    from mlmon.config import model as cfg
    from mlmon.schedule.runner import Runner, parse_time, run_every, stop_on_signals
    from mlmon.stores.protocols import StoreError
    from mlmon.stores.url import DEFAULT_STORE_URL, open_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        config = cfg.load(args.config)
        at = parse_time(args.at) if args.at else None
        every = cfg.parse_duration(args.every, cfg.Where("--every", "value")) if args.every else None
        if every is not None and args.fail_on:
            raise ValueError("--fail-on gates one round; it cannot be combined with --every")
    except (cfg.ConfigError, ValueError) as err:
        print(f"mlmon run: {err}", file=sys.stderr)
        return EXIT_USAGE
    url = args.store or config.store or DEFAULT_STORE_URL
    try:
        if every is not None:
            stop = threading.Event()
            stop_on_signals(stop)
            rounds = run_every(config, lambda: open_store(url), every, stop)
            print(f"stopped after {rounds} rounds")
            return 0
        store = open_store(url)
        try:
            report = Runner(config, store).round(at)
        finally:
            store.close()
    except StoreError as err:
        print(f"mlmon run: {err}", file=sys.stderr)
        return EXIT_FAILED
    send_alerts("run", config, lambda: open_store(url))
    return outcome("run", report, args.fail_on)


def send_alerts(command: str, config: Config, open_store: Callable[[], Store]) -> None:
    """Send the alerts the round queued, with the store closed meanwhile; what is not delivered is retried
    by the next run (the outbox keeps it), so a failure here is reported, not an exit code."""
    from mlmon.schedule.runner import deliver_alerts
    from mlmon.stores.protocols import StoreError

    try:
        report = deliver_alerts(config, open_store)
    except StoreError as err:
        print(f"mlmon {command}: alert deliveries left for the next run: {err}", file=sys.stderr)
        return
    if report.any:
        print(report.line())
