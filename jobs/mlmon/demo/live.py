"""``mlmon demo --live``: the demo model as a service, for the full stack in docker-compose.

It logs the demo model's traffic in real time through ``mlmon_logging`` to a
sink (Logstash's TCP input in docker-compose), with labels arriving later and
the same problems switched on after ``drift_after``; the stack's ``jobs``
service monitors it like any other model. The reference profile of clean
traffic is put in the store first, so drift is measured from the first window.
"""

from __future__ import annotations

import heapq
import logging
import signal
import threading
from datetime import datetime, timedelta, timezone

import numpy as np

from mlmon.demo.model import train
from mlmon.demo.run import MODEL, VERSION, reference_frame
from mlmon.demo.traffic import _day_rows
from mlmon.core.reference import build_from_frame
from mlmon.stores.url import open_store
from mlmon_logging import ModelLogger

log = logging.getLogger("mlmon.demo.live")


def run_live(sink: str, store_url: str | None, rate: float, drift_after: timedelta, seed: int = 7,
             label_delay: timedelta = timedelta(minutes=10), stop: threading.Event | None = None,
             metrics_port: int | None = None) -> int:
    """Log ``rate`` predictions per second until stopped; returns the number of predictions logged.

    ``metrics_port``: also serve the service's Prometheus metrics (``mlmon_logging.prometheus``)
    on that port, as the model service of the compose stack does for Prometheus to scrape.
    """
    stop = stop or threading.Event()
    metrics = None
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from mlmon_logging.prometheus import PrometheusMetrics

        metrics = PrometheusMetrics()
        start_http_server(metrics_port)
    rng = np.random.default_rng(seed)
    model = train(seed)
    if store_url:
        store = open_store(store_url)
        try:
            store.put_reference(build_from_frame(reference_frame(model, _day_rows(model, 6000, False, rng)),
                                                 MODEL, VERSION, source="demo: clean traffic"))
        finally:
            store.close()
    started = datetime.now(timezone.utc)
    pending: list[tuple[datetime, str, int]] = []
    logged = 0
    with ModelLogger(model=MODEL, version=VERSION, sink=sink, categorical=["site"],
                     service="cancer-screen-api", environment="demo", metrics=metrics) as mlog:
        while not stop.is_set():
            now = datetime.now(timezone.utc)
            drifted = now - started >= drift_after
            rows = _day_rows(model, max(1, int(rate)), drifted, rng)
            scores, attributions = model.score(rows), model.attributions(rows)
            for i in range(len(rows)):
                row = rows.iloc[i]
                features: dict[str, object] = {n: float(row[n]) for n in model.numeric}
                features["site"] = row["site"]
                pid = mlog.log_prediction(features=features, prediction=int(scores[i] >= 0.5),
                                          score=float(scores[i]), segment={"region": row["region"]},
                                          latency_ms=float(rng.gamma(2.0, 4.0)))
                if rng.random() < 0.2:
                    mlog.log_explanation(prediction_id=pid, method="linear",
                                         attributions=dict(zip(model.numeric, map(float, attributions[i]))))
                delay = timedelta(seconds=float(rng.exponential(label_delay.total_seconds())))
                heapq.heappush(pending, (now + delay, pid, int(row["label"])))
                logged += 1
            while pending and pending[0][0] <= now:
                _, pid, label = heapq.heappop(pending)
                mlog.log_feedback(prediction_id=pid, actual=label)
            stop.wait(1.0)
    return logged


def install_signal_handlers(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
