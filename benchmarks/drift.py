"""Drift job on the embedded store vs Evidently / alibi-detect / NannyML, same data, same run.

Reference 200k rows, current 1M rows, 20 numeric + 5 categorical features, with
injected shifts: num_3 +0.2 sd, num_11 scale x1.3, cat_1 10 points a->b.
Baselines run in their own venvs (Evidently needs pandas<3):
  BENCH_VENVS=/tmp/mlmon-drift-bench  (venv-evidently, venv-alibi, venv-nannyml; missing ones are skipped)
Prints medians of --repeat runs, the ratios, our peak memory, and which shifts each caught
(from each library's own per-column decision) and which clean columns it flagged.
Run: .venv/bin/python benchmarks/drift.py [--repeat 3]

``--math`` measures the drift math alone instead (issue 19), on the shape of
benchmarks/rounds.py: 20 numeric features with ~1000 reference quantile bins,
a week of hourly windows of 1000 values each, all windows of a field at once
(as the drift job does) vs window by window, checking the values are the same
to the bit. Run: .venv/bin/python benchmarks/drift.py --math
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHIFTED = {"num_3", "num_11", "cat_1"}
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)

# Each script prints {"seconds": ..., "drifted": [...]} where "drifted" is the library's OWN per-column
# decision, read from its result object (checked by running each one and looking at the result).
BASELINES = {
    # Evidently 0.7: the preset's per-column ValueDrift tests; status FAIL means the column drifted.
    "evidently": """
import time, json, sys, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t = time.perf_counter()
d = Report([DataDriftPreset()], include_tests=True).run(reference_data=ref, current_data=cur).dict()
el = time.perf_counter() - t
drifted = sorted(t["metric_config"]["params"]["column"] for t in d["tests"]
                 if t["metric_config"]["params"].get("type") == "evidently:metric_v2:ValueDrift"
                 and str(getattr(t["status"], "value", t["status"])) == "FAIL")
print(json.dumps({"seconds": el, "drifted": drifted}))
""",
    # alibi-detect: TabularDrift (KS per numeric, chi-square per categorical), result["data"]["is_drift"] per column.
    "alibi": """
import time, json, sys, numpy as np, pandas as pd
from alibi_detect.cd import TabularDrift
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
cols = list(ref.columns); cat_idx = [i for i, c in enumerate(cols) if c.startswith("cat_")]
def enc(df):
    x = df.copy()
    for c in cols:
        if c.startswith("cat_"): x[c] = x[c].map({k: i for i, k in enumerate("abcde")})
    return x.to_numpy(dtype=np.float64)
t = time.perf_counter()
cd = TabularDrift(enc(ref), p_val=0.05, categories_per_feature={i: None for i in cat_idx})
pred = cd.predict(enc(cur), drift_type="feature")
el = time.perf_counter() - t
print(json.dumps({"seconds": el, "drifted": sorted(c for c, d in zip(cols, pred["data"]["is_drift"]) if d)}))
""",
    # NannyML: univariate drift, thresholds from the spread over reference chunks (with one chunk every
    # KS threshold is 0 and every column alerts), so 10 chunks; a column drifted if any analysis chunk alerts.
    "nannyml": """
import time, json, sys, warnings, pandas as pd, nannyml as nml
warnings.simplefilter("ignore")
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
cols = list(ref.columns)
t = time.perf_counter()
calc = nml.UnivariateDriftCalculator(column_names=cols, chunk_number=10,
    continuous_methods=["kolmogorov_smirnov"], categorical_methods=["chi2"])
calc.fit(ref)
res = calc.calculate(cur).filter(period="analysis").to_df()
el = time.perf_counter() - t
drifted = sorted(c for c in cols for m in ("kolmogorov_smirnov", "chi2")
                 if (c, m, "alert") in res.columns and bool(res[(c, m, "alert")].any()))
print(json.dumps({"seconds": el, "drifted": drifted}))
""",
}


def make_data(tmp: Path) -> tuple[Path, Path]:
    from tools.synth import make_features

    rng = np.random.default_rng(7)
    ref = make_features(rng, 200_000, numeric=20, categorical=5)
    cur = make_features(rng, 1_000_000, numeric=20, categorical=5, shifts={"num_3": 0.2},
                        cat_shift={"cat_1": 0.10})
    cur["num_11"] = (cur["num_11"] - 11) * 1.3 + 11
    ref.to_parquet(tmp / "ref.parquet")
    cur.to_parquet(tmp / "cur.parquet")
    return tmp / "ref.parquet", tmp / "cur.parquet"


def ours(tmp: Path, ref_path: Path, cur_path: Path, repeat: int) -> dict[str, Any]:
    import pandas as pd

    from mlmon.core.reference import build_from_frame
    from mlmon.stores.duckdb.store import DuckDBStore
    from tools.synth import load_events as load, to_events

    db = tmp / "bench.duckdb"
    store = DuckDBStore(db)
    frame = pd.read_parquet(ref_path)
    builds = []
    for _ in range(repeat):
        t = time.perf_counter()
        profile = build_from_frame(frame, "bench", "1")
        builds.append(time.perf_counter() - t)
    store.put_reference(profile)
    rng = np.random.default_rng(8)
    load(store.con, to_events(pd.read_parquet(cur_path), "bench", "1", T0, timedelta(hours=1), rng))
    store.close()
    # The job runs in a fresh process so its peak memory is its own: what `mlmon run` does for one window
    # (Runner.run_window), timed in its two halves: statistics + metrics, then writing the documents.
    code = f"""
import sys, time, json; sys.path.insert(0, {str(ROOT)!r})
from datetime import datetime, timezone, timedelta
from mlmon.config.model import parse; from mlmon.schedule.runner import Runner; from mlmon.jobs.drift import DriftWindowJob
from mlmon.stores.duckdb.store import DuckDBStore
store = DuckDBStore({str(db)!r}); runner = Runner(parse({{"models": {{"bench": {{"drift": {{"prediction": False}}}}}}}}), store)
model = runner.config.models[0]; reference = runner.reference(model)
t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
compute, write = [], []
for _ in range({repeat}):
    t = time.perf_counter(); docs = DriftWindowJob(store, model, reference, "bench").run(t0, t0 + timedelta(hours=1))
    compute.append(time.perf_counter() - t)
    t = time.perf_counter(); store.write_metrics(docs); write.append(time.perf_counter() - t)
alerts = sorted({{d.feature for d in docs if d.status == "alert" and d.feature}})
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child forked from this 1.4 GB
# parent would report the parent's peak; VmHWM belongs to the process image after exec.
peak = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))) / 1024
print(json.dumps({{"compute": compute, "write": write, "drifted": alerts, "documents": len(docs), "peak_mb": peak}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"mlmon job failed:\n{out.stderr}")
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    res["build"] = builds
    return res


def baseline(name: str, python: Path, ref_path: Path, cur_path: Path, repeat: int) -> dict[str, Any] | str:
    runs = []
    for _ in range(repeat):
        p = subprocess.run([str(python), "-c", BASELINES[name], str(ref_path), str(cur_path)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return f"failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}"
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs), "drifted": runs[0]["drifted"], "runs": len(runs)}


def caught(drifted: list[str]) -> str:
    return f"caught {sorted(set(drifted) & SHIFTED)} of {sorted(SHIFTED)}; false positives {sorted(set(drifted) - SHIFTED)}"


def math_per_window(repeat: int) -> None:
    """Numeric drift metrics of 168 windows x 20 fields: batched vs one window at a time, ms per window."""
    from mlmon.core.reference import quantile_edges
    from mlmon.core.stats import NumericStats
    from mlmon.metrics import drift as dm

    rng = np.random.default_rng(19)
    windows, fields = 168, 20
    data = []
    for i in range(fields):
        ref = rng.normal(i, 1 + i / 10, 24_000)
        edges = quantile_edges(ref)
        shift = 0.5 if i < 3 else 0.0
        currents = [NumericStats.from_values(rng.normal(i + shift, 1 + i / 10, 1_000), edges) for _ in range(windows)]
        data.append((NumericStats.from_values(ref, edges), currents))

    def batched() -> list[list[Any]]:
        return [dm.numeric_drift_windows(ref, curs) for ref, curs in data]

    def one_by_one() -> list[list[Any]]:
        return [[dm.numeric_drift(ref, cur) for cur in curs] for ref, curs in data]

    results = {}
    for name, fn in (("batched", batched), ("window by window", one_by_one)):
        times = []
        for _ in range(repeat):
            t = time.process_time()
            results[name] = fn()
            times.append(time.process_time() - t)
        print(f"drift math, {fields} numeric fields, {name}: {1000 * statistics.median(times) / windows:.2f} ms "
              f"per window (CPU, median of {repeat}; load {os.getloadavg()[0]:.2f})")
    same = all(vars(a) == vars(b) for x, y in zip(results["batched"], results["window by window"])
               for sa, sb in zip(x, y) for a, b in zip(sa, sb))
    print(f"batched values identical to window by window: {same}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--math", action="store_true", help="the drift math alone, batched vs window by window")
    ap.add_argument("--evidently-repeat", type=int, default=1, help="Evidently takes about a minute per run")
    ap.add_argument("--venvs", default=os.environ.get("BENCH_VENVS", "/tmp/mlmon-drift-bench"))
    args = ap.parse_args()
    if args.math:
        math_per_window(args.repeat)
        return 0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ref_path, cur_path = make_data(tmp)
        mine = ours(tmp, ref_path, cur_path, args.repeat)
        compute, write = statistics.median(mine["compute"]), statistics.median(mine["write"])
        total = statistics.median(c + w for c, w in zip(mine["compute"], mine["write"]))
        print(f"mlmon drift job (DuckDB store, 1M rows, 25 fields), medians of {args.repeat}: "
              f"{total:.2f}s = statistics+metrics {compute:.2f}s + writing {mine['documents']} documents "
              f"{write:.2f}s; peak memory {mine['peak_mb']:.0f} MB (target <= 512)")
        print(f"mlmon reference build (200k rows): median {statistics.median(mine['build']):.2f}s")
        print(f"  mlmon {caught(mine['drifted'])}")
        fastest_other = None
        for name in BASELINES:
            python = Path(args.venvs) / f"venv-{name}" / "bin" / "python"
            if not python.exists():
                print(f"{name}: not installed ({python} missing)")
                continue
            res = baseline(name, python, ref_path, cur_path, args.evidently_repeat if name == "evidently" else args.repeat)
            if isinstance(res, str):
                print(f"{name}: {res}")
                continue
            secs = res["seconds"]
            print(f"{name}: median {secs:.2f}s over {res['runs']} run(s) -> mlmon is {secs / total:.1f}x faster "
                  f"({secs / compute:.1f}x on statistics+metrics); {caught(res['drifted'])}")
            if name != "evidently":
                fastest_other = min(secs, fastest_other or secs)
        if fastest_other is not None:
            print(f"targets: >= 30x Evidently, >= 2x fastest of alibi/NannyML ({fastest_other:.2f}s -> "
                  f"{fastest_other / total:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
