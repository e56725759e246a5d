"""Processes of the end-to-end tests: mlmon serve-metrics, Prometheus, Alertmanager, a webhook receiver.

Every process listens on 127.0.0.1 on a port picked free, keeps its data under the test's
tmp dir, and is ended (terminate, then kill) when the test leaves its context.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.eventually import eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextmanager
def process(argv: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def serve_metrics(store: Path, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``mlmon serve-metrics`` as a real subprocess, once /metrics answers (the caller stops it)."""
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlmon.cli.main", "serve-metrics", "--store",
                                 f"duckdb:///{store}", "--port", str(port), "--refresh-every", "1s", *extra],
                                stdout=out, stderr=subprocess.STDOUT)
    if not eventually(lambda: proc.poll() is not None or reachable(f"http://127.0.0.1:{port}/metrics"), 60):
        stop(proc)
        raise AssertionError(f"serve-metrics did not answer within 60 s: {log.read_text()}")
    assert proc.poll() is None, log.read_text()
    return proc


class Receiver:
    """A webhook endpoint that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/mlmon"

    def alerts(self, status: str | None = None, **labels: str) -> list[dict[str, Any]]:
        return [a for body in list(self.bodies) for a in body["alerts"]
                if (status is None or a["status"] == status)
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def query(prometheus: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
    body = get_json(f"{prometheus}/api/v1/query?{urllib.parse.urlencode(params)}")
    assert body["status"] == "success", body
    return list(body["data"]["result"])
