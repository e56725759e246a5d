"""mlmon serve-metrics as a process: no sample timestamps, no lock held between refreshes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from mlmon.stores.duckdb.store import DuckDBStore
from tests.prometheus.stack import free_port, serve_metrics, stop
from tests.support.eventually import eventually
from tests.prometheus.test_end_to_end import _doc, build_store


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode("utf-8"))


def test_a_store_with_documents_only_is_exported_without_timestamps_and_without_holding_the_lock(
        tmp_path: Path) -> None:
    store = tmp_path / "m.duckdb"
    build_store(store)  # metric documents and job health, no prediction events
    port = free_port()
    proc = serve_metrics(store, port, tmp_path / "exporter.log")
    try:
        text = _metrics(port)
        samples = [line for line in text.splitlines() if line.startswith("mlmon_metric_severity{")]
        assert len(samples) == 5  # 3 drift features, accuracy latest and latest_final
        assert all(len(line.rsplit("} ", 1)[1].split()) == 1 for line in samples), "a sample carries a timestamp"
        # A job round opens the file for writing while the exporter runs: it waits at most one refresh.
        writer = DuckDBStore(store, lock_wait=10)
        try:
            writer.write_metrics([_doc(5, "new_feature", 0.5, "alert")])
        finally:
            writer.close()
        assert eventually(lambda: 'feature="new_feature"' in _metrics(port), 15)
    finally:
        stop(proc)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlmon.cli.main", "serve-metrics", *args], capture_output=True,
                          text=True, timeout=60)


def test_a_missing_store_is_one_line(tmp_path: Path) -> None:
    result = _run("--store", f"duckdb:///{tmp_path / 'nope.duckdb'}", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no such store" in result.stderr


def test_a_bad_prometheus_section_is_one_line_naming_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "mlmon.yaml"
    config.write_text("models:\n  churn: {}\nprometheus:\n  max_series: lots\n", encoding="utf-8")
    result = _run("--config", str(config), "--port", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "mlmon.yaml:4: prometheus.max_series" in result.stderr


def test_a_bad_refresh_interval_is_one_line() -> None:
    result = _run("--refresh-every", "soon", "--port", "0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--refresh-every" in result.stderr
