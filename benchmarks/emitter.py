"""Emitter benchmark: caller-thread cost and background drain rate of ModelLogger.

Measured in the same run, on the same 20-feature prediction event:

* ModelLogger.log_prediction (caller thread: capture + enqueue only);
* structlog's documented fast production recipe (orjson renderer,
  BytesLoggerFactory, filtering bound logger) - synchronous, all work on the caller;
* python-json-logger (stdlib logging, JsonFormatter, StreamHandler) - synchronous.

Caller figures are per-call perf_counter_ns timings; each of ROUNDS rounds
times CALLS calls per contender, contenders interleaved so machine noise hits
all of them alike; the figure is the median over rounds of each round's
p50 / p99. Drain: ModelLogger's background work (build, coerce, orjson,
write to /dev/null) run on one thread over a pre-filled queue, events/s,
median over rounds, both per wall-clock second and per CPU second of the
thread (the machine may be shared: CPU time leaves out time the thread was
not scheduled); compared with structlog's fast recipe and python-json-logger
doing the whole job on one thread (ratios: median over rounds of the same
round's ratio). Targets (issue 2): caller p50 <= 2 us,
p99 <= 10 us; drain >= 150k/s, also restated as ratios to the baselines from
the per-event costs the issue gives for them (the VM's speed swings 2x).

Prometheus metrics (issue 17): the same caller timing for ModelLogger with
``metrics=PrometheusMetrics()`` beside a plain ModelLogger (the baseline),
interleaved by round: our p50, the baseline's, the ratio and the difference,
against the target of at most 1 us added to the caller.

Batch logging (issue 18): the same 20-feature rows as a pandas DataFrame, logged with
``log_predictions(frame)`` and, in the same rounds, with ``log_prediction`` row by row,
end to end (calls, then ``flush()``: every event written), per event; ``log_prediction``
both at its best (dicts built beforehand, untimed, queue as large as the batch so that
nothing drops) and fed from the frame as a caller would (``to_dict("records")`` timed).
Then 1M rows (``--million``) with ``log_predictions`` to a file through the default
queue: written lines counted against rows logged.

Run: .venv/bin/python benchmarks/emitter.py [--rounds 5] [--calls 20000] [--batch-rows 100000] [--million 1000000]
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from pythonjsonlogger.json import JsonFormatter

from mlmon_logging import ModelLogger, new_id
from mlmon_logging.emitter import Emitter
from mlmon_logging.prometheus import PrometheusMetrics
from mlmon_logging.sinks import FileSink

FEATURES: dict[str, Any] = {f"num_{i}": 0.5 + i * 1.25 for i in range(15)} | {
    f"cat_{i}": ("basic", "pro", "team", "DE", "FR")[i] for i in range(5)}


def _percentiles(samples: list[int]) -> tuple[float, float]:
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def _time_calls(call: Callable[[], Any], n: int) -> tuple[float, float]:
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    for _ in range(n):
        t0 = clock()
        call()
        append(clock() - t0)
    return _percentiles(samples)


def _structlog_fast(devnull: Any) -> Any:
    # The "fast" recipe of structlog's performance docs, writing bytes to /dev/null.
    return structlog.wrap_logger(
        structlog.BytesLogger(devnull),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        cache_logger_on_first_use=True,
    )


def _python_json_logger(devnull: Any) -> logging.Logger:
    logger = logging.getLogger("bench.pythonjsonlogger")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(io.TextIOWrapper(devnull, write_through=True))
    handler.setFormatter(JsonFormatter())
    logger.handlers = [handler]
    return logger


def measure_callers(rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    devnull = open("/dev/null", "wb")
    mlog = ModelLogger("bench", "1", sink=FileSink("/dev/null"), queue_size=calls * 2, stats_interval=None)
    slog = _structlog_fast(devnull)
    plog = _python_json_logger(open("/dev/null", "wb"))
    contenders: dict[str, Callable[[], Any]] = {
        "ModelLogger": lambda: mlog.log_prediction(FEATURES, 1, 0.83, latency_ms=4.2),
        "structlog fast recipe": lambda: slog.info("prediction", prediction_id="p", features=FEATURES,
                                                   prediction=1, score=0.83, latency_ms=4.2),
        "python-json-logger": lambda: plog.info("prediction", extra={"prediction_id": "p", "features": FEATURES,
                                                                     "prediction": 1, "score": 0.83,
                                                                     "latency_ms": 4.2}),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, call in contenders.items():
            results[name].append(_time_calls(call, calls))
            mlog.flush()  # drain between contenders, untimed: the next one runs without our worker busy
            gc.collect()
    dropped = mlog.stats.dropped
    mlog.close()
    if dropped:
        print(f"warning: ModelLogger dropped {dropped} events during the caller benchmark", file=sys.stderr)
    return {name: (statistics.median(p[0] for p in r), statistics.median(p[1] for p in r))
            for name, r in results.items()}


def _rate(events: int, run: Callable[[], Any]) -> tuple[float, float]:
    """(events per wall-clock second, events per CPU second of this thread) of run()."""
    wall, cpu = time.perf_counter(), time.thread_time()
    run()
    return events / (time.perf_counter() - wall), events / (time.thread_time() - cpu)


def measure_drain(rounds: int, events: int) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """Events/s (wall, thread CPU) on one thread: ModelLogger's background work vs the synchronous loggers.

    Returns the medians per contender and, per baseline, the median over rounds of
    ModelLogger's rate divided by the baseline's in the same round (wall, CPU): pairing
    by round keeps a load change between rounds out of the ratio.
    """
    results: dict[str, list[tuple[float, float]]] = {"ModelLogger": [], "structlog fast recipe": [],
                                                     "python-json-logger": []}
    slog = _structlog_fast(open("/dev/null", "wb"))
    plog = _python_json_logger(open("/dev/null", "wb"))

    def structlog_all() -> None:
        for _ in range(events):
            slog.info("prediction", prediction_id=new_id(), features=FEATURES, prediction=1, score=0.83,
                      latency_ms=4.2)

    def python_json_logger_all() -> None:
        for _ in range(events):
            plog.info("prediction", extra={"prediction_id": new_id(), "features": FEATURES, "prediction": 1,
                                           "score": 0.83, "latency_ms": 4.2})

    for _ in range(rounds):
        mlog = ModelLogger("bench", "1", sink=FileSink("/dev/null"), stats_interval=None)
        # A second emitter around the same batch renderer, never started: fill its queue
        # through the public method, then run the worker loop on this thread and time it.
        emitter = Emitter(mlog._render_batch, FileSink("/dev/null"), queue_size=2 * events, stats_interval=None,
                          start=False)
        mlog._submit = emitter.submit
        for _ in range(events):
            mlog.log_prediction(FEATURES, 1, 0.83, latency_ms=4.2)
        emitter._closing = True
        results["ModelLogger"].append(_rate(events, emitter._run))
        assert emitter.stats.emitted == events, emitter.stats
        mlog.close()
        gc.collect()
        results["structlog fast recipe"].append(_rate(events, structlog_all))
        results["python-json-logger"].append(_rate(events, python_json_logger_all))
    medians = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
               for name, rs in results.items()}
    ours = results["ModelLogger"]
    ratios = {name: (statistics.median(o[0] / b[0] for o, b in zip(ours, rs)),
                     statistics.median(o[1] / b[1] for o, b in zip(ours, rs)))
              for name, rs in results.items() if name != "ModelLogger"}
    return medians, ratios


def measure_metrics_cost(rounds: int, calls: int) -> dict[str, tuple[float, float]]:
    """Caller p50/p99 (us) of log_prediction with and without PrometheusMetrics, median over rounds."""
    from prometheus_client import CollectorRegistry

    plain = ModelLogger("bench", "1", sink=FileSink("/dev/null"), queue_size=calls * 2, stats_interval=None)
    metered = ModelLogger("bench", "2", sink=FileSink("/dev/null"), queue_size=calls * 2, stats_interval=None,
                          metrics=PrometheusMetrics(CollectorRegistry()))
    contenders = {"ModelLogger (baseline)": plain, "ModelLogger + PrometheusMetrics": metered}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, mlog in contenders.items():
            call = mlog.log_prediction
            results[name].append(_time_calls(lambda: call(FEATURES, 1, 0.83, latency_ms=4.2), calls))
            mlog.flush()  # untimed: the next contender runs without a worker busy behind it
            gc.collect()
    for mlog in contenders.values():
        if mlog.stats.dropped:
            print(f"warning: {mlog!r} dropped {mlog.stats.dropped} events", file=sys.stderr)
        mlog.close()
    return {name: (statistics.median(p[0] for p in r), statistics.median(p[1] for p in r))
            for name, r in results.items()}


def _print_metrics_cost(rounds: int, calls: int) -> None:
    costs = measure_metrics_cost(rounds, calls)
    (base_p50, base_p99), (ours_p50, ours_p99) = costs["ModelLogger (baseline)"], \
        costs["ModelLogger + PrometheusMetrics"]
    print(f"caller thread with Prometheus metrics, median of {rounds} rounds x {calls} calls (us):")
    for name, (p50, p99) in costs.items():
        print(f"  {name:34s} p50 {p50:7.2f}   p99 {p99:7.2f}")
    added = ours_p50 - base_p50
    print(f"  ratio {ours_p50 / base_p50:.2f}x (p50) / {ours_p99 / base_p99:.2f}x (p99); added p50 {added:+.2f} us: "
          f"target <= 1 us {'met' if added <= 1.0 else 'MISSED'}")


def _feature_frame(rows: int) -> Any:
    """FEATURES' columns, varied per row, with a label, a score and a latency: the batch benchmark's rows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(18)
    columns: dict[str, Any] = {}
    for name, value in FEATURES.items():
        columns[name] = (rng.normal(value, 1.0, rows) if isinstance(value, float)
                         else rng.choice(["basic", "pro", "team", "DE", "FR"], rows))
    return pd.DataFrame(columns | {"y": rng.integers(0, 2, rows), "p": rng.random(rows),
                                   "lat": rng.random(rows) * 9})


def measure_batch(rounds: int, rows: int) -> dict[str, float]:
    """Microseconds per event, end to end (calls + flush), median over rounds, contenders interleaved."""
    frame = _feature_frame(rows)
    names = list(FEATURES)

    def single_prebuilt(mlog: ModelLogger) -> Callable[[], Any]:
        records = frame[names].to_dict("records")  # untimed: log_prediction at its best
        outputs = list(zip(frame["y"].tolist(), frame["p"].tolist(), frame["lat"].tolist()))

        def run() -> None:
            log = mlog.log_prediction
            for features, (y, p, lat) in zip(records, outputs):
                log(features, y, p, latency_ms=lat)
        return run

    def single_from_frame(mlog: ModelLogger) -> Callable[[], Any]:
        def run() -> None:
            log = mlog.log_prediction
            for row in frame.to_dict("records"):
                log({name: row[name] for name in names}, row["y"], row["p"], latency_ms=row["lat"])
        return run

    def batch(mlog: ModelLogger) -> Callable[[], Any]:
        return lambda: mlog.log_predictions(frame, prediction="y", score="p", latency_ms="lat", features=names)

    contenders = {"log_prediction, dicts prebuilt": (single_prebuilt, rows + 1),
                  "log_prediction, from the frame": (single_from_frame, rows + 1),
                  "log_predictions(frame)": (batch, 10_000)}
    results: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (make, queue_size) in contenders.items():
            mlog = ModelLogger("bench", "1", sink=FileSink("/dev/null"), queue_size=queue_size, stats_interval=None)
            run = make(mlog)
            gc.collect()
            started = time.perf_counter()
            run()
            mlog.flush()
            results[name].append((time.perf_counter() - started) / rows * 1e6)
            stats = mlog.stats
            mlog.close()
            if stats.emitted != rows:
                print(f"warning: {name} wrote {stats.emitted} of {rows} events ({stats})", file=sys.stderr)
    return {name: statistics.median(r) for name, r in results.items()}


def measure_million(rows: int) -> tuple[float, int, int, int]:
    """(events/s, lines in the file, emitted, dropped) of log_predictions over ``rows`` rows to a file."""
    import tempfile

    frame = _feature_frame(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        started = time.perf_counter()
        with ModelLogger("bench", "1", sink=f"file://{path}", stats_interval=None) as mlog:
            mlog.log_predictions(frame, prediction="y", score="p", latency_ms="lat")
        elapsed = time.perf_counter() - started
        with open(path, "rb") as written:
            lines = sum(1 for _ in written)
    return rows / elapsed, lines, mlog.stats.emitted, mlog.stats.dropped


def _print_batch(rounds: int, rows: int, million: int) -> None:
    costs = measure_batch(rounds, rows)
    ours = costs["log_predictions(frame)"]
    print(f"batch logging, {rows:,} 20-feature rows of a DataFrame, calls + flush, median of {rounds} rounds "
          "(us per event):")
    for name, us in costs.items():
        ratio = "" if us is ours else f"   log_predictions is {us / ours:.2f}x as fast per event"
        print(f"  {name:32s} {us:7.2f}{ratio}")
    fed, best = costs["log_prediction, from the frame"], costs["log_prediction, dicts prebuilt"]
    # Issue 18's target is the harder one: log_prediction at its best, its dicts built untimed.
    print(f"  target: per event at least as fast as log_prediction given ready dicts: "
          f"{'met' if ours <= best else 'MISSED'} ({best / ours:.2f}x); fed the same frame: {fed / ours:.2f}x")
    if million:
        rate, lines, emitted, dropped = measure_million(million)
        print(f"  {million:,} rows with log_predictions to a file, default queue (10,000): {rate:,.0f} events/s, "
              f"{lines:,} lines written, emitted {emitted:,}, dropped {dropped}: "
              f"{'nothing lost' if lines == emitted == million and not dropped else 'LOST EVENTS'}")


#: The baselines' cost per event on this machine as issue 2 states it, where its targets were set (us).
REFERENCE_US = {"structlog fast recipe": 10.0, "python-json-logger": 35.0}
DRAIN_TARGET = 150_000


def _print_target_as_ratios(drain_ratios: dict[str, tuple[float, float]]) -> None:
    """The drain target restated against the baselines, which run at the machine's speed of the moment.

    The VM's speed swings 2x within an hour, so an absolute figure says as much about the
    moment as about the code. At the speed the issue describes, a baseline costing t us
    an event drains 1e6/t events/s, so 150k/s is 150k * t / 1e6 times that baseline: a
    ratio we measure in the same rounds, whatever the moment's speed.
    """
    parts = []
    for name, us in REFERENCE_US.items():
        needed = DRAIN_TARGET * us / 1e6
        measured = drain_ratios[name][1]
        parts.append(f"{needed:.2f}x {name} (issue: ~{us:.0f} us an event): {measured:.2f}x, "
                     f"{'met' if measured >= needed else 'MISSED'}")
    print("  the target as ratios (CPU, same rounds): " + "; ".join(parts))


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch-rows", type=int, default=100_000, help="rows per batch round")
    parser.add_argument("--million", type=int, default=1_000_000, help="rows of the lossless run (0: skip it)")
    parser.add_argument("--only-batch", action="store_true", help="run the batch benchmark only")
    args = parser.parse_args()
    # A shared machine skews every figure alike; the ratios below are the comparable part.
    print(f"before: {_load()}")
    # The interpreter's build matters as much as the machine: here ModelLogger's drain ran about
    # 1.3x faster under Debian's (static) 3.11 than under pyenv's (shared, no optimisation options).
    print(f"interpreter: {sys.executable} (Python {sys.version.split()[0]})")
    if args.only_batch:
        _print_batch(args.rounds, args.batch_rows, args.million)
        print(f"after: {_load()}")
        return 0
    callers = measure_callers(args.rounds, args.calls)
    ours_p50, ours_p99 = callers["ModelLogger"]
    print(f"caller thread, 20-feature prediction, median of {args.rounds} rounds x {args.calls} calls (us):")
    for name, (p50, p99) in callers.items():
        ratio = "" if name == "ModelLogger" else \
            f"   ModelLogger is {p50 / ours_p50:.1f}x (p50) / {p99 / ours_p99:.1f}x (p99) faster"
        print(f"  {name:24s} p50 {p50:7.2f}   p99 {p99:7.2f}{ratio}")
    print(f"  targets: p50 <= 2 us: {'met' if ours_p50 <= 2 else 'MISSED'}, "
          f"p99 <= 10 us: {'met' if ours_p99 <= 10 else 'MISSED'}")
    drain, drain_ratios = measure_drain(args.rounds, args.calls)
    ours_wall, ours_cpu = drain["ModelLogger"]
    print(f"background drain, one thread, median of {args.rounds} rounds x {args.calls} events "
          "(events/s, wall clock / thread CPU time):")
    for name, (wall, cpu) in drain.items():
        ratio = "" if name == "ModelLogger" else \
            f"   ModelLogger is {drain_ratios[name][0]:.1f}x (wall) / {drain_ratios[name][1]:.1f}x (CPU)"
        print(f"  {name:24s} {wall:10,.0f} / {cpu:10,.0f}{ratio}")
    print(f"  target >= {DRAIN_TARGET:,}/s: {'met' if ours_wall >= DRAIN_TARGET else 'MISSED'} (wall), "
          f"{'met' if ours_cpu >= DRAIN_TARGET else 'MISSED'} (CPU)")
    _print_target_as_ratios(drain_ratios)
    _print_metrics_cost(args.rounds, args.calls)
    _print_batch(args.rounds, args.batch_rows, args.million)
    print(f"after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
