"""Nothing lost under faults: `mlmon run` in a real process, a real webhook receiver on 127.0.0.1.

* kill -9 while a delivery is in flight: the next round sends every alert not yet
  delivered, under the same idempotency key and body, and none after that;
* a receiver that trickles its answer: the round ends at its deadline, and the store
  is free for other processes while the delivery waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from mlmon.config.model import load
from mlmon.core.reference import build_from_frame
from mlmon.schedule.runner import checkpoint_key, deliver_alerts
from mlmon.stores.duckdb.alerts import DuckDBAlertStore
from mlmon.stores.duckdb.store import DuckDBStore
from tests.alerts.conftest import Receiver, Trickler
from tools.synth import load_events, make_features, to_events

T0 = datetime(2025, 1, 6, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
AT = (T0 + 5 * HOUR + 5 * timedelta(minutes=1)).isoformat()
SHIFT = {"num_0": 2.0, "num_1": 2.0, "num_2": 2.0}


@dataclass
class Setup:
    store: Path
    config: Path

    def write_config(self, webhook: str) -> None:
        self.config.write_text(f"""
store: duckdb:///{self.store}
models:
  churn:
    version: "1"
    window: 1h
    lateness: 1m
    drift: {{min_rows: 100}}
    alerts:
      use_default_rules: false
      webhook:
{webhook}
      rules:
        - {{id: drift, families: [drift], renotify_every: 1h}}
""", encoding="utf-8")

    def run(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(), capture_output=True, text=True, timeout=timeout, env=_env())

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlmon.cli.main", "run", "--config", str(self.config), "--at", AT]

    def alert_ids(self) -> set[str]:
        store = DuckDBStore(self.store, read_only=True)
        try:
            return {a["alert"]["id"] for a in store.alert_store().recent_alerts(limit=10_000)}
        finally:
            store.close()

    def outbox_states(self) -> dict[str, int]:
        store = DuckDBStore(self.store)
        try:
            states: dict[str, int] = {}
            for d in DuckDBAlertStore(store.con).deliveries():
                states[d.state] = states.get(d.state, 0) + 1
            return states
        finally:
            store.close()


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "jobs"), str(root)]),
            "MLMON_STORE_LOCK_WAIT": "20"}


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """One clean hour, then four hours with every numeric feature shifted by 2 sd: drift alerts each hour."""
    setup = Setup(tmp_path / "mlmon.duckdb", tmp_path / "mlmon.yaml")
    setup.write_config("        url: http://127.0.0.1:9/unused")
    [model] = load(str(setup.config)).models
    rng = np.random.default_rng(5)
    store = DuckDBStore(setup.store)
    try:
        store.put_reference(build_from_frame(make_features(rng, 3_000), "churn", "1", source="test"))
        load_events(store.con, to_events(make_features(rng, 400), "churn", "1", T0, HOUR, rng))
        for hour in range(1, 5):
            load_events(store.con, to_events(make_features(rng, 400, shifts=SHIFT), "churn", "1",
                                             T0 + hour * HOUR, HOUR, rng))
        store.set_checkpoint(checkpoint_key(model), T0)  # the first round starts at T0
    finally:
        store.close()
    return setup


def test_a_sender_killed_mid_delivery_loses_nothing(setup: Setup, receiver: Receiver) -> None:
    setup.write_config(f"        url: {receiver.url}\n        timeout_seconds: 5\n        round_timeout_seconds: 1")
    receiver.hang_at = 4
    proc = subprocess.Popen(setup.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        assert receiver.hung.wait(60), "the round never reached its 4th delivery"
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 while the 4th POST waits for its answer
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    receiver.release.set()
    assert len(receiver.requests) == 4

    # The killed round held its deliveries for round_timeout_seconds + 5 s (a lease): then they are due again.
    time.sleep(6.5)
    second = setup.run()
    assert second.returncode == 0, second.stderr
    received, alerts = receiver.keys(), setup.alert_ids()
    assert len(alerts) >= 10, f"the setup should raise many alerts, got {len(alerts)}"
    assert set(received) == alerts  # every alert reached the receiver ...
    assert len(received) - len(set(received)) <= 4  # ... the ones sent before the kill at most twice ...
    bodies: dict[str, object] = {}
    for headers, body in receiver.requests:  # ... under one key and one body per alert
        assert bodies.setdefault(headers["idempotency-key"], body) == body
    assert setup.outbox_states() == {"delivered": len(alerts)}

    # Delivered means done: a later round sends nothing again.
    again = deliver_alerts(load(str(setup.config)), lambda: DuckDBStore(setup.store))
    assert (again.delivered, again.retrying, len(receiver.requests)) == (0, 0, len(received))


def test_a_trickling_webhook_neither_hangs_the_round_nor_holds_the_store(setup: Setup, trickler: Trickler) -> None:
    setup.write_config(f"        url: {trickler.url}\n        timeout_seconds: 1\n        round_timeout_seconds: 3")
    started = time.monotonic()
    proc = subprocess.Popen(setup.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        while trickler.first_request_at is None and proc.poll() is None and time.monotonic() - started < 60:
            time.sleep(0.02)
        assert trickler.first_request_at is not None, "no delivery was attempted"
        # While the delivery trickles, another command gets the store at once.
        other = DuckDBStore(setup.store, read_only=True, lock_wait=0.5)
        other.close()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    delivering = time.monotonic() - trickler.first_request_at
    assert proc.returncode == 0, err
    assert delivering < 3 + 3, f"the round went on {delivering:.1f} s after its first POST (round deadline 3 s)"
    assert "0 delivered" in out and "to retry on a later round" in out
    assert setup.outbox_states() == {"pending": len(setup.alert_ids())}
