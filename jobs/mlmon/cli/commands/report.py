"""``mlmon report``: a self-contained HTML report of what the jobs found."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report (drift, performance, alerts)")
    p.add_argument("--store", required=True, help="duckdb:///path/mlmon.duckdb or https://host:9200")
    p.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    p.add_argument("--model", help="only this model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlmon.outputs.report.gather import gather
    from mlmon.outputs.report.html import render
    from mlmon.stores.url import open_store

    store = open_store(args.store, read_only=True)
    try:
        report = gather(store, args.store, model=args.model)
    finally:
        store.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report), encoding="utf-8")
    print(f"report: {out.resolve()} ({len(report.models)} model(s), "
          f"{sum(len(m.metrics) for m in report.models)} metric documents)")
    return 0
