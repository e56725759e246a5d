"""Embedded ingest throughput: prediction events with 20 features, events/s (median of runs).

Ours: ``mlmon.ingest.ingest_lines`` (full contract validation, enrichment,
dead-lettering, idempotent insert), through the columnar fast path, and with
``columnar=False`` (the exact per-line checker alone, what ingest was before).
Baseline, measured in the same run: the naive way with no validation at all -
``json.loads`` + ``pandas.json_normalize`` + insert of the DataFrame into a
DuckDB table. Target: >= 100k events/s.

The machine is shared, so besides wall-clock events/s each line shows events
per CPU-second (``time.process_time``, all threads of this process): the
figure load from other processes cannot move much.

Two floors are measured in the same run, to show how far any ingest built
from these parts could go here: Arrow's JSON reader alone (parse only, all
cores, no checks), and DuckDB storing the parsed rows alone (an INSERT of the
flattened Arrow table into a table keyed on ``event.id``, as the store is).
Doing both one after the other is the ceiling of parse-then-store without
any validation; running them side by side on two cores can at best halve it.
A third floor is DuckDB reading and storing the file by itself with its own
JSON reader (no checks, no key): the same ceiling from a different parser.
Run: ``.venv/bin/python benchmarks/ingest.py [N_EVENTS] [REPEATS]``.
"""

from __future__ import annotations

import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj

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


Rate = tuple[float, float]  # (events per wall-clock second, events per CPU-second)


def timed(n: int, work: Callable[[], object]) -> Rate:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def run_ours(lines: list[bytes], columnar: bool = True) -> Rate:
    con = duckdb.connect()

    def work() -> None:
        report = ingest_lines(lines, con, columnar=columnar)
        assert report.stored["prediction"] == len(lines), report.summary()

    return timed(len(lines), work)


def run_baseline(lines: list[bytes]) -> Rate:
    con = duckdb.connect()

    def work() -> None:
        frame = pd.json_normalize([json.loads(line) for line in lines])
        con.register("frame", frame)
        con.execute("CREATE TABLE predictions AS SELECT * FROM frame")

    return timed(len(lines), work)


def _flat(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table


def run_parse_only(lines: list[bytes]) -> Rate:
    buffer = b"".join(lines)
    return timed(len(lines), lambda: pj.read_json(io.BytesIO(buffer)))


def run_store_only(lines: list[bytes]) -> Rate:
    table = _flat(pj.read_json(io.BytesIO(b"".join(lines))))
    con = duckdb.connect()
    con.register("parsed", table)
    con.execute("CREATE TABLE events AS SELECT * FROM parsed LIMIT 0")
    con.execute('ALTER TABLE events ADD PRIMARY KEY ("event.id")')
    return timed(len(lines), lambda: con.execute("INSERT INTO events SELECT * FROM parsed"))


def run_duckdb_reader(lines: list[bytes]) -> Rate:
    """DuckDB alone: its own JSON reader (yyjson, all cores) into a table; no checks, no key.

    A floor from a different parser, to show Arrow's reader is not what holds the
    target back. (It is not usable as ingest's parser as it is: it casts values to
    the types it inferred from its sample, so a string "1.5" after a sample of
    doubles is stored as the double 1.5, where the contract must refuse it.)
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(b"".join(lines))
        con = duckdb.connect()
        return timed(len(lines), lambda: con.execute(
            f"CREATE TABLE events AS SELECT * FROM read_json('{path}', format = 'newline_delimited')"))


def medians(rates: list[Rate]) -> Rate:
    return statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 100_000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    lines = make_lines(n)
    ours, base, per_line, parse, store, duck = [], [], [], [], [], []
    for _ in range(repeats):  # interleaved, so a burst of load hits them all alike
        ours.append(run_ours(lines))
        base.append(run_baseline(lines))
        per_line.append(run_ours(lines[: n // 5], columnar=False))
        parse.append(run_parse_only(lines))
        store.append(run_store_only(lines))
        duck.append(run_duckdb_reader(lines))
    (ours_wall, ours_cpu), (base_wall, base_cpu), (old_wall, old_cpu) = medians(ours), medians(base), medians(per_line)
    (parse_wall, parse_cpu), (store_wall, store_cpu) = medians(parse), medians(store)
    duck_wall, duck_cpu = medians(duck)
    serial = 1 / (1 / parse_wall + 1 / store_wall)
    print(f"events: {n} predictions x 20 features ({len(lines[0])} bytes a line), {repeats} runs, medians")
    print(f"mlmon ingest_lines          : {ours_wall:9.0f} events/s wall, {ours_cpu:9.0f} events/CPU-s")
    print(f"  per-line checker only     : {old_wall:9.0f} events/s wall, {old_cpu:9.0f} events/CPU-s "
          f"(columnar=False, on {n // 5} events)")
    print(f"naive baseline              : {base_wall:9.0f} events/s wall, {base_cpu:9.0f} events/CPU-s "
          "(json.loads + json_normalize + insert, no validation)")
    print(f"floor: Arrow JSON parse only: {parse_wall:9.0f} events/s wall, {parse_cpu:9.0f} events/CPU-s")
    print(f"floor: DuckDB keyed insert  : {store_wall:9.0f} events/s wall, {store_cpu:9.0f} events/CPU-s")
    print(f"floor: parse then insert    : {serial:9.0f} events/s wall (no validation at all); "
          f"ours is {ours_wall / serial:.2f}x of it")
    print(f"floor: DuckDB reads + stores: {duck_wall:9.0f} events/s wall, {duck_cpu:9.0f} events/CPU-s "
          "(its own JSON reader, no checks, no key)")
    print(f"ratio ours/baseline         : {ours_wall / base_wall:.2f}x wall, {ours_cpu / base_cpu:.2f}x CPU")
    print(f"ratio ours/per-line checker : {ours_wall / old_wall:.2f}x wall, {ours_cpu / old_cpu:.2f}x CPU")
    print(f"target {TARGET_EVENTS_PER_SECOND} events/s wall: {'met' if ours_wall >= TARGET_EVENTS_PER_SECOND else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
