"""``mlmon demo``: the end-to-end demo on the embedded store (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="train a model, simulate a week of traffic with drift, run the whole pipeline, write a report",
        description="Train a scikit-learn model on a dataset shipped with scikit-learn, simulate a week of traffic "
                    "through mlmon_logging with injected drift and delayed labels, ingest it into an embedded DuckDB "
                    "store, run the jobs day by day, raise alerts and write an HTML report.")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory (default: out/demo)")
    parser.add_argument("--days", type=int, default=7, help="simulated days (default: 7)")
    parser.add_argument("--per-day", type=int, default=3200, help="predictions per day (default: 3200)")
    parser.add_argument("--drift-day", type=int, default=4, help="day the problems start (default: 4)")
    parser.add_argument("--seed", type=int, default=7)
    live = parser.add_argument_group("live mode (the demo model service of docker-compose)")
    live.add_argument("--live", action="store_true", help="log real-time traffic to --sink until stopped")
    live.add_argument("--sink", default="stdout", help="emitter sink in live mode, e.g. tcp://logstash:5044")
    live.add_argument("--store", help="store to put the demo's reference profile in (live mode)")
    live.add_argument("--rate", type=float, default=5.0, help="predictions per second in live mode (default: 5)")
    live.add_argument("--drift-after", default="30m", help="live mode: switch the problems on after (default: 30m)")
    live.add_argument("--metrics-port", type=int, help="live mode: serve the service's Prometheus metrics on this port")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    if args.live:
        return _live(args)
    from mlmon.demo.run import run_demo, summary

    # Alerts are summarised at the end; the per-alert log lines would drown the summary.
    logging.getLogger("mlmon").setLevel(logging.ERROR)

    if args.days < 2 or not 0 < args.drift_day < args.days:
        raise SystemExit("mlmon demo: need --days >= 2 and 0 < --drift-day < --days")
    if args.per_day < 100:
        raise SystemExit("mlmon demo: --per-day must be >= 100")
    print(summary(run_demo(args.out, days=args.days, per_day=args.per_day, drift_day=args.drift_day, seed=args.seed)))
    return 0


def _live(args: argparse.Namespace) -> int:
    import threading

    from mlmon.config.values import Where, parse_duration
    from mlmon.demo.live import install_signal_handlers, run_live

    drift_after = parse_duration(args.drift_after, Where("--drift-after", "value"))
    stop = threading.Event()
    install_signal_handlers(stop)
    logged = run_live(args.sink, args.store, args.rate, drift_after, seed=args.seed, stop=stop,
                      metrics_port=args.metrics_port)
    print(f"demo model stopped after {logged} predictions")
    return 0
