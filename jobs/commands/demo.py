"""``mlmon demo``: a small simulated model service logging through the emitter.

A churn model answers simulated requests for a while; the emitter writes
predictions, delayed ground truth and explanations to a file under ./out/.
Half-way through, the customer mix shifts (older customers, more 'basic'
plans) so there is drift to find once the jobs run on the file.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path
from typing import Any

from mlmon_logging import ModelLogger

_WEIGHTS = {"age": -0.03, "tenure_months": -0.05, "monthly_charges": 0.02}
_PLAN_WEIGHT = {"basic": 0.6, "pro": -0.2, "team": -0.5}
_BIAS = 0.4


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run a small simulated model service through the emitter",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: ./out)")
    parser.add_argument("-n", "--requests", type=int, default=5000, help="simulated requests (default: 5000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.set_defaults(func=run)


def _churn_model(features: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """A fixed logistic model: (probability of churn, per-feature contributions to the logit)."""
    contributions = {name: w * float(features[name]) for name, w in _WEIGHTS.items()}
    contributions["plan"] = _PLAN_WEIGHT[features["plan"]]
    logit = _BIAS + sum(contributions.values())
    return 1.0 / (1.0 + math.exp(-logit)), contributions


def run(args: argparse.Namespace) -> int:
    if args.requests < 1:
        raise SystemExit("mlmon demo: --requests must be >= 1")
    rng = random.Random(args.seed)
    path = (args.out / "events.jsonl").resolve()
    path.unlink(missing_ok=True)
    mlog = ModelLogger("churn", "3", sink=f"file://{path}", service="churn-api", environment="demo",
                       categorical=["zip"], stats_interval=1.0)
    pending: list[tuple[str, int]] = []
    started = time.perf_counter()
    for i in range(args.requests):
        shifted = i >= args.requests // 2
        features = {
            "age": rng.randint(35, 85) if shifted else rng.randint(18, 70),
            "tenure_months": rng.randint(0, 72),
            "monthly_charges": round(rng.uniform(10, 120), 2),
            "plan": rng.choices(["basic", "pro", "team"], weights=[6, 2, 1] if shifted else [3, 4, 3])[0],
            "zip": rng.choice([10115, 80331, 20095, 50667]),
        }
        t0 = time.perf_counter()
        score, contributions = _churn_model(features)
        latency_ms = (time.perf_counter() - t0) * 1000 + rng.uniform(1, 8)
        pid = mlog.log_prediction(features, prediction=int(score >= 0.5), score=round(score, 4),
                                  latency_ms=round(latency_ms, 3), segment={"country": rng.choice(["DE", "FR", "US"])})
        if i % 10 == 0:
            mlog.log_explanation(pid, contributions, method="linear", base_value=_BIAS)
        pending.append((pid, int(rng.random() < score)))
        # Ground truth arrives later, and not for every prediction.
        if len(pending) > 200:
            done, actual = pending.pop(0)
            if rng.random() < 0.8:
                mlog.log_feedback(done, actual)
    mlog.close()
    elapsed = time.perf_counter() - started
    stats = mlog.stats
    print(f"simulated {args.requests} requests in {elapsed:.2f}s")
    print(f"events written to {path} ({path.stat().st_size / 1024:.0f} KiB)")
    print(f"emitter stats: emitted={stats.emitted} dropped={stats.dropped} queued={stats.queued} "
          f"errors={stats.errors} sampled_out={stats.sampled_out}")
    return 0 if stats.dropped == 0 and stats.errors == 0 else 1
