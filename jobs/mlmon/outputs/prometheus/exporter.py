"""The exporter: refresh a snapshot from the store in the background, answer scrapes from memory.

Samples carry no timestamps: Prometheus stamps them at scrape time. A timestamped sample
whose window is recomputed (late labels) keeps its timestamp and Prometheus drops it as a
duplicate, and timestamped series never go stale (both seen on Prometheus 2.42).

A refresh that fails (the store held by a job round past the wait, Elasticsearch away)
keeps the previous snapshot and is counted in ``mlmon_exporter_refresh_failures_total``;
``mlmon_exporter_last_refresh_success_timestamp_seconds`` says how old the values are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlmon.outputs.prometheus.reading import StoreRead, failure_reason
from mlmon.outputs.prometheus.series import DROP_REASONS, GAUGES, Snapshot, build_snapshot
from mlmon.config.prometheus import ExporterSettings
from mlmon.stores.protocols import StoreError

log = logging.getLogger("mlmon.outputs.prometheus")

Reader = Callable[[], StoreRead]


class Exporter(Collector):
    """Holds the newest snapshot and the exporter's own counters; a prometheus_client collector."""

    def __init__(self, read: Reader, settings: ExporterSettings) -> None:
        self._read = read
        self.settings = settings
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._dropped_ever: dict[str, set[str]] = {r: set() for r in DROP_REASONS}
        self._failures: Counter[str] = Counter()
        self._refreshes = 0
        self._last_success: float | None = None
        self._last_duration = 0.0
        self._not_read = 0

    def refresh(self) -> None:
        """Read the store and replace the snapshot; StoreError propagates (the caller decides)."""
        started = time.monotonic()
        read = self._read()
        snapshot = build_snapshot(read.docs, read.health, self.settings)
        with self._lock:
            self._snapshot = snapshot
            for reason, ids in snapshot.dropped.items():
                self._dropped_ever[reason] |= ids
            self._refreshes += 1
            self._last_success = time.time()
            self._last_duration = time.monotonic() - started
            self._not_read = read.not_read
        if read.not_read:
            log.warning("mlmon serve-metrics: %d metric documents inside the history were not read (read limit); "
                        "shorten prometheus.history", read.not_read)

    @property
    def series(self) -> int:
        with self._lock:
            return self._snapshot.series

    def first_refresh(self) -> None:
        """The refresh at start: a store that cannot be read (bad URL, missing file) is raised, so the command
        fails at once with one line; a store held by another process is waited for by the refresh loop."""
        try:
            self.refresh()
        except StoreError as err:
            if failure_reason(err) != "store_locked":
                raise
            self._count_failure(err)

    def refresh_or_keep(self) -> bool:
        """Refresh; on a store failure keep the previous snapshot, count it, say it once on one line."""
        try:
            self.refresh()
            return True
        except StoreError as err:
            self._count_failure(err)
            return False

    def _count_failure(self, err: StoreError) -> None:
        with self._lock:
            self._failures[failure_reason(err)] += 1
        log.warning("mlmon serve-metrics: refresh failed, serving the previous values: %s", err)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot, failures = self._snapshot, dict(self._failures)
            dropped = {r: len(ids) for r, ids in self._dropped_ever.items()}
            refreshes, last_success = self._refreshes, self._last_success
            last_duration, not_read = self._last_duration, self._not_read
        for name, (help_text, labels) in GAUGES.items():
            gauge = GaugeMetricFamily(name, help_text, labels=list(labels))
            for values, value in snapshot.samples[name].items():
                gauge.add_metric(list(values), value)  # no timestamp: see the module docstring
            yield gauge
        drops = CounterMetricFamily("mlmon_exporter_series_dropped", "Distinct series left out since the exporter "
                                    "started, by reason (segments not exported, old versions, max_series)",
                                    labels=["reason"])
        for reason, count in dropped.items():
            drops.add_metric([reason], count)
        yield drops
        fails = CounterMetricFamily("mlmon_exporter_refresh_failures", "Refreshes that failed and kept the previous "
                                    "values, by reason", labels=["reason"])
        for reason in ("store_locked", "store_error"):
            fails.add_metric([reason], failures.get(reason, 0))
        yield fails
        yield CounterMetricFamily("mlmon_exporter_refreshes", "Refreshes that succeeded", value=refreshes)
        yield GaugeMetricFamily("mlmon_exporter_series", "Metric series exported by the last refresh",
                                value=snapshot.series)
        yield GaugeMetricFamily("mlmon_exporter_documents_not_read", "Metric documents inside the history the "
                                "last refresh left unread (read limit)", value=not_read)
        yield GaugeMetricFamily("mlmon_exporter_refresh_duration_seconds", "Seconds the last successful refresh "
                                "took", value=last_duration)
        if last_success is not None:
            yield GaugeMetricFamily("mlmon_exporter_last_refresh_success_timestamp_seconds",
                                    "When the snapshot was last read from the store, as Unix time",
                                    value=last_success)


class Serving:
    """The HTTP server and the refresh loop of a running exporter; :meth:`stop` ends both."""

    def __init__(self, exporter: Exporter, host: str, port: int) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(exporter)
        self.exporter = exporter
        self._stop = threading.Event()
        self._stopped = False
        self.httpd: WSGIServer
        self.httpd, self._http_thread = start_http_server(port, addr=host, registry=registry)
        self._loop = threading.Thread(target=self._refresh_loop, name="mlmon-exporter-refresh", daemon=True)
        self._loop.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def _refresh_loop(self) -> None:
        interval = self.exporter.settings.refresh_every.total_seconds()
        while not self._stop.wait(interval):
            self.exporter.refresh_or_keep()

    def wait(self) -> None:
        """Block until :meth:`request_stop` (a signal handler) or :meth:`stop`."""
        while not self._stop.wait(3600):
            pass

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        """End the refresh loop and the HTTP server (idempotent)."""
        self._stop.set()
        if self._stopped:
            return
        self._stopped = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self._http_thread.join(timeout=5)
        self._loop.join(timeout=5)
