"""Shared builders for the alerting tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

import pytest

from mlmon.core.documents import MetricDocument, Threshold

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
DRIFT_THRESHOLD = Threshold(warning=0.1, alert=0.25, direction="above", source="default")

MetricFactory = Callable[..., MetricDocument]


def make_metric(day: int, status: str, *, value: float | None = 0.3, model: str = "churn", version: str = "3",
                family: str = "drift", metric: str = "psi", feature: str = "age",
                computed_at: datetime | None = None) -> MetricDocument:
    """A daily metric document for window ``day`` (0-based) with the given status."""
    start = T0 + timedelta(days=day)
    return MetricDocument(
        model=model, model_version=version, family=family, metric=metric,  # type: ignore[arg-type]
        window_start=start, window_end=start + timedelta(days=1), value=value, status=status,  # type: ignore[arg-type]
        n_current=1000, run_id="run-1", code_version="test", feature=feature, threshold=DRIFT_THRESHOLD,
        n_reference=5000, computed_at=computed_at or start + timedelta(days=1, minutes=5))


def series(statuses: Sequence[str], **kwargs: object) -> list[MetricDocument]:
    """One metric document per day, statuses in order."""
    return [make_metric(day, status, **kwargs) for day, status in enumerate(statuses)]  # type: ignore[arg-type]


@pytest.fixture
def metric() -> MetricFactory:
    return make_metric


# --- a real HTTP receiver on 127.0.0.1 -------------------------------------------------

import json  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402


@dataclass
class Receiver:
    """Records every request; answers with the queued statuses first, then 200.

    With ``hang_at`` = k, the k-th request (1-based) is recorded, ``hung`` is set, and its answer
    waits for ``release``: a delivery in flight, for a test to kill the sender meanwhile.
    """

    url: str
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    #: ``Retry-After`` values sent with the queued statuses, in order ("" for none).
    retry_after: list[str] = field(default_factory=list)
    hang_at: int | None = None
    hung: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def keys(self) -> list[str]:
        return [h["idempotency-key"] for h, _ in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec = state["r"]
            rec.requests.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
            if rec.hang_at is not None and len(rec.requests) == rec.hang_at:
                rec.hung.set()
                rec.release.wait(30)
            status = rec.statuses.pop(0) if rec.statuses else 200
            retry_after = rec.retry_after.pop(0) if rec.retry_after else ""
            try:
                self.send_response(status)
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except OSError:
                pass  # the sender is gone (a test killed it mid-delivery)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        state["r"].release.set()
        server.shutdown()
        server.server_close()
        thread.join()


# --- a receiver that answers one byte at a time, for ever -------------------------------

import socket  # noqa: E402
import time  # noqa: E402


@dataclass
class Trickler:
    """Reads the request, then sends a valid status line one byte per ``interval`` and never finishes."""

    url: str
    connections: int = 0
    first_request_at: float | None = None


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    state = Trickler(url=f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
    threads: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.5)
            try:
                conn.recv(65536)  # the request (headers and the small JSON body)
                if state.first_request_at is None:
                    state.first_request_at = time.monotonic()
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 10_000:
                    if stop.wait(0.5):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client hung up: what a deadline does

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            state.connections += 1
            t = threading.Thread(target=serve, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield state
    finally:
        stop.set()
        acceptor.join()
        listener.close()
        for t in threads:
            t.join()
