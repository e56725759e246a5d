"""A local HTTP server (127.0.0.1, random port) that records requests and answers from a handler.

Code that talks to Elasticsearch or Kibana is tested at the HTTP edge only: the real
client, real urllib3/requests, real sockets; only the server is fake, answering
with response shapes taken from Elastic's documentation::

    def handler(req: Request) -> Reply:
        if req.method == "GET" and req.path == "/":
            return es_reply({"version": {"number": "9.2.1"}, "cluster_name": "c"})
        return Reply(404, {"error": "no route"})

    with FakeServer(handler) as server:
        es = connect(server.url)
        ...
        assert [(r.method, r.path) for r in server.requests] == [...]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw_body) if self.raw_body else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialised unless bytes
    headers: dict[str, str] = field(default_factory=dict)


#: Every Elasticsearch 9 response carries this header; the official client refuses answers without it.
ES_PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}


def es_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, body, {**ES_PRODUCT_HEADER, **(headers or {})})


def es_error(status: int, err_type: str, reason: str) -> Reply:
    """An error body shaped like Elasticsearch's (``{"error": {"root_cause": ..., "type", "reason"}, "status"}``)."""
    cause = {"type": err_type, "reason": reason}
    return es_reply({"error": {"root_cause": [cause], **cause}, "status": status}, status)


Handler = Callable[[Request], Reply]


class FakeServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One buffered write per response and no Nagle: otherwise every request of a
            # keep-alive connection waits ~40 ms for a delayed ACK.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                req = Request(self.command, unquote(parts.path), parse_qs(parts.query, keep_blank_values=True),
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with outer._lock:
                    outer.requests.append(req)
                try:
                    reply = outer.handler(req)
                except Exception as exc:  # a broken test handler must show up as a 500, not a hang
                    reply = Reply(500, {"error": f"test handler failed: {exc!r}"})
                payload = reply.body if isinstance(reply.body, bytes) else (
                    b"" if reply.body is None else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                self.wfile.flush()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def writes(self) -> list[Request]:
        """Requests that could change state (anything but GET/HEAD)."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]
