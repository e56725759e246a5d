"""``mlmon demo``: train a real model, simulate a week of traffic, run the whole embedded pipeline.

emitter (file) -> ``mlmon ingest`` (DuckDB) -> reference profile -> jobs every
simulated day (drift, performance with late labels, explainability, fairness)
-> local alerts -> HTML report. Nothing here is demo-only plumbing: each step
is the library call behind the matching ``mlmon`` command.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent
from typing import Any

import numpy as np
import pandas as pd

from mlmon.config.model import Config, parse
from mlmon.core.documents import iso
from mlmon.demo.model import DemoModel, train
from mlmon.demo.traffic import BIASED_SEGMENT, DRIFTED_CATEGORICAL, DRIFTED_NUMERIC, TrafficState, _day_rows, simulate_day
from mlmon.ingest import ingest_lines
from mlmon.core.reference import build_from_frame
from mlmon.schedule.runner import Runner, checkpoint_key
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon_logging import ModelLogger

MODEL = "cancer-screen"
VERSION = "1"
WINDOW_HOURS = 6

def config_yaml(reference_start: datetime, reference_end: datetime) -> str:
    """The demo's mlmon.yaml: every kind of monitoring on, thresholds left at their defaults."""
    period = f"{{from: {iso(reference_start)}, to: {iso(reference_end)}}}"
    return f"""
models:
  {MODEL}:
    version: "{VERSION}"
    window: {WINDOW_HOURS}h
    lateness: 1m
    drift:
      min_rows: 300
      segments: {{region: [urban, rural]}}
    performance:
      task: classification
      positive_label: "1"
      segments: {{region: [urban, rural]}}
      min_labelled: 100
      maturity: {{coverage: 0.8, age: 3d}}
      lookback: 3d
      reference: {period}
      cbpe: true
      thresholds:
        accuracy: {{relative: true, warning: -0.03, alert: -0.06}}
        f1: {{class: "1", relative: true, warning: -0.04, alert: -0.08}}
    explainability:
      reference_window: {period}
      min_explanations: 50
    fairness:
      attributes: {{region: [urban, rural]}}
      positive_label: "1"
      min_group_size: 50
"""


@dataclass
class DemoResult:
    out_dir: Path
    events: Path
    store: Path
    report: Path
    traffic: TrafficState
    ingested: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    windows: int = 0
    documents: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: The report's summary: three lines per model version (what drifted, performance, alerts).
    report_summary: list[str] = field(default_factory=list)
    seconds: float = 0.0


def reference_frame(model: DemoModel, rows: pd.DataFrame) -> pd.DataFrame:
    """Clean traffic as a reference profile sees it: features plus the model's outputs."""
    frame = rows[[*model.numeric, "site"]].copy()
    scores = model.score(rows)
    frame["mlmon.prediction.score"] = scores
    frame["mlmon.prediction.label"] = np.where(scores >= 0.5, "1", "0")
    return frame


def run_demo(out_dir: Path, days: int = 7, per_day: int = 3200, drift_day: int = 4, seed: int = 7) -> DemoResult:
    t0 = time.perf_counter()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    events, db, report_path = out_dir / "events.jsonl", out_dir / "mlmon.duckdb", out_dir / "report.html"
    rng = np.random.default_rng(seed)
    model = train(seed)
    # The simulated week ends at the start of today (UTC): every event is in the past.
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days)

    store = DuckDBStore(db)
    # The day before the week is a labelled validation day (labels known at once): the
    # performance and attribution references are taken from it.
    reference_start = start - timedelta(days=1)
    config: Config = parse(_yaml(config_yaml(reference_start, start)), "demo config")
    store.put_reference(build_from_frame(reference_frame(model, _day_rows(model, 6000, False, rng)), MODEL, VERSION,
                                         source="demo: one clean day of traffic"))
    runner = Runner(config, store)
    for m in config.models:  # start computing at the beginning of the simulated week
        store.set_checkpoint(checkpoint_key(m), start)

    result = DemoResult(out_dir, events, db, report_path, TrafficState())
    offset = 0
    mlog = ModelLogger(model=MODEL, version=VERSION, sink=f"file://{events}", categorical=["site"],
                       service="cancer-screen-api", environment="demo",
                       queue_size=100_000)  # a simulated day arrives in one burst; real traffic is spread out
    try:
        for day in range(-1, days):
            day_start = start + timedelta(days=day)
            if day < 0:
                simulate_day(mlog, model, result.traffic, day_start, per_day, False, rng, label_share=1.0,
                             mean_label_delay_h=1e-6, explain_share=0.5)
            else:
                simulate_day(mlog, model, result.traffic, day_start, per_day, day >= drift_day, rng)
            mlog.flush()
            with events.open("rb") as fh:  # what the service wrote today, as a log shipper would read it
                fh.seek(offset)
                data = fh.read()
            offset += len(data)
            rep = ingest_lines(data.splitlines(), store.con, source_path=str(events))
            result.ingested.update(rep.stored)
            result.dead_letters += sum(rep.dead_lettered.values())
            if day < 0:
                continue
            r = runner.round(at=day_start + timedelta(days=1, minutes=2))
            result.windows += r.windows
            result.documents += r.documents
    finally:
        mlog.close()

    from mlmon.outputs.report.gather import gather
    from mlmon.outputs.report.html import render
    from mlmon.outputs.report.summary import summarise

    result.alerts = store.alert_store().recent_alerts(model=MODEL, limit=10_000)
    report = gather(store, f"duckdb:///{db}", title="mlmon demo: cancer-screen v1", config=config)
    report_path.write_text(render(report), encoding="utf-8")
    result.report_summary = [line for m in report.models for line in summarise(m).lines()]
    store.close()
    result.seconds = time.perf_counter() - t0
    return result


def _yaml(text: str) -> object:
    import yaml

    return yaml.safe_load(dedent(text))


def summary(result: DemoResult) -> str:
    fired = [a for a in result.alerts if a.get("alert", {}).get("action") in ("fired", "escalated")]
    by_family: dict[str, set[str]] = {}
    for a in fired:
        metric = a.get("metric", {})
        what = metric.get("feature") or metric.get("name") or "?"
        seg = metric.get("segment", {})
        if seg.get("field"):
            what = f"{what} [{seg['field']}={seg['value']}]" if seg.get("value") else f"{what} [across {seg['field']}]"
        by_family.setdefault(str(metric.get("family")), set()).add(str(what))
    lines = [
        f"simulated traffic: {result.traffic.predictions} predictions, {result.traffic.feedback} labels "
        f"(delayed), {result.traffic.explanations} explanations",
        f"ingested into {result.store}: " + ", ".join(f"{k}={v}" for k, v in sorted(result.ingested.items()))
        + f"; dead letters: {result.dead_letters}",
        f"jobs: {result.windows} windows, {result.documents} metric documents",
        f"injected: numeric drift in {', '.join(DRIFTED_NUMERIC)}; categorical drift in {', '.join(DRIFTED_CATEGORICAL)}; "
        f"a sensor fault in {BIASED_SEGMENT[0]}={BIASED_SEGMENT[1]} (performance drop, fairness gap)",
        f"alerts fired: {len(fired)}",
    ]
    for family, whats in sorted(by_family.items()):
        lines.append(f"  {family}: {', '.join(sorted(whats))}")
    lines += [f"took {result.seconds:.1f} s", f"report: {result.report.resolve()}", *result.report_summary]
    url = f"duckdb:///{result.store.resolve()}"
    lines += [
        f"job health: mlmon status --store {url}",
        f"for Prometheus: mlmon serve-metrics --store {url}   (http://127.0.0.1:9464/metrics; "
        "prometheus/prometheus.yml scrapes it as mlmon-exporter, rules in prometheus/rules/)",
        "with Grafana: docker compose --profile prometheus up -d, then http://127.0.0.1:3000 (README: Prometheus and Grafana)",
    ]
    return "\n".join(lines)
