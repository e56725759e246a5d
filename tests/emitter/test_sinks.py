"""Sinks: file (append, rotation), stdout, TCP against a real local server."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlmon_logging import ModelLogger
from mlmon_logging.sinks import FileSink, StdoutSink, TcpSink, open_sink


def test_open_sink_parses_specs(tmp_path: Path) -> None:
    assert isinstance(open_sink("stdout"), StdoutSink)
    fs = open_sink(f"file://{tmp_path}/e.jsonl?max_bytes=1000&backups=2")
    assert isinstance(fs, FileSink) and fs.max_bytes == 1000 and fs.backups == 2 and fs.path == tmp_path / "e.jsonl"
    assert open_sink("file://./rel/e.jsonl").path == Path("./rel/e.jsonl")  # type: ignore[attr-defined]
    tcp = open_sink("tcp://127.0.0.1:5044")
    assert isinstance(tcp, TcpSink) and (tcp.host, tcp.port) == ("127.0.0.1", 5044)
    for bad in ("kafka://x", "tcp://host", "file://", f"file://{tmp_path}/e?rotate=1", "stdout2"):
        with pytest.raises(ValueError):
            open_sink(bad)


def test_file_sink_appends_across_loggers(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "events.jsonl"
    for _ in range(2):
        with ModelLogger("m", "1", sink=f"file://{path}", stats_interval=None) as mlog:
            mlog.log_prediction({"x": 1.0}, 1)
    assert len(path.read_bytes().splitlines()) == 2


def test_file_sink_rotates_by_size_without_splitting_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with ModelLogger("m", "1", sink=f"file://{path}?max_bytes=20000&backups=3", stats_interval=None,
                     batch_size=8) as mlog:
        for i in range(600):
            mlog.log_prediction({"x": float(i)}, 1)
            if i % 50 == 0:
                mlog.flush()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"]
    xs = []
    for f in files:
        lines = f.read_bytes().splitlines()
        assert f.stat().st_size <= 20000 + 8 * 1000  # at most one batch over
        xs += [orjson.loads(line)["mlmon"]["features"]["numeric"]["x"] for line in lines]
    # the newest files hold the newest events, all whole lines, in order, no gaps
    assert sorted(xs) == [float(i) for i in range(600 - len(xs), 600)]


def test_stdout_sink_writes_to_the_current_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, encoding="utf-8"))
    with ModelLogger("m", "1", sink="stdout", stats_interval=None) as mlog:
        mlog.log_prediction({"x": 1.0}, 1)
    assert orjson.loads(buffer.getvalue())["mlmon"]["features"]["numeric"] == {"x": 1.0}


class LineServer:
    """A json_lines TCP server on 127.0.0.1 that can go away and come back on the same port."""

    def __init__(self, port: int = 0) -> None:
        self.lines: list[bytes] = []
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen()
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn.makefile("rb") as stream:
            try:
                for line in stream:
                    with self._lock:
                        self.lines.append(line.rstrip(b"\n"))
            except (OSError, ValueError):
                return

    def ids(self) -> list[str]:
        with self._lock:
            return [orjson.loads(line)["mlmon"]["prediction"]["id"] for line in self.lines]

    def stop(self) -> None:
        # shutdown() first: close() alone leaves a socket that a thread blocks on in accept() listening (Linux).
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def _wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_tcp_sink_survives_a_server_that_goes_away_and_comes_back() -> None:
    server = LineServer()
    mlog = ModelLogger("m", "1", sink=f"tcp://127.0.0.1:{server.port}", stats_interval=None,
                       retry_initial=0.02, retry_max=0.1, queue_size=1000)
    first = [mlog.log_prediction({"x": float(i)}, 1) for i in range(100)]
    assert mlog.flush(timeout=10)
    assert _wait_for(lambda: len(server.ids()) == 100)

    server.stop()
    time.sleep(0.05)
    while_down = [mlog.log_prediction({"x": float(i)}, 1) for i in range(50)]
    assert not mlog.flush(timeout=0.3)  # nowhere to write: the events wait in memory
    assert mlog.stats.errors > 0 and mlog.stats.queued == 50 and mlog.stats.dropped == 0

    server2 = LineServer(server.port)
    assert mlog.flush(timeout=10)
    after = [mlog.log_prediction({"x": 1.0}, 1) for _ in range(10)]
    mlog.close()
    assert _wait_for(lambda: set(server2.ids()) == set(while_down + after))
    assert set(server.ids()) == set(first)
    assert mlog.stats.emitted == 160 and mlog.stats.dropped == 0
    server2.stop()


def test_tcp_sink_bounds_memory_while_disconnected_and_counts_drops() -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlog = ModelLogger("m", "1", sink=f"tcp://127.0.0.1:{port}", stats_interval=None, queue_size=20,
                       batch_size=5, retry_initial=0.01, retry_max=0.05, close_timeout=0.2)
    for i in range(200):
        mlog.log_prediction({"x": float(i)}, 1)
    stats = mlog.stats
    assert stats.queued <= 20 + 5 and stats.dropped >= 200 - 25
    mlog.close()
    final = mlog.stats
    assert final.emitted == 0 and final.dropped == 200 and final.queued == 0 and final.errors > 0
