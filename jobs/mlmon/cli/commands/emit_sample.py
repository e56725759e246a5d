"""``mlmon emit-sample``: a few sample events of every kind, on stdout.

Useful to see the contract in practice, to feed a pipeline by hand
(``mlmon emit-sample | nc localhost 5044``) or to make test input.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from mlmon_logging import ModelLogger


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("emit-sample", help="write a few sample events of every kind to stdout",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="churn", help="model name (default: churn)")
    parser.add_argument("--model-version", default="3", help="model version (default: 3)")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification")
    parser.add_argument("-n", "--predictions", type=int, default=3, help="predictions to log (default: 3)")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible values")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.predictions < 1:
        raise SystemExit("mlmon emit-sample: --predictions must be >= 1")
    rng = random.Random(args.seed)
    # A long stats interval: the one telemetry event is the final one written on close.
    mlog = ModelLogger(args.model, args.model_version, sink="stdout", task=args.task,
                       categorical=["zip"], stats_interval=3600.0)
    with mlog:
        for _ in range(args.predictions):
            age = rng.randint(18, 80)
            plan = rng.choice(["basic", "pro", "team"])
            features = {"age": age, "tenure_months": rng.randint(0, 60),
                        "monthly_charges": round(rng.uniform(10, 120), 2), "plan": plan,
                        "zip": rng.choice([10115, 80331, 20095]), "autopay": rng.random() < 0.5}
            if args.task == "classification":
                score = round(rng.random(), 4)
                pid = mlog.log_prediction(features, prediction=int(score >= 0.5), score=score,
                                          latency_ms=round(rng.uniform(1, 20), 2),
                                          segment={"country": rng.choice(["DE", "FR", "US"])},
                                          scores={"0": round(1 - score, 4), "1": score})
                mlog.log_feedback(pid, actual=int(rng.random() < score))
            else:
                value = round(rng.gauss(50, 15), 3)
                pid = mlog.log_prediction(features, prediction=value, latency_ms=round(rng.uniform(1, 20), 2),
                                          segment={"country": rng.choice(["DE", "FR", "US"])})
                mlog.log_feedback(pid, actual=round(value + rng.gauss(0, 5), 3))
            mlog.log_explanation(pid, {"age": round(rng.gauss(0, 0.1), 4), "plan": round(rng.gauss(0, 0.1), 4)},
                                 method="linear", base_value=0.5)
        # One request the model could not serve (the contract's prediction_error kind).
        mlog.log_prediction_error(ValueError("feature 'age' is missing"), latency_ms=round(rng.uniform(1, 5), 2))
    return 0
