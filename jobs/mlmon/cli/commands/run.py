"""``mlmon run``: one round of drift jobs for every configured model, or ``--every 5m`` until stopped."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="compute the due windows of every configured model (drift, performance, explainability, "
                    "fairness) and evaluate the alert rules")
    parser.add_argument("--config", default="mlmon.yaml", help="configuration file (default: mlmon.yaml)")
    parser.add_argument("--store", help="store URL (overrides the config's store)")
    parser.add_argument("--at", help="compute as if it were this time (ISO 8601, UTC; default: now)")
    parser.add_argument("--every", help="keep going: a round every DURATION (30s, 5m, 1h) until SIGTERM/Ctrl-C")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlmon.config import model as cfg
    from mlmon.jobs.drift import DriftJobError
    from mlmon.jobs.explainability import ExplainabilityJobError
    from mlmon.jobs.fairness import FairnessJobError
    from mlmon.jobs.performance import PerformanceJobError
    from mlmon.schedule.runner import Runner, RunnerError, parse_time, run_every, stop_on_signals
    from mlmon.stores.protocols import StoreError
    from mlmon.stores.url import DEFAULT_STORE_URL, open_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        config = cfg.load(args.config)
        at = parse_time(args.at) if args.at else None
        every = cfg.parse_duration(args.every, cfg.Where("--every", "value")) if args.every else None
    except (cfg.ConfigError, ValueError) as err:
        print(f"mlmon run: {err}", file=sys.stderr)
        return 2
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
        print(f"{report.windows} windows, {report.documents} metric documents, {report.alerts} alerts")
        return 0
    except (RunnerError, DriftJobError, PerformanceJobError, ExplainabilityJobError, FairnessJobError,
            StoreError) as err:
        print(f"mlmon run: {err}", file=sys.stderr)
        return 1
