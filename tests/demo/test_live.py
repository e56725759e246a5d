"""The live demo model (the compose stack's model service) serves its Prometheus metrics."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int, deadline: float) -> str:
    while True:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            if 'mlmon_predictions_total{model="cancer-screen",model_version="1"}' in body:
                return body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no prediction metrics on port {port} within the deadline")
        time.sleep(0.3)


def test_live_traffic_is_counted_on_the_metrics_port(tmp_path: Path) -> None:
    port = _free_port()
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mlmon.cli.main", "demo", "--live", "--sink", f"file://{events}",
                             "--rate", "20", "--metrics-port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        body = _scrape(port, time.monotonic() + 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "mlmon_prediction_duration_seconds_bucket" in body and "mlmon_prediction_score_bucket" in body
    logged = int(out.decode().split("after ")[1].split()[0])
    assert logged > 0 and events.read_text().count('"mlmon.prediction"') == logged
