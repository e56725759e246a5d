"""False alarms and detection of the default drift rule.

>= 200 drift-free windows of 10k rows (20 numeric + 5 categorical features
together): share of windows raising ANY alert. Then the same number of windows
with a 0.2-sigma mean shift in one numeric feature, and with a 10-percentage-
point shift in one categorical feature: share in which that feature alerts.
Targets: <= 1% false alarms; >= 99% detection of both shifts.
Run: .venv/bin/python benchmarks/detection.py [--windows 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlmon.config.model import parse  # noqa: E402
from mlmon.jobs.drift import DriftWindowJob  # noqa: E402
from mlmon.core.reference import build_from_frame  # noqa: E402
from mlmon.core.reference import ReferenceProfile  # noqa: E402
from mlmon.core.stats import CategoryStats, EdgeIndex, NumericAccumulator, WindowStatistics  # noqa: E402
from tools.synth import make_features  # noqa: E402

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def window_stats(frame: pd.DataFrame, reference: ReferenceProfile,
                 indexes: dict[str, EdgeIndex]) -> WindowStatistics:
    """What a store answers for the window: the same binning code the DuckDB store runs."""
    num = {}
    for f, st in reference.numeric.items():
        acc = NumericAccumulator(st.edges, indexes[f])
        acc.add(frame[f.rsplit(".", 1)[1]].to_numpy())
        num[f] = acc.result()
    cat = {f: CategoryStats.from_counts(frame[f.rsplit(".", 1)[1]].value_counts().to_dict())
           for f in reference.categorical}
    return WindowStatistics(rows=len(frame), numeric=num, categorical=cat)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--rows", type=int, default=10_000)
    args = ap.parse_args()
    rng = np.random.default_rng(2024)
    reference = build_from_frame(make_features(rng, 200_000, numeric=20, categorical=5), "bench", "1")
    job = DriftWindowJob(store=None, model=parse({"models": {"bench": {}}}).models[0],  # type: ignore[arg-type]
                         reference=reference, run_id="detection")

    indexes = {f: EdgeIndex(st.edges) for f, st in reference.numeric.items()}

    def alerts(frame: pd.DataFrame) -> set[str]:
        docs = job.documents(window_stats(frame, reference, indexes), T0, T0 + timedelta(hours=1), None)
        return {d.feature for d in docs if d.status == "alert" and d.feature}

    started = time.perf_counter()

    clean = sum(bool(alerts(make_features(rng, args.rows, 20, 5))) for _ in range(args.windows))
    num = sum("num_7" in alerts(make_features(rng, args.rows, 20, 5, shifts={"num_7": 0.2}))
              for _ in range(args.windows))
    cat = sum("cat_2" in alerts(make_features(rng, args.rows, 20, 5, cat_shift={"cat_2": 0.10}))
              for _ in range(args.windows))
    w = args.windows
    print(f"{3 * w} windows of {args.rows} rows (20 numeric + 5 categorical) in {time.perf_counter() - started:.1f}s")
    print(f"clean windows with any alert: {clean}/{w} = {clean / w:.1%} (target <= 1%)")
    print(f"0.2-sigma mean shift detected: {num}/{w} = {num / w:.1%} (target >= 99%)")
    print(f"10-point categorical shift detected: {cat}/{w} = {cat / w:.1%} (target >= 99%)")
    ok = clean / w <= 0.01 and num / w >= 0.99 and cat / w >= 0.99
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
