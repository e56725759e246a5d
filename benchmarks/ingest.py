"""Embedded ingest throughput: prediction events with 20 features, events/s (median of runs).

Ours: ``mlmon.ingest.ingest_lines`` (full contract validation, enrichment,
dead-lettering, idempotent insert). Baseline, measured in the same run: the
naive way with no validation at all - ``json.loads`` + ``pandas.json_normalize``
+ insert of the DataFrame into a DuckDB table. Target: >= 100k events/s.
Run: ``.venv/bin/python benchmarks/ingest.py [N_EVENTS] [REPEATS]``.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time

import duckdb
import pandas as pd

from mlmon.ingest import ingest_lines

TARGET_EVENTS_PER_SECOND = 100_000


def make_lines(n: int, seed: int = 0) -> list[bytes]:
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        event = {
            "@timestamp": f"2025-01-15T10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
            "ecs": {"version": "8.11.0"},
            "event": {"kind": "event", "dataset": "mlmon.prediction", "id": f"01944c5e-{i:012d}", "module": "mlmon"},
            "service": {"name": "churn-svc", "version": "1.2.0", "environment": "production"},
            "host": {"name": "web-1"},
            "mlmon": {"schema_version": "1", "model": {"name": "churn", "version": "3", "task": "classification"},
                      "sample_rate": 1.0,
                      "prediction": {"id": f"p-{i}", "label": rnd.choice(["yes", "no"]), "score": rnd.random(),
                                     "latency_ms": rnd.random() * 200},
                      "features": {"numeric": {f"num_{j}": rnd.gauss(0, 1) for j in range(15)},
                                   "categorical": {f"cat_{j}": rnd.choice("abcde") for j in range(5)}}},
        }
        lines.append(json.dumps(event).encode() + b"\n")
    return lines


def run_ours(lines: list[bytes]) -> float:
    con = duckdb.connect()
    start = time.perf_counter()
    report = ingest_lines(lines, con)
    elapsed = time.perf_counter() - start
    assert report.stored["prediction"] == len(lines), report.summary()
    return len(lines) / elapsed


def run_baseline(lines: list[bytes]) -> float:
    con = duckdb.connect()
    start = time.perf_counter()
    frame = pd.json_normalize([json.loads(line) for line in lines])
    con.register("frame", frame)
    con.execute("CREATE TABLE predictions AS SELECT * FROM frame")
    elapsed = time.perf_counter() - start
    return len(lines) / elapsed


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 100_000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    lines = make_lines(n)
    ours = statistics.median(run_ours(lines) for _ in range(repeats))
    base = statistics.median(run_baseline(lines) for _ in range(repeats))
    print(f"events: {n} predictions x 20 features, {repeats} runs, medians")
    print(f"mlmon ingest_lines : {ours:10.0f} events/s")
    print(f"naive baseline     : {base:10.0f} events/s (json.loads + json_normalize + insert, no validation)")
    print(f"ratio ours/baseline: {ours / base:.2f}x")
    print(f"target {TARGET_EVENTS_PER_SECOND} events/s: {'met' if ours >= TARGET_EVENTS_PER_SECOND else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
