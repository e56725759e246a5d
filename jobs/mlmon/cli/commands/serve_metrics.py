"""``mlmon serve-metrics``: the newest metric documents and job health as Prometheus gauges on /metrics.

The store is read every ``prometheus.refresh_every`` (mlmon.yaml; ``--refresh-every``) and
let go of at once; scrapes are answered from memory (see :mod:`mlmon.outputs.prometheus`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_PORT = 9464  # the OpenTelemetry Prometheus exporter's default port too
#: A refresh waits at most this long for a job round to release an embedded store.
MAX_LOCK_WAIT = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve-metrics", help="serve the newest metric documents to Prometheus (/metrics)")
    parser.add_argument("--store", default=None, help="store URL (default: the config's store, else "
                                                      "duckdb:///mlmon.duckdb)")
    parser.add_argument("--config", help="mlmon.yaml: export only its models; its prometheus: section bounds "
                                         "the series (max_series, segments, history, versions_seen_within)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; "
                                                            "0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--refresh-every", metavar="DURATION",
                        help="read the store this often, e.g. 30s (default: prometheus.refresh_every, else 30s)")
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> tuple[Any, list[str] | None, str | None]:
    """(ExporterSettings, the config's model names or None, the config's store URL or None)."""
    from mlmon.config.model import load
    from mlmon.config.prometheus import ExporterSettings

    if not args.config:
        return ExporterSettings.defaults(), None, None
    config = load(args.config)
    return config.prometheus, [m.name for m in config.models], config.store


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mlmon.config.values import ConfigError, duration
    from mlmon.outputs.prometheus.exporter import Exporter, Serving
    from mlmon.outputs.prometheus.reading import read_store
    from mlmon.stores.url import DEFAULT_STORE_URL, duckdb_file

    try:
        if not 0 <= args.port <= 65535:
            raise ValueError(f"--port {args.port}: expected a port number in [0, 65535]")
        settings, models, config_store = _settings(args)
        if args.refresh_every:
            try:
                settings = replace(settings, refresh_every=duration(args.refresh_every))
            except ValueError as err:
                raise ValueError(f"--refresh-every {err}") from None
    except (ConfigError, ValueError) as err:
        print(f"mlmon serve-metrics: {err}", file=sys.stderr)
        return 2
    url = args.store or config_store or DEFAULT_STORE_URL
    duckdb_file(url)  # a malformed URL is one line now, not a failed refresh later
    lock_wait = min(settings.refresh_every.total_seconds(), MAX_LOCK_WAIT)
    exporter = Exporter(lambda: read_store(url, settings, models=models, lock_wait=lock_wait), settings)
    exporter.first_refresh()
    try:
        serving = Serving(exporter, args.host, args.port)
    except OSError as err:
        print(f"mlmon serve-metrics: cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        serving.request_stop()  # the teardown runs below, in the main thread

    signal.signal(signal.SIGTERM, stop)
    print(f"mlmon serve-metrics: serving http://{args.host}:{serving.port}/metrics from {url} "
          f"({exporter.series} series; reading the store every {settings.refresh_every.total_seconds():g} s)",
          flush=True)
    try:
        serving.wait()
    finally:
        serving.stop()
    return 0
