"""Explainability and fairness statistics on the embedded store: our one-statement SQL vs pandas.

Same DuckDB file, same window, measured in the same run:

* attribution sums (count, sum |a|, sum a, sum a^2 per feature) over N explanation
  events x F features: ``DuckDBExplainStore.attribution_sums`` vs the baseline
  a user would write - read the window's attribution columns into pandas and
  reduce there;
* fairness group counts over N predictions with their feedback joined
  (latest feedback wins): the label join ``DuckDBLabels.labelled_window`` with a
  segment, turned into per-group counts, vs pandas (read both tables, keep the
  latest feedback per prediction, merge, group by).

Figures are medians over ``--repeats`` runs; the ratio is baseline / ours
(> 1: ours is faster). Target: ours at least as fast as the baseline (ratio >= 1),
with memory bounded by features / groups instead of rows.
Run: .venv/bin/python benchmarks/explain_fairness.py [--rows 1000000 --features 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402

from mlmon.jobs.fairness import compared_groups  # noqa: E402
from mlmon.stores.duckdb.explain import DuckDBExplainStore  # noqa: E402
from mlmon.stores.duckdb.labels import DuckDBLabels  # noqa: E402
from mlmon.core.labels import LabelQuery  # noqa: E402
from mlmon.stores.duckdb.schema import ensure_family_columns, ensure_schema, quote  # noqa: E402

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(hours=1)


def load(con: duckdb.DuckDBPyConnection, rows: int, features: int) -> None:
    ensure_schema(con)
    attrs = [f"mlmon.attributions.f{i}" for i in range(features)]
    ensure_family_columns(con, "explanation", attrs)
    ensure_family_columns(con, "prediction", ["mlmon.segment.region"])
    step_us = int(SPAN.total_seconds() * 1e6 / rows)
    ts = f"TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_microseconds(i * {step_us})"
    common = (f"'bench' AS {quote('mlmon.model.name')}, '1' AS {quote('mlmon.model.version')}, "
              f"{ts} AS {quote('@timestamp')}")
    cols = ", ".join(f"(random() - 0.5) * {i + 1} AS {quote(a)}" for i, a in enumerate(attrs))
    con.execute(f"INSERT INTO explanations BY NAME SELECT 'x' || i AS {quote('event.id')}, 'p' || i AS "
                f"{quote('mlmon.prediction.id')}, {common}, {cols} FROM range({rows}) t(i)")
    con.execute(f"INSERT INTO predictions BY NAME SELECT 'p' || i AS {quote('event.id')}, 'p' || i AS "
                f"{quote('mlmon.prediction.id')}, {common}, CASE WHEN random() < 0.5 THEN '1' ELSE '0' END AS "
                f"{quote('mlmon.prediction.label')}, ['north', 'south', 'east', 'west'][1 + (i % 4)] AS "
                f"{quote('mlmon.segment.region')} FROM range({rows}) t(i)")
    # 80% labelled, a tenth of those twice (the later label wins).
    con.execute(f"INSERT INTO feedback BY NAME SELECT 'f' || i AS {quote('event.id')}, 'p' || i AS "
                f"{quote('mlmon.prediction.id')}, {common}, CASE WHEN random() < 0.4 THEN '1' ELSE '0' END AS "
                f"{quote('mlmon.feedback.actual')} FROM range({rows}) t(i) WHERE i % 5 <> 0")
    con.execute(f"INSERT INTO feedback BY NAME SELECT 'g' || i AS {quote('event.id')}, 'p' || i AS "
                f"{quote('mlmon.prediction.id')}, 'bench' AS {quote('mlmon.model.name')}, '1' AS "
                f"{quote('mlmon.model.version')}, {ts} + INTERVAL 1 HOUR AS {quote('@timestamp')}, "
                f"'1' AS {quote('mlmon.feedback.actual')} FROM range({rows}) t(i) WHERE i % 50 = 1")


def pandas_attributions(con: duckdb.DuckDBPyConnection, features: int) -> pd.DataFrame:
    cols = ", ".join(quote(f"mlmon.attributions.f{i}") for i in range(features))
    df = con.execute(f"SELECT {cols} FROM explanations WHERE {quote('mlmon.model.name')} = 'bench' AND "
                     f"{quote('@timestamp')} >= ? AND {quote('@timestamp')} < ?", [T0, T0 + SPAN]).df()
    return pd.DataFrame({"n": df.count(), "sum_abs": df.abs().sum(), "sum": df.sum(), "sum_sq": (df * df).sum()})


def pandas_groups(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    p = con.execute(f"SELECT {quote('mlmon.prediction.id')} AS pid, {quote('mlmon.prediction.label')} AS label, "
                    f"{quote('mlmon.segment.region')} AS grp FROM predictions WHERE {quote('@timestamp')} >= ? AND "
                    f"{quote('@timestamp')} < ?", [T0, T0 + SPAN]).df()
    f = con.execute(f"SELECT {quote('mlmon.prediction.id')} AS pid, {quote('mlmon.feedback.actual')} AS actual, "
                    f"{quote('@timestamp')} AS ts, {quote('event.id')} AS eid FROM feedback").df()
    latest = f.sort_values(["ts", "eid"]).drop_duplicates("pid", keep="last")
    j = p.merge(latest[["pid", "actual"]], on="pid", how="left")
    pred, act, lab = j["label"].eq("1"), j["actual"].eq("1"), j["actual"].notna()
    cells = pd.DataFrame({"grp": j["grp"], "n": 1.0, "n_pos": pred, "tp": lab & pred & act,
                          "fp": lab & pred & ~act, "fn": lab & ~pred & act, "tn": lab & ~pred & ~act})
    return cells.groupby("grp").sum()


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: page cache, query plans
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        load(con, args.rows, args.features)
        store = DuckDBExplainStore(con)
        features = [f"f{i}" for i in range(args.features)]
        ours = store.attribution_sums("bench", T0, T0 + SPAN, features=features)
        base = pandas_attributions(con, args.features)
        for i, f in enumerate(features):  # same numbers, or the timing means nothing
            row = base.iloc[i]
            assert ours[f].n == row["n"] and abs(ours[f].sum_abs - row["sum_abs"]) <= 1e-6 * row["sum_abs"]
        labels = DuckDBLabels(con)

        def fairness_counts() -> dict[str, Any]:
            return compared_groups(labels.labelled_window(
                LabelQuery("bench", T0, T0 + SPAN, "classification", segment="region")), "1")

        groups = fairness_counts()
        expected = pandas_groups(con)
        for g, c in groups.items():
            assert (c.n_predictions, c.tp, c.tn) == tuple(float(expected.loc[g, k]) for k in ("n", "tp", "tn")), g
        results = [
            ("attribution sums", median_seconds(lambda: store.attribution_sums("bench", T0, T0 + SPAN,
                                                                                 features=features), args.repeats),
             median_seconds(lambda: pandas_attributions(con, args.features), args.repeats)),
            ("fairness group counts", median_seconds(fairness_counts, args.repeats),
             median_seconds(lambda: pandas_groups(con), args.repeats)),
        ]
        con.close()
    print(f"{args.rows:,} rows, {args.features} attribution features; medians of {args.repeats} runs")
    ok = True
    for name, ours_s, base_s in results:
        ratio = base_s / ours_s
        ok &= ratio >= 1.0
        print(f"{name:24s} ours {ours_s * 1000:8.1f} ms   pandas {base_s * 1000:8.1f} ms   ratio {ratio:5.1f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
