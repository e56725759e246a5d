"""Where JSON lines go: stdout, a file (append, size-based rotation) or TCP.

A sink is written only by the emitter's background thread. ``write`` gets
one chunk of whole lines (``bytes`` or, from ``ModelLogger``, a
``bytearray`` that is never changed afterwards) and either takes all of it
or raises ``OSError``; the emitter then keeps the chunk and retries with
backoff, so events wait in memory (bounded by the queue) while a file
system is full or Logstash is away.

Sink specs:

* ``stdout``
* ``file:///abs/path/events.jsonl`` or ``file://./relative.jsonl``; options
  ``?max_bytes=104857600&backups=5``. ``{pid}`` in the path is replaced by
  the process id, so the workers of a pre-fork server write separate files.
* ``tcp://host:5044`` - Logstash's ``tcp`` input with the ``json_lines``
  codec. A chunk cut by a dropped connection is sent again whole on the new
  connection: events carry ``event.id``, the document id downstream, so a
  resend overwrites instead of duplicating.
"""

from __future__ import annotations

import os
import select
import socket
import sys
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit


@runtime_checkable
class Sink(Protocol):
    def write(self, data: bytes | bytearray) -> None:
        """Write whole newline-terminated lines, or raise OSError having written nothing useful."""

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def after_fork(self) -> None:
        """Called in a forked child: drop handles shared with the parent."""


class StdoutSink:
    """Writes to the process's current ``sys.stdout`` (looked up per write, so redirection works)."""

    def write(self, data: bytes | bytearray) -> None:
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            buffer.write(data)
        else:
            stream.write(data.decode("utf-8"))

    def flush(self) -> None:
        sys.stdout.flush()

    def close(self) -> None:
        self.flush()

    def after_fork(self) -> None:
        pass

    def __repr__(self) -> str:
        return "stdout"


class FileSink:
    """Appends to a file; past ``max_bytes`` it is renamed ``<name>.1`` (``.1`` -> ``.2`` ...).

    A chunk is never split across files, so a file may exceed ``max_bytes``
    by at most one chunk (one emitter batch).
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int | None = None, backups: int = 5) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if backups < 0:
            raise ValueError(f"backups must be >= 0, got {backups}")
        self.template = str(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: BinaryIO | None = None
        self._size = 0

    @property
    def path(self) -> Path:
        return Path(self.template.replace("{pid}", str(os.getpid())))

    def _open(self) -> None:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")
        self._size = self._file.tell()

    def write(self, data: bytes | bytearray) -> None:
        if self._file is None:
            self._open()
        elif self.max_bytes is not None and self._size > 0 and self._size + len(data) > self.max_bytes:
            self._rotate()
        assert self._file is not None
        self._file.write(data)
        self._size += len(data)

    def _rotate(self) -> None:
        self.close()
        path = self.path
        if self.backups == 0:
            path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = path.with_name(f"{path.name}.{index}")
                if older.exists():
                    os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
            os.replace(path, path.with_name(f"{path.name}.1"))
        self._open()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None

    def after_fork(self) -> None:
        self._file = None  # the parent owns (and flushes) the inherited handle

    def __repr__(self) -> str:
        return f"file://{self.path}"


class TcpSink:
    """JSON lines over TCP to Logstash (``tcp`` input, ``json_lines`` codec)."""

    def __init__(self, host: str, port: int, connect_timeout: float = 5.0, send_timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self._sock: socket.socket | None = None
        self.connects = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.settimeout(self.send_timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.connects += 1
        return sock

    def _peer_closed(self, sock: socket.socket) -> bool:
        """Logstash never writes back, so readable means closed (EOF) or reset.

        Checking before each send catches a server that went away while we
        were idle; otherwise the first send after it left would vanish into
        the kernel's buffer of a dead connection.
        """
        try:
            # select() rather than MSG_DONTWAIT: a socket with a timeout polls for that long before recv.
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            data = sock.recv(4096, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):
            return True
        if data:
            sock.recv(len(data))  # unexpected bytes from the peer: discard
            return False
        return True

    def write(self, data: bytes | bytearray) -> None:
        sock = self._sock
        if sock is not None and self._peer_closed(sock):
            self.close()
            sock = None
        if sock is None:
            sock = self._sock = self._connect()
        try:
            sock.sendall(data)
        except OSError:
            self.close()
            raise

    def flush(self) -> None:
        pass  # sendall has handed everything to the kernel

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def after_fork(self) -> None:
        self._sock = None  # never share a connection with the parent

    def __repr__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


def open_sink(spec: str | Sink) -> Sink:
    """A sink from its spec string (see the module doc), or the sink itself."""
    if not isinstance(spec, str):
        if isinstance(spec, Sink):
            return spec
        raise TypeError(f"sink must be a spec string or a Sink, not {type(spec).__name__}")
    if spec == "stdout":
        return StdoutSink()
    parts = urlsplit(spec)
    if parts.scheme == "file":
        location = parts.path if parts.netloc in ("", "localhost") else parts.netloc + parts.path
        if not location:
            raise ValueError(f"file sink {spec!r} has no path")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"max_bytes", "backups"}
        if unknown:
            raise ValueError(f"unknown file sink options {sorted(unknown)} in {spec!r}")
        max_bytes = int(options["max_bytes"]) if "max_bytes" in options else None
        return FileSink(location, max_bytes=max_bytes, backups=int(options.get("backups", 5)))
    if parts.scheme == "tcp":
        if not parts.hostname or parts.port is None:
            raise ValueError(f"tcp sink {spec!r} needs host and port, e.g. tcp://localhost:5044")
        return TcpSink(parts.hostname, parts.port)
    raise ValueError(f"unknown sink {spec!r}: use 'stdout', 'file:///path/events.jsonl' or 'tcp://host:port'")
