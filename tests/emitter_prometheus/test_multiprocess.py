"""Pre-fork servers: forked workers log, the metrics of all of them are summed at the scrape.

As gunicorn with ``preload_app`` does: the ModelLogger is made in the master, workers are
forked from it, each logs its own traffic and exits; the master calls
``mark_process_dead`` for each (gunicorn's ``child_exit`` hook), and a scrape reads every
process's samples through ``MultiProcessCollector``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

WORKERS = 3
SCRIPT = textwrap.dedent(f"""
    import os
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from mlmon_logging import ModelLogger
    from mlmon_logging.prometheus import PrometheusMetrics

    class NullSink:
        def write(self, data): pass
        def flush(self): pass
        def close(self): pass
        def after_fork(self): pass

    mlog = ModelLogger("churn", "3", sink=NullSink(), stats_interval=None, task="classification",
                       metrics=PrometheusMetrics())
    workers = []
    for w in range({WORKERS}):
        pid = os.fork()
        if pid == 0:
            try:
                for i in range(100 * (w + 1)):
                    mlog.log_prediction({{"x": 1.0}}, "yes" if i % 2 else "no", 0.3, latency_ms=4.0)
                mlog.log_feedback("p", "yes")
                mlog.log_prediction_error(ValueError("bad input"))
                mlog.close()
            finally:
                os._exit(0)
        workers.append(pid)
    for pid in workers:
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        multiprocess.mark_process_dead(pid)  # what gunicorn's child_exit hook does
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    print(generate_latest(registry).decode())
    print("workers", *workers)
    mlog.close()
""")


def test_forked_workers_are_summed_through_the_multiprocess_collector(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    exposition, _, worker_line = done.stdout.rpartition("workers")
    workers = worker_line.split()
    samples = {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("model", "model_version")))):
               s.value for family in text_string_to_metric_families(exposition) for s in family.samples}
    logged = sum(100 * (w + 1) for w in range(WORKERS))  # 600
    assert samples[("mlmon_predictions_total", ())] == logged
    assert samples[("mlmon_predictions_by_class_total", (("class", "yes"),))] == logged / 2
    assert samples[("mlmon_predictions_by_class_total", (("class", "no"),))] == logged / 2
    assert samples[("mlmon_prediction_duration_seconds_count", ())] == logged
    assert samples[("mlmon_prediction_duration_seconds_bucket", (("le", "0.005"),))] == logged
    assert samples[("mlmon_prediction_duration_seconds_bucket", (("le", "0.0025"),))] == 0
    assert samples[("mlmon_prediction_score_sum", ())] == pytest.approx(0.3 * logged)
    assert samples[("mlmon_feedback_total", ())] == WORKERS
    assert samples[("mlmon_prediction_errors_total", ())] == WORKERS
    assert samples[("mlmon_events_dropped_total", (("reason", "queue_full"),))] == 0
    # the queue gauge sums live processes only: the dead workers' files are gone
    assert samples[("mlmon_emitter_queue_events", ())] == 0
    left = {p.name for p in tmp_path.iterdir()}
    assert not [name for name in left if name.startswith("gauge_live") and any(w in name for w in workers)], left
