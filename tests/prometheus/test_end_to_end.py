"""Store -> mlmon serve-metrics -> a real Prometheus -> a real Alertmanager -> a webhook, on 127.0.0.1.

The rules are the generated ones with seconds for hours (a window is 2 s). A small store is
written with the store API the jobs' runner uses (a demo run takes ~20 s; these documents
have the demo's shapes: drift per feature, performance with a provisional and a final window,
job health). Then: the values Prometheus holds equal the newest documents; a drift injected
as the jobs would write it fires MlmonDataDrift, which Alertmanager delivers to the webhook;
restarting the exporter does not resolve it.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlmon.config.alerts import DEFAULT_RULES
from mlmon.core.documents import SEVERITY, MetricDocument, Threshold
from mlmon.core.job_runs import JobRun
from mlmon.outputs.prometheus.series import newest_per_series, segment_label
from mlmon.stack.prometheus.files import Routing, Scrape, alertmanager_config, prometheus_config, to_yaml
from mlmon.stack.prometheus.rules import ModelRules, Timings, rule_groups, severity_expr
from mlmon.stores.duckdb.store import DuckDBStore
from tests.prometheus.binaries import binary
from tests.prometheus.stack import Receiver, free_port, process, query, reachable, serve_metrics, stop
from tests.support.eventually import eventually

pytestmark = pytest.mark.slow

WINDOW = timedelta(seconds=2)
#: Longer than an exporter restart, short enough to see in a test.
KEEP_FIRING = timedelta(seconds=60)
TIMINGS = Timings(window=WINDOW, keep_firing_for=KEEP_FIRING, jobs_stale_after=timedelta(hours=1),
                  down_for=timedelta(seconds=5), exporter_stale_after=timedelta(hours=1))
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=6)
H = timedelta(hours=1)


def _doc(window: int, feature: str, value: float, status: str, family: str = "drift", metric: str = "psi",
         maturity: str | None = None) -> MetricDocument:
    return MetricDocument(model="cancer-screen", model_version="1", family=family, metric=metric,  # type: ignore[arg-type]
                          window_start=T0 + window * H, window_end=T0 + (window + 1) * H, value=value,
                          status=status, n_current=500, run_id=f"run-{window}", code_version="test",  # type: ignore[arg-type]
                          feature=feature, maturity=maturity, threshold=Threshold(0.1, 0.2))  # type: ignore[arg-type]


def build_store(path: Path) -> None:
    store = DuckDBStore(path)
    try:
        docs = [_doc(w, f, 0.01 * (w + 1) + (0.1 if f == "mean_texture" else 0.0),
                     "warning" if f == "mean_texture" and w == 2 else "ok")
                for w in range(3) for f in ("mean_texture", "worst_area", "site")]
        docs += [_doc(0, "", 0.93, "ok", "performance", "accuracy", "final"),
                 _doc(1, "", 0.88, "warning", "performance", "accuracy", "provisional")]
        store.write_metrics(docs)
        now = datetime.now(timezone.utc)
        store.record_job_runs([JobRun("cancer-screen", "drift", now - timedelta(seconds=3), now, 1.5, True, 3, 9)])
    finally:
        store.close()


@dataclass
class Stack:
    store: Path
    exporter_port: int
    #: The exporter processes, the running one last (the fixture stops them all).
    exporters: list[subprocess.Popen[bytes]]
    prometheus: str
    receiver: Receiver
    logs: Path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    prometheus_bin, alertmanager_bin = binary("prometheus"), binary("alertmanager")
    store = tmp_path / "mlmon.duckdb"
    build_store(store)
    ports = {name: free_port() for name in ("exporter", "prometheus", "alertmanager")}
    rules = tmp_path / "mlmon.rules.yml"
    rules.write_text(to_yaml(rule_groups([ModelRules(None, DEFAULT_RULES, TIMINGS)], TIMINGS)), encoding="utf-8")
    with Receiver() as receiver:
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(to_yaml(alertmanager_config(Routing(
            webhook_url=receiver.url, group_wait="1s", group_interval="1s", repeat_interval="1h"))), encoding="utf-8")
        config = tmp_path / "prometheus.yml"
        config.write_text(to_yaml(prometheus_config(Scrape(
            exporter=f"127.0.0.1:{ports['exporter']}", model_service=f"127.0.0.1:{free_port()}",
            alertmanager=f"127.0.0.1:{ports['alertmanager']}", scrape_interval="1s", evaluation_interval="1s",
            rule_files=[str(rules)]))), encoding="utf-8")
        exporters = [serve_metrics(store, ports["exporter"], tmp_path / "exporter.log")]
        try:
            with process([alertmanager_bin, f"--config.file={am_config}", f"--storage.path={tmp_path / 'am'}",
                          f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address="],
                         tmp_path / "alertmanager.log"), \
                 process([prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{ports['prometheus']}"], tmp_path / "prometheus.log"):
                prometheus = f"http://127.0.0.1:{ports['prometheus']}"
                assert eventually(lambda: reachable(f"{prometheus}/-/ready"), 30), \
                    (tmp_path / "prometheus.log").read_text()
                assert eventually(lambda: reachable(f"http://127.0.0.1:{ports['alertmanager']}/-/ready"), 30), \
                    (tmp_path / "alertmanager.log").read_text()
                yield Stack(store, ports["exporter"], exporters, prometheus, receiver, tmp_path)
        finally:
            for exporter in exporters:
                stop(exporter)


def _newest_documents(store: Path) -> dict[tuple[str, ...], tuple[float, float | None]]:
    """(family, metric, feature, segment, window) -> (severity, value), read from the store itself."""
    s = DuckDBStore(store, read_only=True)
    try:
        docs = s.read_metrics("cancer-screen", limit=10_000)
    finally:
        s.close()
    out: dict[tuple[str, ...], tuple[float, float | None]] = {}
    for key, newest in newest_per_series(docs).items():
        for window, doc in (("latest", newest.latest), ("latest_final", newest.latest_final)):
            if doc is not None:
                m = doc["metric"]
                out[(key.family, key.metric, key.feature, segment_label(key), window)] = \
                    (float(SEVERITY[m["status"]]), m["value"])
    return out


def _in_prometheus(prometheus: str) -> dict[tuple[str, ...], tuple[float, float | None]]:
    severity = query(prometheus, "mlmon_metric_severity")
    values = {(r["metric"]["family"], r["metric"]["metric"], r["metric"].get("feature", ""),
               r["metric"].get("segment", ""), r["metric"]["window"]): float(r["value"][1])
              for r in query(prometheus, '{__name__=~"mlmon_drift_statistic|mlmon_performance_ratio"}')}
    return {(k := (r["metric"]["family"], r["metric"]["metric"], r["metric"].get("feature", ""),
                   r["metric"].get("segment", ""), r["metric"]["window"])): (float(r["value"][1]), values.get(k))
            for r in severity}


def _drift_alert(prometheus: str, feature: str) -> list[dict[str, object]]:
    return query(prometheus, f'ALERTS{{alertname="MlmonDataDrift", alertstate="firing", feature="{feature}"}}')


def test_prometheus_holds_the_newest_documents_and_a_drift_alert_survives_an_exporter_restart(stack: Stack) -> None:
    prom = stack.prometheus
    # 1. What Prometheus scraped equals the newest documents (latest and latest_final), no more, no less.
    expected = _newest_documents(stack.store)
    assert eventually(lambda: _in_prometheus(prom) == expected, 30), (_in_prometheus(prom), expected)
    assert query(prom, 'mlmon_job_last_success_timestamp_seconds{model="cancer-screen", family="drift"}')
    assert not query(prom, 'mlmon_job_last_success_timestamp_seconds{job!="mlmon-exporter"}')  # `job` is the target's
    # Three windows of "ok" for worst_area: evaluated several times, never firing.
    time.sleep(3 * WINDOW.total_seconds())
    assert not _drift_alert(prom, "worst_area")

    # 2. The jobs write a new window in which worst_area drifts (the exporter holds no lock: this write goes through).
    writer = DuckDBStore(stack.store, lock_wait=10)
    try:
        writer.write_metrics([_doc(3, "worst_area", 0.4, "alert")])
    finally:
        writer.close()
    assert eventually(lambda: bool(_drift_alert(prom, "worst_area")), 30), query(prom, "ALERTS")
    assert eventually(lambda: bool(stack.receiver.alerts("firing", alertname="MlmonDataDrift",
                                                         feature="worst_area")), 30), stack.receiver.bodies
    (delivered, *_) = stack.receiver.alerts("firing", alertname="MlmonDataDrift", feature="worst_area")
    assert delivered["labels"]["severity"] == "critical" and delivered["labels"]["model"] == "cancer-screen"
    assert re.fullmatch(r"cancer-screen v1: drift/psi feature worst_area is alert or worse in [23] of the last 3 "
                        r"windows", delivered["annotations"]["summary"]), delivered["annotations"]
    body = next(b for b in stack.receiver.bodies if delivered in b["alerts"])
    assert body["version"] == "4" and body["receiver"] == "mlmon-webhook"

    # 3. The exporter restarts: its series go stale for longer than a window, the rule's condition
    # lapses, and keep_firing_for holds the alert; nothing is resolved.
    stop(stack.exporters[-1])
    assert eventually(lambda: _up(prom) == 0.0, 15)
    time.sleep(3 * WINDOW.total_seconds())  # no sample in any step of the n-of-m subquery
    gap = time.time()
    stack.exporters.append(serve_metrics(stack.store, stack.exporter_port, stack.logs / "exporter.log"))
    assert eventually(lambda: _up(prom) == 1.0, 15)
    condition = [r for r in query(prom, severity_expr(DEFAULT_RULES[0], TIMINGS), at=gap)
                 if r["metric"].get("feature") == "worst_area"]
    assert not condition, "the condition held through the restart: keep_firing_for was not needed"
    assert query(prom, 'ALERTS{alertname="MlmonDataDrift", alertstate="firing", feature="worst_area"}', at=gap)
    assert eventually(lambda: bool(query(prom, severity_expr(DEFAULT_RULES[0], TIMINGS))), 15)
    assert _drift_alert(prom, "worst_area")
    time.sleep(2 * WINDOW.total_seconds())  # evaluations and notifications after the restart
    assert _drift_alert(prom, "worst_area")
    assert not stack.receiver.alerts("resolved", alertname="MlmonDataDrift", feature="worst_area")


def _up(prometheus: str) -> float | None:
    result = query(prometheus, 'up{job="mlmon-exporter"}')
    return float(result[0]["value"][1]) if result else None
