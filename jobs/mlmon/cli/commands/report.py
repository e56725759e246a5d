"""``mlmon report``: a self-contained HTML report of what the jobs found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report (summary, drift table, charts, alerts)",
                       description="Write one HTML file that opens offline: per model version a summary (what "
                                   "drifted and since when, performance now vs reference, open alerts), a "
                                   "per-feature drift table, the alerts and interactive charts per family.")
    p.add_argument("--store", required=True, help="duckdb:///path/mlmon.duckdb or https://host:9200")
    p.add_argument("--out", default="report.html", help="HTML file to write, '-' for stdout (default: report.html)")
    p.add_argument("--model", help="only this model")
    p.add_argument("--from", dest="start", help="only windows ending after this time (ISO 8601, UTC)")
    p.add_argument("--to", dest="end", help="only windows starting before this time (ISO 8601, UTC)")
    p.add_argument("--config", help="the mlmon.yaml the jobs ran with: adds the performance reference period "
                                    "(reference confusion matrix, curves and values)")
    p.add_argument("--title", default="mlmon model monitoring report", help="the report's title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlmon.api.report import build_report
    from mlmon.config import model as cfg
    from mlmon.schedule.runner import parse_time

    try:
        start = parse_time(args.start) if args.start else None
        end = parse_time(args.end) if args.end else None
        if start is not None and end is not None and not start < end:
            raise ValueError(f"--from {args.start} must be before --to {args.end}")
        config = cfg.load(args.config) if args.config else None
    except ValueError as err:  # ConfigError is a ValueError too
        print(f"mlmon report: {err}", file=sys.stderr)
        return 2
    report = build_report(args.store, model=args.model, start=start, end=end, config=config, title=args.title)
    if not report.models:
        print(f"mlmon report: no metric documents in {args.store}"
              + (" match the filters" if args.model or start or end else ""), file=sys.stderr)
    if args.out == "-":
        sys.stdout.write(report.html)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report.save(out)
    print(f"report: {out.resolve()} ({len(report.models)} model(s), {report.documents} metric documents, "
          f"{out.stat().st_size / 1e6:.1f} MB)")
    for line in report.summary_lines():
        print(line)
    return 0
