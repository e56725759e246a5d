"""Drift job on the embedded store vs Evidently / alibi-detect / NannyML, same data, same run.

Reference 200k rows, current 1M rows, 20 numeric + 5 categorical features, with
injected shifts: num_3 +0.2 sd, num_11 scale x1.3, cat_1 10 points a->b.
Baselines run in their own venvs (Evidently needs pandas<3):
  BENCH_VENVS=/tmp/mlmon-drift-bench  (venv-evidently, venv-alibi, venv-nannyml; missing ones are skipped)
Prints medians of --repeat runs, the ratios, our peak memory, and which shifts each caught.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHIFTED = {"num_3", "num_11", "cat_1"}
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)

BASELINES = {
    "evidently": """
import time, json, sys, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t = time.perf_counter()
snap = Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
d = snap.dict()
el = time.perf_counter() - t
drifted = sorted({m["metric_id"].split("column=")[1].split(")")[0].split(",")[0] for m in d["metrics"]
                  if "ValueDrift" in m["metric_id"] and m["value"] is not None and
                  ("threshold" not in m or True) and m.get("value") is not None} )
# ValueDrift value is a p-value (stat tests) or a distance; Evidently decides per column via its threshold:
out = []
for m in d["metrics"]:
    if "ValueDrift" in m["metric_id"]:
        col = m["metric_id"].split("column=")[1].split(",")[0].rstrip(")")
        thr = float(m["metric_id"].split("threshold=")[1].split(")")[0].split(",")[0]) if "threshold=" in m["metric_id"] else 0.05
        method = m["metric_id"]
        val = m["value"]
        is_p = "p_value" in method or "K-S" in method or "chi" in method.lower() or "Z-test" in method
        if (val < thr) if is_p else (val > thr): out.append(col)
print(json.dumps({"seconds": el, "drifted": sorted(out)}))
""",
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
    "nannyml": """
import time, json, sys, pandas as pd, nannyml as nml
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
cols = list(ref.columns)
t = time.perf_counter()
calc = nml.UnivariateDriftCalculator(column_names=cols, chunk_number=1,
    continuous_methods=["kolmogorov_smirnov"], categorical_methods=["chi2"])
calc.fit(ref)
res = calc.calculate(cur).filter(period="analysis").to_df()
el = time.perf_counter() - t
drifted = sorted(c for c in cols if any(bool(v) for k, v in res[c].items() if k[-1] == "alert" for v in res[c][k]))
print(json.dumps({"seconds": el, "drifted": drifted}))
""",
}


def make_data(tmp: Path) -> tuple[Path, Path]:
    from tests.drift.synth import make_features

    rng = np.random.default_rng(7)
    ref = make_features(rng, 200_000, numeric=20, categorical=5)
    cur = make_features(rng, 1_000_000, numeric=20, categorical=5, shifts={"num_3": 0.2},
                        cat_shift={"cat_1": 0.10})
    cur["num_11"] = (cur["num_11"] - 11) * 1.3 + 11
    ref.to_parquet(tmp / "ref.parquet")
    cur.to_parquet(tmp / "cur.parquet")
    return tmp / "ref.parquet", tmp / "cur.parquet"


def ours(tmp: Path, ref_path: Path, cur_path: Path, repeat: int) -> dict[str, object]:
    import pandas as pd

    from mlmon.config import parse
    from mlmon.reference import build_from_frame
    from mlmon.runner import Runner
    from mlmon.stores.duckdb_store import DuckDBStore
    from tests.drift.synth import load, to_events

    db = tmp / "bench.duckdb"
    store = DuckDBStore(db)
    t = time.perf_counter()
    profile = build_from_frame(pd.read_parquet(ref_path), "bench", "1")
    build_s = time.perf_counter() - t
    store.put_reference(profile)
    rng = np.random.default_rng(8)
    load(store.con, to_events(pd.read_parquet(cur_path), "bench", "1", T0, timedelta(hours=1), rng))
    store.close()
    # The job itself runs in a fresh process so its peak memory is its own.
    code = f"""
import sys, time, json, resource; sys.path.insert(0, {str(ROOT)!r})
from datetime import datetime, timezone, timedelta
from mlmon.config import parse; from mlmon.runner import Runner; from mlmon.stores.duckdb_store import DuckDBStore
store = DuckDBStore({str(db)!r}); runner = Runner(parse({{"models": {{"bench": {{"drift": {{"prediction": False}}}}}}}}), store)
t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
times = []
for _ in range({repeat}):
    t = time.perf_counter(); runner.backfill(t0, t0 + timedelta(hours=1), progress=False); times.append(time.perf_counter() - t)
alerts = sorted({{d["metric"]["feature"] for d in store.read_metrics("bench", limit=10000)
                 if d["metric"]["status"] == "alert" and d["metric"]["feature"]}})
print(json.dumps({{"times": times, "drifted": alerts, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["build_s"] = build_s
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--venvs", default=os.environ.get("BENCH_VENVS", "/tmp/mlmon-drift-bench"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ref_path, cur_path = make_data(tmp)
        mine = ours(tmp, ref_path, cur_path, args.repeat)
        ours_s = statistics.median(mine["times"])  # type: ignore[arg-type]
        print(f"mlmon (DuckDB store): median {ours_s:.2f}s over {args.repeat} runs, peak {mine['peak_mb']:.0f} MB, "
              f"reference build {mine['build_s']:.1f}s")
        print(f"  caught {sorted(set(mine['drifted']) & SHIFTED)}; false positives "  # type: ignore[arg-type]
              f"{sorted(set(mine['drifted']) - SHIFTED)}")  # type: ignore[arg-type]
        for name, script in BASELINES.items():
            py = Path(args.venvs) / f"venv-{name}" / "bin" / "python"
            if not py.exists():
                print(f"{name}: not installed ({py} missing)")
                continue
            runs = []
            for _ in range(args.repeat if name != "evidently" else 1):
                p = subprocess.run([str(py), "-c", script, str(ref_path), str(cur_path)], capture_output=True, text=True)
                if p.returncode != 0:
                    print(f"{name}: failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
                    break
                runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            if not runs:
                continue
            secs = statistics.median(r["seconds"] for r in runs)
            drifted = set(runs[0]["drifted"])
            print(f"{name}: median {secs:.2f}s -> mlmon is {secs / ours_s:.1f}x faster; caught "
                  f"{sorted(drifted & SHIFTED)}; false positives {sorted(drifted - SHIFTED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
