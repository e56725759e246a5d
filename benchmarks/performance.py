"""One performance round on 1M predictions (30 % labelled) vs pandas merge + scikit-learn (and NannyML).

Each contender runs REPEATS times in a fresh subprocess (so peak RSS is its
own); we print medians and ratios from the same run:

- mlmon: DuckDB label join -> perf_stats -> classification metrics + CBPE,
  on the embedded store file (what ``mlmon run`` does per window).
- baseline: the rows read into pandas, latest feedback per prediction by
  ``sort_values + drop_duplicates``, ``merge``, then scikit-learn's accuracy,
  precision / recall / F1, ROC AUC, average precision, log loss. Its time
  excludes reading the rows (generous to it); its peak memory includes them.
- NannyML (optional): ``nannyml.CBPE`` fitted on a labelled reference and
  estimating the same window, run with the interpreter in ``$NANNYML_PYTHON``
  (its own venv) when set.

Run: ``.venv/bin/python benchmarks/performance.py [--rows 1000000]``.
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
from pathlib import Path

REPEATS = 3
ROOT = Path(__file__).resolve().parents[1]


def build(db: Path, rows: int) -> None:
    from datetime import timedelta

    import duckdb
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from tools.synth import T0, binary_traffic, load_traffic as load

    rng = np.random.default_rng(1)
    traffic = binary_traffic(rng, rows, label_share=0.3, duplicate_share=0.05)
    con = duckdb.connect(str(db))
    load(con, traffic)
    ref = binary_traffic(rng, 200_000, T0 - timedelta(days=1), label_share=1.0, duplicate_share=0.0)
    load(con, ref)
    con.close()


def run_mlmon(db: str) -> dict[str, float]:
    from datetime import timedelta

    import duckdb

    from mlmon.metrics.cbpe import estimate_binary
    from mlmon.metrics.performance import classification_metrics
    from mlmon.jobs.performance import fit_calibration
    from mlmon.stores.duckdb.labels import DuckDBLabels
    from mlmon.core.labels import LabelQuery

    sys.path.insert(0, str(ROOT))
    from tools.synth import HOUR, T0

    con = duckdb.connect(db, read_only=False)
    labels = DuckDBLabels(con)
    ref = labels.labelled_window(LabelQuery("churn", T0 - timedelta(days=1), T0 - timedelta(days=1) + HOUR,
                                            "classification"))[""]
    assert ref.classification is not None
    calibration = fit_calibration(ref.classification.scores["1"])
    t = time.perf_counter()
    window = labels.labelled_window(LabelQuery("churn", T0, T0 + HOUR, "classification", cbpe=True))[""]
    assert window.classification is not None
    metrics = classification_metrics(window.classification)
    estimated = estimate_binary(window.cbpe["1"], calibration, "1")
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "accuracy": metrics.value("accuracy") or 0.0,
            "roc_auc": metrics.value("roc_auc", "1") or 0.0, "estimated_accuracy": estimated.value("accuracy") or 0.0}


def _frames(db: str) -> tuple[object, object]:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    preds = con.execute('SELECT "mlmon.prediction.id", "mlmon.prediction.label", "mlmon.prediction.score", '
                        '"@timestamp" FROM predictions WHERE "@timestamp" >= TIMESTAMPTZ \'2025-03-01 00:00:00+00\' '
                        'AND "@timestamp" < TIMESTAMPTZ \'2025-03-01 01:00:00+00\'').df()
    fb = con.execute('SELECT "mlmon.prediction.id", "mlmon.feedback.actual", "@timestamp", "event.id" '
                     'FROM feedback').df()
    con.close()
    return preds, fb


def run_baseline(db: str) -> dict[str, float]:
    from sklearn import metrics as skm

    preds, fb = _frames(db)
    t = time.perf_counter()
    latest = fb.sort_values(["@timestamp", "event.id"]).drop_duplicates("mlmon.prediction.id", keep="last")
    joined = preds.merge(latest[["mlmon.prediction.id", "mlmon.feedback.actual"]], on="mlmon.prediction.id",
                         how="left")
    lab = joined[joined["mlmon.feedback.actual"].notna()]
    y, p, s = lab["mlmon.feedback.actual"], lab["mlmon.prediction.label"], lab["mlmon.prediction.score"]
    out = {"accuracy": skm.accuracy_score(y, p)}
    skm.precision_recall_fscore_support(y, p)
    skm.precision_recall_fscore_support(y, p, average="macro")
    out["roc_auc"] = skm.roc_auc_score(y == "1", s)
    skm.average_precision_score(y == "1", s)
    skm.log_loss(y == "1", s)
    out["seconds"] = time.perf_counter() - t
    return out


def run_nannyml(db: str) -> dict[str, float]:
    import nannyml as nml
    import pandas as pd

    preds, fb = _frames(db)
    # Reference: a fully labelled slice, as NannyML needs (same generator, same calibration).
    latest = fb.sort_values(["@timestamp", "event.id"]).drop_duplicates("mlmon.prediction.id", keep="last")
    joined = preds.merge(latest[["mlmon.prediction.id", "mlmon.feedback.actual"]], on="mlmon.prediction.id",
                         how="left")
    frame = pd.DataFrame({"y_pred_proba": joined["mlmon.prediction.score"],
                          "y_pred": (joined["mlmon.prediction.label"] == "1").astype(int),
                          "y_true": joined["mlmon.feedback.actual"].map({"1": 1, "0": 0})})
    reference = frame[frame.y_true.notna()].iloc[:200_000].copy()
    t = time.perf_counter()
    estimator = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true", problem_type="classification_binary",
                         metrics=["roc_auc", "f1", "accuracy"], chunk_number=1)
    estimator.fit(reference)
    estimator.estimate(frame.drop(columns=["y_true"]))
    return {"seconds": time.perf_counter() - t}


def _high_water_kib() -> int:
    """Peak RSS of this process (VmHWM). Not ru_maxrss: Linux carries that over fork + exec from the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: best effort


def child(which: str, db: str) -> None:
    # Import what each contender needs first, so the figure is the round's memory, not the libraries'.
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    if which == "nannyml":
        import nannyml  # noqa: F401
    else:
        import sklearn.metrics  # noqa: F401

        import mlmon.metrics.cbpe  # noqa: F401
    before = _high_water_kib()
    result = {"mlmon": run_mlmon, "baseline": run_baseline, "nannyml": run_nannyml}[which](db)
    # Peak RSS growth over the state after imports.
    result["peak_rss_mb"] = (_high_water_kib() - before) / 1024
    print(json.dumps(result))


def measure(which: str, db: Path, python: str = sys.executable) -> list[dict[str, float]]:
    out = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for _ in range(REPEATS):
        proc = subprocess.run([python, __file__, "--child", which, str(db)], capture_output=True, text=True,
                              env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{which} failed:\n{proc.stderr[-2000:]}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        t = time.perf_counter()
        build(db, args.rows)
        print(f"built {args.rows:,} predictions (30 % labelled, 5 % of labels duplicated) in "
              f"{time.perf_counter() - t:.0f} s")
        results = {"mlmon": measure("mlmon", db), "baseline": measure("baseline", db)}
        nml_python = os.environ.get("NANNYML_PYTHON")
        if nml_python:
            try:
                results["nannyml CBPE"] = measure("nannyml", db, nml_python)
            except RuntimeError as err:
                print(f"NannyML skipped: {err}")
        med = {k: {m: statistics.median(r[m] for r in v) for m in ("seconds", "peak_rss_mb")}
               for k, v in results.items()}
        print(f"{'':14}{'median s':>10}{'peak RSS MB':>13}")
        for k, v in med.items():
            print(f"{k:14}{v['seconds']:>10.3f}{v['peak_rss_mb']:>13.0f}")
        base = med["baseline"]
        print(f"mlmon vs pandas+sklearn: time ratio {med['mlmon']['seconds'] / base['seconds']:.3f}, "
              f"peak memory ratio {med['mlmon']['peak_rss_mb'] / base['peak_rss_mb']:.3f}")
        if "nannyml CBPE" in med:
            n = med["nannyml CBPE"]
            print(f"mlmon vs NannyML CBPE: time ratio {med['mlmon']['seconds'] / n['seconds']:.3f}, "
                  f"peak memory ratio {med['mlmon']['peak_rss_mb'] / n['peak_rss_mb']:.3f}")
        acc = (results["mlmon"][0]["accuracy"], results["baseline"][0]["accuracy"])
        auc = (results["mlmon"][0]["roc_auc"], results["baseline"][0]["roc_auc"])
        print(f"same answer: accuracy {acc[0]:.6f} vs {acc[1]:.6f}; ROC AUC {auc[0]:.6f} vs {auc[1]:.6f}")


if __name__ == "__main__":
    main()
