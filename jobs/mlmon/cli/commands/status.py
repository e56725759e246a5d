"""``mlmon status``: per model and job, the last run, the last success and the last error.

Exit status 0 when every job's last run succeeded, 1 when one failed (for cron and health
checks), 0 with a note when no round ever ran on the store.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from mlmon.core.job_runs import JobHealth

COLUMNS = ("model", "job", "last run", "result", "last success", "seconds", "windows", "documents", "error")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="each job's last run, last success and last error")
    parser.add_argument("--store", default=None, help="store URL (default: duckdb:///mlmon.duckdb)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlmon.stores.url import DEFAULT_STORE_URL, open_store

    url = args.store or DEFAULT_STORE_URL
    store = open_store(url, read_only=True)
    try:
        health = store.job_health()
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(json.dumps([h.to_fields() for h in health], indent=1) + "\n")
    elif health:
        write_table(health, datetime.now(timezone.utc))
    if not health:
        print(f"mlmon status: no job has run on {url} yet; `mlmon run --config mlmon.yaml` runs a round",
              file=sys.stderr)
    return 1 if any(not h.last_ok for h in health) else 0


def _ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{then:%Y-%m-%d %H:%M:%SZ} ({seconds // size}{unit} ago)"
    return f"{then:%Y-%m-%d %H:%M:%SZ} ({seconds}s ago)"


def write_table(health: Sequence[JobHealth], now: datetime) -> None:
    rows = [COLUMNS, *((h.model, h.family, _ago(h.last_run_at, now), "ok" if h.last_ok else "FAILED",
                        _ago(h.last_success_at, now), f"{h.last_duration_seconds:.2f}", str(h.last_windows),
                        str(h.last_documents), h.last_error or "-") for h in health)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] + "\n")
