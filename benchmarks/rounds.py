"""Rounds and backfills on a month of hourly traffic: one-pass batches vs the per-window path.

The store: 30 days of hourly windows of one model (25 features: 20 numeric, 5
categorical; 2 segment values; a score and a label), 80 % of predictions labelled
(exponential delay, mean 6 h), 20 % explained; a labelled reference day before.
The config turns on every family (drift with segments, performance with segments
and CBPE, explainability, fairness) and the default alert rules.

Measured in one process (interpreter start-up and imports are reported apart), with
the machine's load average, medians over ``--repeats``; the backfills of a fresh copy
each in a forked child, which reports its peak RSS (memory bounded by the batch of
windows, not by the history, shows as the same peak for a week, one batch, and the
month, several):

* backfill: a week of hourly windows and the whole month, batched (one query per
  statistic kind for up to ``BATCH_WINDOWS`` windows) vs the per-window path
  (``MLMON_BATCH_WINDOWS=1`` is the switch, measured on the first day when the
  month would take too long);
* cost per window at the start vs the end of the history (first day vs last day,
  each a backfill of 24 windows into a copy of the same store, just after its day
  ended: windows of one age do the same work, so the ratio is the history's);
* a re-run of the first day on the store holding the whole month (deterministic ids:
  overwrites), against its first pass;
* the first ``mlmon run`` on the store (the performance look-back, 14 days, all due;
  the median of ``--repeats``, each on a fresh copy in a child);
* a steady round at the end of the month (one new window, all four families, alerts);

then each of the issue's targets with the measured value and whether it is met.

Run: ``.venv/bin/python benchmarks/rounds.py [--per-hour 1000] [--days 30] [--large]``
(``--large`` adds the 100k predictions/hour store: long on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

T_START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlmon.config.model import Config, parse  # noqa: E402
from mlmon.core.reference import build_from_frame  # noqa: E402
from mlmon.schedule.runner import Runner  # noqa: E402
from mlmon.stores.duckdb.schema import ensure_family_columns, ensure_schema, quote  # noqa: E402
from mlmon.stores.duckdb.store import DuckDBStore  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T_START
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MODEL, VERSION = "bench", "1"
NUMERIC = [f"num_{i}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
LEVELS = np.array(["a", "b", "c", "d", "e", "f"])
REGIONS = np.array(["urban", "rural"])


# --- the store -----------------------------------------------------------------------------------

def _ids(rng: np.random.Generator, prefix: str, n: int) -> np.ndarray:
    return np.char.add(prefix, rng.integers(0, 1 << 62, n).astype(str))


def _features(rng: np.random.Generator, n: int, drifted: bool) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERIC):
        shift = 0.5 if drifted and i < 3 else 0.0
        cols[name] = rng.normal(i + shift, 1 + i / 10, n)
    p = np.array([0.3, 0.25, 0.2, 0.15, 0.07, 0.03])
    for name in CATEGORICAL:
        cols[name] = LEVELS[rng.choice(len(LEVELS), n, p=p)]
    return cols


def _day(rng: np.random.Generator, start: datetime, n: int, drifted: bool,
         label_delay_h: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One day of predictions, their feedback (80 %) and explanations (20 %)."""
    ts = pd.Series(pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.random(n)) * 86_400.0, unit="s")).dt.floor("ms")
    feats = _features(rng, n, drifted)
    score = np.round(rng.beta(2, 3, n), 4)
    pids = _ids(rng, "p", n)
    common = {"@timestamp": ts, "mlmon.model.name": MODEL, "mlmon.model.version": VERSION,
              "mlmon.model.task": "classification"}
    preds = pd.DataFrame({**common, "event.id": pids, "event.dataset": "mlmon.prediction",
                          "mlmon.prediction.id": pids, "mlmon.prediction.score": score,
                          "mlmon.prediction.label": np.where(score >= 0.5, "1", "0"),
                          "mlmon.segment.region": REGIONS[(rng.random(n) < 0.4).astype(int)],
                          **{f"mlmon.features.numeric.{k}": feats[k] for k in NUMERIC},
                          **{f"mlmon.features.categorical.{k}": feats[k] for k in CATEGORICAL}})
    labelled = rng.random(n) < 0.8
    delay = pd.to_timedelta(rng.exponential(label_delay_h * 3600.0, n), unit="s")
    fb = pd.DataFrame({"@timestamp": (ts + delay).dt.floor("ms"), "mlmon.model.name": MODEL,
                       "mlmon.model.version": VERSION, "mlmon.model.task": "classification",
                       "event.id": _ids(rng, "f", n), "event.dataset": "mlmon.feedback",
                       "mlmon.prediction.id": pids,
                       "mlmon.feedback.actual": np.where(rng.random(n) < score, "1", "0")})[labelled]
    explained = rng.random(n) < 0.2
    m = int(explained.sum())
    weights = np.linspace(2.0, 0.1, len(NUMERIC) + len(CATEGORICAL))
    attrs = {f"mlmon.attributions.{k}": rng.normal(0, w, m)
             for k, w in zip([*NUMERIC, *CATEGORICAL], weights)}
    ex = pd.DataFrame({"@timestamp": ts[explained].to_numpy(), "mlmon.model.name": MODEL,
                       "mlmon.model.version": VERSION, "mlmon.model.task": "classification",
                       "event.id": _ids(rng, "x", m), "event.dataset": "mlmon.explanation",
                       "mlmon.prediction.id": pids[explained], "mlmon.explanation.method": "shap", **attrs})
    return preds, fb.reset_index(drop=True), ex


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    con.register("_bench_rows", frame)
    cols = ", ".join(quote(c) for c in frame.columns)
    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _bench_rows")
    con.unregister("_bench_rows")


def build_store(path: Path, days: int, per_hour: int, seed: int = 19) -> None:
    """The benchmark store: a labelled reference day, then ``days`` days (drift from two thirds in)."""
    rng = np.random.default_rng(seed)
    con = duckdb.connect(str(path))
    ensure_schema(con)
    ensure_family_columns(con, "prediction", ["mlmon.segment.region"]
                          + [f"mlmon.features.numeric.{k}" for k in NUMERIC]
                          + [f"mlmon.features.categorical.{k}" for k in CATEGORICAL])
    ensure_family_columns(con, "explanation", [f"mlmon.attributions.{k}" for k in [*NUMERIC, *CATEGORICAL]])
    for day in range(-1, days):
        preds, fb, ex = _day(rng, T0 + day * DAY, 24 * per_hour, day >= 2 * days // 3,
                             label_delay_h=1e-6 if day < 0 else 6.0)
        _insert(con, "predictions", preds)
        _insert(con, "feedback", fb)
        _insert(con, "explanations", ex)
    con.close()
    store = DuckDBStore(path)
    ref_rows = pd.DataFrame(_features(np.random.default_rng(seed + 1), 20_000, False))
    score = np.round(np.random.default_rng(seed + 2).beta(2, 3, len(ref_rows)), 4)
    ref_rows["mlmon.prediction.score"] = score
    ref_rows["mlmon.prediction.label"] = np.where(score >= 0.5, "1", "0")
    store.put_reference(build_from_frame(ref_rows, MODEL, VERSION, source="benchmark: clean rows"))
    store.close()


def config(lookback: str = "14d", maturity_age: str = "7d") -> Config:
    """Every family on, with segments; the performance look-back and maturity age as given."""
    period = {"from": (T0 - DAY).isoformat(), "to": T0.isoformat()}
    return parse({"models": {MODEL: {
        "version": VERSION, "window": "1h", "lateness": "1m",
        "drift": {"segments": {"region": ["urban", "rural"]}},
        "performance": {"task": "classification", "positive_label": "1", "segments": {"region": ["urban", "rural"]},
                        "lookback": lookback, "maturity": {"age": maturity_age}, "reference": period, "cbpe": True,
                        "thresholds": {"accuracy": {"relative": True, "warning": -0.03, "alert": -0.06}}},
        "explainability": {"reference_window": period},
        "fairness": {"attributes": {"region": ["urban", "rural"]}, "positive_label": "1"},
    }}})


# --- measurements ----------------------------------------------------------------------------------

@dataclass
class Figure:
    name: str
    seconds: float
    windows: int = 0
    baseline: float | None = None   # the per-window path's seconds for the same work, when measured
    peak_mb: float | None = None    # peak RSS of the process that did it (a forked child), when measured
    load: float = field(default_factory=lambda: os.getloadavg()[0])  # when the figure was taken

    @property
    def per_window(self) -> float:
        return self.seconds / self.windows

    def line(self) -> str:
        per = f"{self.per_window:7.3f} s/window" if self.windows else " " * 16
        ratio = f"  baseline {self.baseline:8.2f} s  ratio {self.baseline / self.seconds:5.1f}x" \
            if self.baseline is not None else ""
        peak = f"  peak {self.peak_mb:5.0f} MB" if self.peak_mb is not None else ""
        return f"{self.name:<44} {self.seconds:8.2f} s {per}{ratio}{peak}  (load {self.load:.2f})"


@contextmanager
def batch_windows(size: int) -> Iterator[None]:
    """The switch between one-pass batches and the per-window path (size 1), as MLMON_BATCH_WINDOWS sets it."""
    from mlmon.jobs import base

    before = base.BATCH_WINDOWS
    base.BATCH_WINDOWS = size
    try:
        yield
    finally:
        base.BATCH_WINDOWS = before


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


R = TypeVar("R")


def in_child(fn: Callable[[], R]) -> tuple[R, float]:
    """``fn()`` in a forked child, with the child's peak RSS in MB: each figure's own memory, not the
    high-water mark of everything measured before it (the child starts with the parent's pages: ~imports)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report, leave without running the parent's cleanup
        code = 0
        try:
            result = fn()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            with os.fdopen(write, "wb") as pipe:
                pickle.dump((result, peak), pipe)
        except BaseException:  # noqa: BLE001 - the parent reports the failed figure
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not answer:
        raise RuntimeError(f"measurement failed in child {pid} (status {status})")
    result, peak = pickle.loads(answer)
    return result, peak


class Bench:
    def __init__(self, built: Path, work: Path, cfg: Config, end: datetime) -> None:
        self.built, self.work, self.cfg, self.end = built, work, cfg, end
        self.copies = 0

    def store(self) -> DuckDBStore:
        """A fresh copy of the built store (every measurement starts from the same file)."""
        self.copies += 1
        path = self.work / f"copy{self.copies}.duckdb"
        shutil.copy(self.built, path)
        os.sync()  # the copy's writes land before the clock starts, not in the measurement
        return DuckDBStore(path)

    def backfill(self, start: datetime, end: datetime, batch: int, store: DuckDBStore | None = None,
                 at: datetime | None = None) -> float:
        """Seconds of a backfill of [start, end) at round time ``at`` (default: the end of the history)."""
        own = store is None
        s = store or self.store()
        clock = at or self.end
        try:
            with batch_windows(batch):
                return timed(lambda: Runner(self.cfg, s, clock=lambda: clock).backfill(start, end, progress=False))
        finally:
            if own:
                s.close()

    def figure(self, name: str, start: datetime, end: datetime, batch: int, baseline: float | None = None,
               repeats: int = 1, at: datetime | None = None) -> Figure:
        """A backfill of [start, end) at ``at`` on a fresh copy, in a child process (its own peak memory); the
        median of ``repeats`` such runs (the highest peak)."""
        runs = [in_child(lambda: self.backfill(start, end, batch, at=at)) for _ in range(repeats)]
        return Figure(f"{name} (median of {repeats})" if repeats > 1 else name,
                      statistics.median(s for s, _ in runs), round((end - start) / HOUR), baseline,
                      max(p for _, p in runs))

    def first_run(self, batch: int, cfg: Config | None = None) -> float:
        s = self.store()
        try:
            with batch_windows(batch):
                return timed(lambda: Runner(cfg or self.cfg, s, clock=lambda: self.end).round())
        finally:
            s.close()


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    #: (target's name, measured, target, unit): met when the measured value is at most the target.
    checks: list[tuple[str, float, float, str]] = field(default_factory=list)

    def check(self, name: str, measured: float, target: float, unit: str) -> None:
        self.checks.append((name, measured, target, unit))


def measure(per_hour: int, days: int, repeats: int, baseline_days: int, root: Path) -> Results:
    from mlmon.jobs.base import BATCH_WINDOWS

    built = root / f"built-{per_hour}-{days}.duckdb"
    if not built.exists():
        seconds = timed(lambda: build_store(built, days, per_hour))
        print(f"built {days} days x {per_hour}/hour in {seconds:.0f} s")
    end = T0 + days * DAY + timedelta(minutes=2)
    bench = Bench(built, root, config(), end)
    out = Results()
    week = min(7, days)
    first_day = (T0, T0 + DAY)
    last_day = (T0 + (days - 1) * DAY, T0 + days * DAY)
    # Cost per window at the start vs the end of the history: one day of windows each, both paths, each
    # backfilled just after its day ends. Windows of the same age do the same work (one older than the
    # maturity age settles in its pass and needs no fingerprint of its inputs), so the ratio is history's.
    first_at, last_at = first_day[1] + timedelta(minutes=2), end
    start_w = in_child(lambda: bench.backfill(*first_day, 1, at=first_at))[0] if baseline_days else None
    end_w = in_child(lambda: bench.backfill(*last_day, 1, at=last_at))[0] if baseline_days else None
    # A day is a few seconds: the median of `repeats` runs each, so the ratio below is not one noisy pair.
    start_b = bench.figure("backfill, first day", *first_day, BATCH_WINDOWS, start_w, repeats, at=first_at)
    end_b = bench.figure("backfill, last day", *last_day, BATCH_WINDOWS, end_w, repeats, at=last_at)
    out.figures += [start_b, end_b]
    # A week: the per-window baseline measured on `baseline_days` days and scaled per window.
    base_week = None
    if baseline_days:
        span = min(baseline_days, week)
        # At the end of the history, as the week itself (the first day's figure was taken just after that day).
        sample = in_child(lambda: bench.backfill(T0, T0 + span * DAY, 1))[0]
        base_week = sample * week / span
        print(f"(per-window baseline of longer spans: {span} day(s) measured, scaled per window)")
    week_b = bench.figure(f"backfill, {week} days", T0, T0 + week * DAY, BATCH_WINDOWS, base_week)
    out.figures.append(week_b)
    # The month, then on the same store: the first day again (a re-run with the whole month after it),
    # the first round after the backfill, then steady ones; in a child, for the month's peak memory.
    def month_then_rounds() -> tuple[float, float, float, list[float]]:
        store = bench.store()
        try:
            month = bench.backfill(T0, T0 + days * DAY, BATCH_WINDOWS, store)
            rerun = bench.backfill(*first_day, BATCH_WINDOWS, store)
            first_after = timed(lambda: Runner(bench.cfg, store, clock=lambda: end).round())
            steady = [timed(Runner(bench.cfg, store, clock=lambda k=k: end + k * HOUR).round)  # type: ignore[misc]
                      for k in range(1, repeats + 1)]
            return month, rerun, first_after, steady
        finally:
            store.close()

    (month_s, rerun_s, first_after, steady), month_peak = in_child(month_then_rounds)
    month = Figure(f"backfill, {days} days (then the rounds below)", month_s, days * 24,
                   base_week * days / week if base_week else None, month_peak)
    rerun = Figure(f"re-run of the first day ({days} days stored)", rerun_s, 24)
    out.figures += [month, rerun, Figure("first round after the backfill", first_after),
                    Figure(f"steady round (median of {repeats})", statistics.median(steady), 1)]
    # The per-window first run on a sample: a look-back of `baseline_days` days, scaled to the 14 days.
    base_first = None
    if baseline_days:
        span = min(baseline_days, 14)
        base_first = bench.first_run(1, config(lookback=f"{span}d", maturity_age=f"{span}d")) * 14 / span
        print(f"(per-window first run: a {span}-day look-back measured, scaled to 14 days)")
    # Each first run on a fresh copy, in a child: the median of `repeats` (one run varies by ~15 % here).
    firsts = [in_child(lambda: bench.first_run(BATCH_WINDOWS))[0] for _ in range(repeats)]
    first_run = Figure(f"first `mlmon run` (14-day look-back, median of {repeats})", statistics.median(firsts), 0,
                       base_first)
    out.figures.append(first_run)
    # The targets, measured above.
    out.check("last day / first day, per window", end_b.per_window / start_b.per_window, 1.2, "x")
    out.check("re-run of a window / its first pass", rerun.per_window / start_b.per_window, 1.2, "x")
    out.check(f"backfill of {week} days, per window", week_b.per_window, 0.25, "s")
    if days >= 30:
        out.check(f"backfill of {days} days", month.seconds, 60.0, "s")
    out.check("steady round", statistics.median(steady), 1.0, "s")
    out.check("first `mlmon run`, 14-day look-back", first_run.seconds, 3.0, "s")
    if week_b.peak_mb is not None and days > week:  # one batch of windows vs several: memory bounded by the batch
        out.check(f"peak memory, {days} days / {week} days", month_peak / week_b.peak_mb, 1.2, "x")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-hour", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5,
                    help="steady rounds, and backfills of the first and the last day, measured (medians)")
    ap.add_argument("--baseline-days", type=int, default=1,
                    help="days of windows the per-window baseline runs (0: none); scaled per window")
    ap.add_argument("--large", action="store_true", help="also the 100k predictions/hour store (long on 2 cores)")
    ap.add_argument("--keep", type=Path, default=None, help="build (and reuse) the stores in this folder")
    args = ap.parse_args()
    from mlmon.jobs.base import BATCH_WINDOWS

    logging.getLogger("mlmon").setLevel(logging.ERROR)  # the month's alerts would drown the figures

    print(f"python start-up + imports: {IMPORT_SECONDS:.2f} s; batches of {BATCH_WINDOWS} windows; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    sizes = [args.per_hour] + ([100_000] if args.large else [])
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for per_hour in sizes:
            print(f"\n{per_hour} predictions/hour, {args.days} days, 25 features, 2 segment values")
            results = measure(per_hour, args.days, args.repeats, args.baseline_days, root)
            for figure in results.figures:
                print(figure.line())
            print("\ntargets (issue 19):")
            for name, measured, target, unit in results.checks:
                verdict = "met" if measured <= target else "NOT met"
                print(f"  {name:<44} {measured:8.3f} {unit}  target <= {target:g} {unit}  {verdict}")
            print(f"load average {os.getloadavg()[0]:.2f}; peak RSS "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
