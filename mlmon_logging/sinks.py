"""Where JSON lines go: stdout, a file (append, size-based rotation), TCP or TLS.

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
* ``tls://host:5045`` - the same over TLS (1.2 or newer), to a ``tcp`` input
  with ``ssl_enabled => true``. Options, all optional:

  - ``ca=/path/ca.crt`` - PEM bundle (or directory of hashed certificates) of
    the CA that signed Logstash's certificate; default: the system trust store;
  - ``cert=/path/client.crt&key=/path/client.key`` - a client certificate for
    mutual TLS (``ssl_client_authentication => "required"``); ``key`` may be
    left out when ``cert`` holds the key too. The key must not be encrypted:
    protect it with file permissions;
  - ``server_hostname=logstash.example.org`` - the name the server's
    certificate must carry (and the SNI sent), when it differs from the host
    dialled, e.g. an IP address or an SSH tunnel to ``localhost``.

  The server's certificate is always verified and its name checked; there is
  no switch to turn that off - for a private or self-signed CA pass its
  certificate as ``ca``. Files are read when the sink is made, so a missing or
  broken one fails ``ModelLogger(...)`` at once rather than the background
  writer later.

Sending over TLS: point the logger at Logstash's TLS input (port 5045 in
docker-compose.yml) and give it the CA that signed Logstash's certificate::

    ModelLogger("churn", "3", sink="tls://logstash:5045?ca=/certs/ca/ca.crt")
    # mutual TLS, when the input requires client certificates:
    ModelLogger("churn", "3", sink="tls://logstash:5045?ca=/certs/ca/ca.crt"
                "&cert=/certs/churn/churn.crt&key=/certs/churn/churn.key")

Reconnects, backoff and the resend of a cut chunk work as for ``tcp://``.
Under TLS 1.3 a server checks the client certificate only after the client
has finished its handshake, so after each connect the sink waits for the
server's first records (session tickets, or the alert of a rejected
certificate) before it sends, at most a few round trips: a rejected
certificate then fails the connect and keeps the events, instead of losing
the first chunk into a connection that the server is tearing down.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Final, Protocol, runtime_checkable
from urllib.parse import SplitResult, parse_qs, urlsplit

#: Shortest wait after a TLS 1.3 handshake for the server to accept or reject the client.
_MIN_TLS_VERDICT_WAIT_S: Final = 0.25


@runtime_checkable
class Sink(Protocol):
    def write(self, data: bytes | bytearray) -> None:
        """Write whole newline-terminated lines, or raise OSError having written nothing useful."""

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def after_fork(self) -> None:
        """Called in a forked child: drop handles shared with the parent."""


class SinkGone(OSError):
    """The sink's reader is gone for good (a closed pipe): retrying cannot help."""


class StdoutSink:
    """Writes to the process's current ``sys.stdout`` (looked up per write, so redirection works)."""

    def write(self, data: bytes | bytearray) -> None:
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        try:
            if buffer is not None:
                buffer.write(data)
            else:
                stream.write(data.decode("utf-8"))
        except BrokenPipeError as err:
            raise self._gone() from err

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError as err:
            raise self._gone() from err

    @staticmethod
    def _gone() -> SinkGone:
        # What is left goes to /dev/null, as Python's documentation advises on SIGPIPE, so the
        # interpreter's own flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SinkGone("stdout was closed by its reader (e.g. `| head`)")

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

    Each chunk goes to the kernel with ``os.write`` (no user-space buffer, so
    ``flush`` has nothing to do and what ``write`` returned from is readable by
    Logstash or ``mlmon ingest --follow`` at once). A write that fails part-way -
    a full disk, a quota, the file size limit - is rolled back: the file is
    truncated to where the chunk began, so it always ends with a whole line and
    the emitter's retry writes the chunk whole, never a torn line or a second
    copy of its first part. When even the truncation fails, nothing more is
    written until it succeeds. One writer per file: use ``{pid}`` in the path
    for the workers of a pre-fork server.
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int | None = None, backups: int = 5) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if backups < 0:
            raise ValueError(f"backups must be >= 0, got {backups}")
        self.template = str(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._size = 0
        #: Where the file must be cut back to before anything more is written (a failed rollback).
        self._torn_at: int | None = None

    @property
    def path(self) -> Path:
        return Path(self.template.replace("{pid}", str(os.getpid())))

    def _open(self) -> int:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._fd = fd
        self._size = os.fstat(fd).st_size
        return fd

    def write(self, data: bytes | bytearray) -> None:
        fd = self._fd
        if fd is None:
            fd = self._open()
        if self._torn_at is not None:
            self._roll_back(fd, self._torn_at)  # raises again while the file cannot be cut back
        elif self.max_bytes is not None and self._size > 0 and self._size + len(data) > self.max_bytes:
            self._rotate()
            fd = self._open()
        start = self._size
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.write(fd, view[done:])
        except OSError:
            if done:
                self._roll_back(fd, start)
            raise
        self._size = start + done

    def _roll_back(self, fd: int, size: int) -> None:
        """Cut the file back to ``size`` bytes (the end of its last whole line)."""
        try:
            os.ftruncate(fd, size)
        except OSError:
            self._torn_at = size
            raise
        self._torn_at = None
        self._size = size

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

    def flush(self) -> None:
        pass  # every write went to the kernel whole

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None

    def after_fork(self) -> None:
        self._fd = None  # the parent owns (and closes) the inherited descriptor

    def __repr__(self) -> str:
        return f"file://{self.path}"


class TcpSink:
    """JSON lines over TCP to Logstash (``tcp`` input, ``json_lines`` codec), over TLS given ``ssl_context``.

    ``server_hostname`` is the name the server's certificate is checked
    against (and sent as SNI); by default ``host``.
    """

    def __init__(self, host: str, port: int, connect_timeout: float = 5.0, send_timeout: float = 10.0, *,
                 ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None) -> None:
        if server_hostname is not None and ssl_context is None:
            raise ValueError("server_hostname needs an ssl_context")
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self._sock: socket.socket | None = None
        self.connects = 0

    def _connect(self) -> socket.socket:
        started = time.monotonic()
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self.ssl_context is not None:
                # The handshake runs here, bounded by connect_timeout per step.
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname or self.host)
                self._await_tls_verdict(sock, time.monotonic() - started)
            sock.settimeout(self.send_timeout)
        except BaseException:
            sock.close()
            raise
        self.connects += 1
        return sock

    def _await_tls_verdict(self, sock: ssl.SSLSocket, handshake_seconds: float) -> None:
        """Under TLS 1.3, wait until the server has accepted (or rejected) our side of the handshake.

        A TLS 1.3 client is done before the server has checked its
        certificate; a server that rejects it answers with an alert a round
        trip later, and whatever was sent meanwhile is lost. Servers send
        their session tickets once they accept, so the first record that
        arrives settles it; a server that sends none costs one wait of a few
        handshake times. Under TLS 1.2 the server's Finished already vouched.
        """
        if sock.version() != "TLSv1.3":
            return
        wait = min(self.connect_timeout, max(_MIN_TLS_VERDICT_WAIT_S, 2 * handshake_seconds))
        readable, _, _ = select.select([sock], [], [], wait)
        if readable and self._tls_drain(sock):  # an alert raises SSLError (an OSError) here
            raise ConnectionAbortedError(f"{self!r} closed the connection right after the TLS handshake")

    def _tls_drain(self, sock: ssl.SSLSocket) -> bool:
        """Read every TLS record the server sent, without blocking; True if it closed.

        Records are not all data: TLS 1.3 session tickets make the socket
        readable too, and are used up here. A close_notify alert or a bare
        EOF reads as b"" (suppress_ragged_eofs); other alerts raise SSLError.
        """
        sock.setblocking(False)
        try:
            while True:
                if not sock.recv(4096):
                    return True
                # Logstash never writes application data: discard it, as the plain TCP path does.
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        finally:
            sock.settimeout(self.send_timeout)

    def _peer_closed(self, sock: socket.socket) -> bool:
        """Logstash never writes back, so readable means closed (EOF) or reset (or, under TLS, housekeeping).

        Checking before each send catches a server that went away while we
        were idle; otherwise the first send after it left would vanish into
        the kernel's buffer of a dead connection.
        """
        try:
            # select() rather than MSG_DONTWAIT: a socket with a timeout polls for that long before recv.
            readable, _, _ = select.select([sock], [], [], 0)
            if isinstance(sock, ssl.SSLSocket):
                # SSLSocket refuses MSG_PEEK, and peeking below TLS would see records, not data.
                return (bool(readable) or sock.pending() > 0) and self._tls_drain(sock)
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
            self._drop_connection()
            sock = None
        if sock is None:
            sock = self._sock = self._connect()
        try:
            sock.sendall(data)
        except OSError:
            self._drop_connection()
            raise

    def flush(self) -> None:
        pass  # sendall has handed everything to the kernel

    def close(self) -> None:
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket):
            # Send close_notify without waiting for the server's: Logstash then sees a clean end, not a truncation.
            try:
                sock.setblocking(False)
                sock.unwrap()
            except (OSError, ValueError):
                pass  # SSLWantReadError (no reply yet) is the usual outcome; the fd is closed below anyway
        self._drop_connection()

    def _drop_connection(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def after_fork(self) -> None:
        self._sock = None  # never share a connection (or its TLS state) with the parent

    def __repr__(self) -> str:
        scheme = "tcp" if self.ssl_context is None else "tls"
        return f"{scheme}://{self.host}:{self.port}"


def _refuse_encrypted_key() -> str:
    # Without a callback OpenSSL would prompt on the terminal and hang a service at start-up.
    raise ValueError("the key is encrypted; give an unencrypted key file and protect it with file permissions")


def tls_client_context(ca: str | None = None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A TLS client context: TLS 1.2 or newer, server certificate and host name always verified.

    ``ca``: PEM file or directory of the CAs to trust (default: the system
    trust store). ``cert`` and ``key``: a client certificate for mutual TLS
    (``key`` may be left out when ``cert`` holds it). Raises ``ValueError``
    naming the option whose file is missing or unusable.
    """
    if key is not None and cert is None:
        raise ValueError("key given without cert")
    for option, path in (("ca", ca), ("cert", cert), ("key", key)):
        if path is not None and not os.path.exists(path):
            raise ValueError(f"{option}={path!r}: no such file")
    try:
        if ca is not None and os.path.isdir(ca):
            context = ssl.create_default_context(capath=ca)
        else:
            context = ssl.create_default_context(cafile=ca)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"ca={ca!r}: not a readable PEM CA bundle ({exc})") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Python's default too, but the floor is ours to keep
    if cert is not None:
        try:
            context.load_cert_chain(cert, key, password=_refuse_encrypted_key)
        except (ssl.SSLError, OSError) as exc:
            named = f"cert={cert!r}" + (f", key={key!r}" if key is not None else "")
            raise ValueError(f"{named}: not a usable PEM certificate and matching key ({exc})") from exc
        except ValueError as exc:
            raise ValueError(f"key={key or cert!r}: {exc}") from exc
    return context


def _options(spec: str, parts: SplitResult, kind: str, known: Collection[str]) -> dict[str, str]:
    """The query options of a sink spec; an unknown or empty option is a ValueError naming it."""
    options = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(options) - set(known)
    if unknown:
        hint = ""
        if kind == "tls" and "verify" in unknown:
            hint = "; certificates are always verified: give a private CA as ca=/path/ca.crt"
        raise ValueError(f"unknown {kind} sink options {sorted(unknown)} in {spec!r}"
                         f" (known: {', '.join(sorted(known)) or 'none'}){hint}")
    for name, value in options.items():
        if not value:
            raise ValueError(f"{kind} sink option {name!r} is empty in {spec!r}")
    return options


def _int_option(options: dict[str, str], name: str, spec: str) -> int | None:
    if name not in options:
        return None
    try:
        return int(options[name])
    except ValueError:
        raise ValueError(f"file sink option {name}={options[name]!r} in {spec!r} is not an integer") from None


def _host_and_port(spec: str, parts: SplitResult) -> tuple[str, int]:
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number or out of range
        raise ValueError(f"{parts.scheme} sink {spec!r}: {exc}") from None
    if not host or port is None:
        raise ValueError(f"{parts.scheme} sink {spec!r} needs host and port, e.g. {parts.scheme}://localhost:5044")
    return host, port


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
        options = _options(spec, parts, "file", {"max_bytes", "backups"})
        backups = _int_option(options, "backups", spec)
        return FileSink(location, max_bytes=_int_option(options, "max_bytes", spec),
                        backups=5 if backups is None else backups)
    if parts.scheme == "tcp":
        host, port = _host_and_port(spec, parts)
        _options(spec, parts, "tcp", ())
        return TcpSink(host, port)
    if parts.scheme == "tls":
        host, port = _host_and_port(spec, parts)
        options = _options(spec, parts, "tls", {"ca", "cert", "key", "server_hostname"})
        try:
            context = tls_client_context(options.get("ca"), options.get("cert"), options.get("key"))
        except ValueError as exc:
            raise ValueError(f"tls sink {spec!r}: {exc}") from exc
        return TcpSink(host, port, ssl_context=context, server_hostname=options.get("server_hostname"))
    raise ValueError(f"unknown sink {spec!r}: use 'stdout', 'file:///path/events.jsonl', "
                     "'tcp://host:port' or 'tls://host:port[?ca=/path/ca.crt]'")
