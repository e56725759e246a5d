"""The tls:// sink against a real local TLS server, with certificates made for the test run.

A throwaway PKI is made with the ``openssl`` command line (``cryptography`` is
not a dependency): a trusted CA, a server and a client certificate it signed,
and a second, untrusted CA with its own server and client certificates.
"""

from __future__ import annotations

import re
import select
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlmon_logging import ModelLogger
from mlmon_logging.sinks import TcpSink, open_sink

from .test_sinks import LineServer, _wait_for

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    other_ca: Path  # trusted by nobody
    other_server_cert: Path
    other_server_key: Path
    other_client_cert: Path
    other_client_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def _make_ca(directory: Path, name: str, config: Path) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl("req", "-x509", "-config", config, "-extensions", "ca", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", f"/CN={name}")
    return cert, key


def _make_leaf(directory: Path, name: str, kind: str, ca: tuple[Path, Path], config: Path) -> tuple[Path, Path]:
    cert, key, request = directory / f"{name}.crt", directory / f"{name}.key", directory / f"{name}.csr"
    _openssl("req", "-new", "-config", config, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", request, "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
             str(int.from_bytes(name.encode(), "big")), "-days", "2", "-extfile", config, "-extensions", kind,
             "-out", cert)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("the TLS sink tests need the `openssl` command line to make their certificates")
    directory = tmp_path_factory.mktemp("pki")
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)
    ca = _make_ca(directory, "mlmon-test-ca", config)
    other_ca = _make_ca(directory, "untrusted-ca", config)
    server = _make_leaf(directory, "server", "server", ca, config)
    client = _make_leaf(directory, "mlmon-client", "client", ca, config)
    other_server = _make_leaf(directory, "other-server", "server", other_ca, config)
    other_client = _make_leaf(directory, "other-client", "client", other_ca, config)
    encrypted = directory / "client-encrypted.key"
    _openssl("pkey", "-in", client[1], "-aes256", "-passout", "pass:secret", "-out", encrypted)
    return Pki(ca=ca[0], server_cert=server[0], server_key=server[1], client_cert=client[0], client_key=client[1],
               client_key_encrypted=encrypted, other_ca=other_ca[0], other_server_cert=other_server[0],
               other_server_key=other_server[1], other_client_cert=other_client[0],
               other_client_key=other_client[1])


def server_context(cert: Path, key: Path, client_ca: Path | None = None,
                   maximum_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> ssl.SSLContext:
    """What Logstash's tcp input does with ssl_enabled (and ssl_client_authentication => required)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.maximum_version = maximum_version
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


class TlsLineServer(LineServer):
    """test_sinks' json_lines server behind TLS; its context can be swapped, its connections hung up on."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.client_names: list[str | None] = []
        self.handshake_failures = 0
        self.hangups = 0
        self.clean_client_closes = 0  # the client sent close_notify before closing
        self._hang_up: bool | None = None  # set to "graceful?" to close the open connections
        self._stopping = False
        super().__init__()  # starts accepting: everything above must exist by then

    def _read(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self.context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
        except (OSError, ValueError):
            with self._lock:
                self.handshake_failures += 1
            conn.close()
            return
        peer: dict[str, Any] | None = tls.getpeercert()
        subject = peer["subject"] if peer else ()  # ((("commonName", "mlmon-client"),), ...)
        with self._lock:
            self.client_names.append(next((v for rdn in subject for k, v in rdn if k == "commonName"), None))
        tls.settimeout(0.02)  # short reads, so that hang_up() and stop() are noticed
        pending = b""
        with tls:
            while not self._stopping:
                if self._hang_up is not None:
                    self._close(tls, graceful=self._hang_up)
                    return
                try:
                    data = tls.recv(65536)
                except TimeoutError:
                    continue
                except OSError:  # SSLEOFError: the client went without close_notify
                    return
                if not data:
                    with self._lock:
                        self.clean_client_closes += 1
                    return
                *complete, pending = (pending + data).split(b"\n")
                with self._lock:
                    self.lines.extend(complete)

    def _close(self, tls: ssl.SSLSocket, graceful: bool) -> None:
        if graceful:
            try:
                tls.unwrap()  # sends close_notify; the client never answers, so this times out
            except OSError:
                pass
        with self._lock:
            self.hangups += 1

    def hang_up(self, graceful: bool) -> None:
        """Close every open connection, as a server does with idle clients."""
        self._hang_up = graceful

    def accept_again(self) -> None:
        self._hang_up = None

    def stop(self) -> None:
        self._stopping = True
        super().stop()


@pytest.fixture
def serve() -> Iterator[Callable[[ssl.SSLContext], TlsLineServer]]:
    servers: list[TlsLineServer] = []

    def start(context: ssl.SSLContext) -> TlsLineServer:
        servers.append(TlsLineServer(context))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _logger(spec: str, **options: Any) -> ModelLogger:
    options = {"stats_interval": None, "retry_initial": 0.02, "retry_max": 0.1, "close_timeout": 0.3, **options}
    return ModelLogger("churn", "3", sink=spec, **options)


def _tcp_sink(mlog: ModelLogger) -> TcpSink:
    sink = mlog.sink
    assert isinstance(sink, TcpSink)
    return sink


def test_events_arrive_intact_over_tls_on_one_connection(pki: Pki, serve: Callable[..., TlsLineServer]) -> None:
    server = serve(server_context(pki.server_cert, pki.server_key))
    mlog = _logger(f"tls://127.0.0.1:{server.port}?ca={pki.ca}")
    logged = {}
    for round_ in range(3):  # idle gaps between rounds: the server's session tickets must not look like a hang-up
        for i in range(300):  # a batch spans several 16 KiB TLS records
            features = {"age": 20 + i, "plan": "pro" if i % 2 else "basic", "note": "é ✓ \"quoted\"\n"}
            logged[mlog.log_prediction(features, prediction=i % 2, score=i / 300)] = features
        assert mlog.flush(timeout=10)
        time.sleep(0.05)
    mlog.close()
    assert _wait_for(lambda: len(server.lines) == 900 and server.clean_client_closes == 1)
    received = {event["mlmon"]["prediction"]["id"]: event for event in map(orjson.loads, server.lines)}
    assert received.keys() == logged.keys()
    for pid, event in received.items():
        assert event["mlmon"]["features"]["numeric"] == {"age": logged[pid]["age"]}
        assert event["mlmon"]["features"]["categorical"] == {"plan": logged[pid]["plan"],
                                                             "note": logged[pid]["note"]}
    assert _tcp_sink(mlog).connects == 1
    assert mlog.stats.errors == 0 and mlog.stats.emitted == 900 and mlog.stats.dropped == 0
    assert repr(mlog.sink) == f"tls://127.0.0.1:{server.port}"


def test_an_untrusted_server_gets_nothing_and_the_events_wait_until_it_is_fixed(
        pki: Pki, serve: Callable[..., TlsLineServer]) -> None:
    server = serve(server_context(pki.other_server_cert, pki.other_server_key))
    mlog = _logger(f"tls://127.0.0.1:{server.port}?ca={pki.ca}")
    pids = [mlog.log_prediction({"x": float(i)}, 1) for i in range(30)]
    assert not mlog.flush(timeout=0.3)  # every handshake fails verification
    assert mlog.stats.errors > 0 and mlog.stats.queued == 30 and mlog.stats.dropped == 0
    assert server.handshake_failures > 0 and server.lines == []

    server.context = server_context(pki.server_cert, pki.server_key)  # Logstash gets the right certificate
    assert mlog.flush(timeout=10)
    mlog.close()
    assert _wait_for(lambda: sorted(server.ids()) == sorted(pids))
    assert mlog.stats.emitted == 30 and mlog.stats.dropped == 0


@pytest.mark.parametrize(("query", "error"), [
    ("", "certificate verify failed"),  # the system trust store does not know the test CA
    ("?ca={other_ca}", "certificate verify failed"),
    ("?ca={ca}&server_hostname=logstash.example.org", "match|mismatch"),
], ids=["system-store", "wrong-ca", "wrong-name"])
def test_the_server_certificate_and_name_are_verified(pki: Pki, serve: Callable[..., TlsLineServer],
                                                      query: str, error: str) -> None:
    server = serve(server_context(pki.server_cert, pki.server_key))
    sink = open_sink(f"tls://127.0.0.1:{server.port}" + query.format(ca=pki.ca, other_ca=pki.other_ca))
    with pytest.raises(ssl.SSLCertVerificationError, match=error):
        sink.write(b"{}\n")
    fixed = open_sink(f"tls://127.0.0.1:{server.port}?ca={pki.ca}&server_hostname=localhost")
    fixed.write(b'{"ok":1}\n')
    fixed.close()
    assert _wait_for(lambda: server.lines == [b'{"ok":1}'])


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("key_in_cert", [False, True], ids=["key-file", "key-in-cert-file"])
def test_mutual_tls_delivers_with_the_client_certificate(pki: Pki, serve: Callable[..., TlsLineServer],
                                                         tmp_path: Path, tls_version: ssl.TLSVersion,
                                                         key_in_cert: bool) -> None:
    server = serve(server_context(pki.server_cert, pki.server_key, client_ca=pki.ca, maximum_version=tls_version))
    if key_in_cert:
        combined = tmp_path / "client.pem"
        combined.write_bytes(pki.client_cert.read_bytes() + pki.client_key.read_bytes())
        client = f"cert={combined}"
    else:
        client = f"cert={pki.client_cert}&key={pki.client_key}"
    mlog = _logger(f"tls://127.0.0.1:{server.port}?ca={pki.ca}&{client}")
    pids = [mlog.log_prediction({"x": float(i)}, 1) for i in range(50)]
    mlog.close()
    assert _wait_for(lambda: sorted(server.ids()) == sorted(pids))
    assert server.client_names == ["mlmon-client"]


def test_the_ca_may_be_a_directory_of_hashed_certificates(pki: Pki, serve: Callable[..., TlsLineServer],
                                                          tmp_path: Path) -> None:
    shutil.copy(pki.ca, tmp_path / "stack-ca.pem")
    _openssl("rehash", tmp_path)  # the <hash>.0 links OpenSSL looks CAs up by
    server = serve(server_context(pki.server_cert, pki.server_key))
    sink = open_sink(f"tls://127.0.0.1:{server.port}?ca={tmp_path}")
    sink.write(b'{"ok":1}\n')
    sink.close()
    assert _wait_for(lambda: server.lines == [b'{"ok":1}'])


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("client", ["none", "untrusted"])
def test_mutual_tls_refuses_a_client_without_a_trusted_certificate_and_nothing_is_lost(
        pki: Pki, serve: Callable[..., TlsLineServer], tls_version: ssl.TLSVersion, client: str) -> None:
    # Under TLS 1.3 the client's handshake ends before the server checks its certificate:
    # the sink must learn of the rejection before it sends, or the first chunk would be lost.
    server = serve(server_context(pki.server_cert, pki.server_key, client_ca=pki.ca, maximum_version=tls_version))
    query = f"?ca={pki.ca}"
    if client == "untrusted":
        query += f"&cert={pki.other_client_cert}&key={pki.other_client_key}"
    mlog = _logger(f"tls://127.0.0.1:{server.port}{query}")
    for i in range(30):
        mlog.log_prediction({"x": float(i)}, 1)
    assert not mlog.flush(timeout=0.5)
    stats = mlog.stats
    assert stats.errors > 0 and stats.queued == 30 and stats.emitted == 0 and stats.dropped == 0
    assert server.handshake_failures > 0 and server.lines == []
    mlog.close()
    assert mlog.stats.dropped == 30  # given up on at close, and counted


@pytest.mark.parametrize("graceful", [True, False], ids=["close_notify", "bare-close"])
def test_a_server_hanging_up_on_an_idle_client_is_noticed_before_the_next_send(
        pki: Pki, serve: Callable[..., TlsLineServer], graceful: bool) -> None:
    server = serve(server_context(pki.server_cert, pki.server_key))
    mlog = _logger(f"tls://127.0.0.1:{server.port}?ca={pki.ca}")
    first = [mlog.log_prediction({"x": float(i)}, 1) for i in range(20)]
    assert mlog.flush(timeout=10)
    assert _wait_for(lambda: len(server.lines) == 20)

    server.hang_up(graceful)
    assert _wait_for(lambda: server.hangups == 1)
    server.accept_again()
    client = _tcp_sink(mlog)._sock
    assert client is not None
    assert _wait_for(lambda: select.select([client], [], [], 0)[0])  # the close_notify / FIN has arrived
    second = [mlog.log_prediction({"x": float(i)}, 1) for i in range(20)]
    assert mlog.flush(timeout=10)
    mlog.close()
    # Sent into the dead connection, the second chunk would vanish without an error.
    assert _wait_for(lambda: sorted(server.ids()) == sorted(first + second))
    assert _tcp_sink(mlog).connects == 2 and mlog.stats.errors == 0


def test_the_context_is_tls_1_2_or_newer_with_host_names_checked(pki: Pki) -> None:
    sink = open_sink(f"tls://logstash:5045?ca={pki.ca}")
    assert isinstance(sink, TcpSink) and sink.ssl_context is not None
    assert sink.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert sink.ssl_context.check_hostname and sink.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert (sink.host, sink.port, sink.server_hostname) == ("logstash", 5045, None)


@pytest.mark.parametrize(("spec", "named"), [
    ("tls://logstash:5045?verify=false", "verify"),
    ("tls://logstash:5045?cafile={ca}", "cafile"),
    ("tls://logstash:5045?ca=", "'ca' is empty"),
    ("tls://logstash:5045?ca={missing}", "ca='{missing}': no such file"),
    ("tls://logstash:5045?ca={client_key}", "ca="),  # not a certificate
    ("tls://logstash:5045?key={client_key}", "key given without cert"),
    ("tls://logstash:5045?cert={missing}&key={client_key}", "cert='{missing}': no such file"),
    ("tls://logstash:5045?cert={client_cert}&key={missing}", "key='{missing}': no such file"),
    ("tls://logstash:5045?cert={client_cert}&key={server_key}", "cert="),  # key of another certificate
    ("tls://logstash:5045?cert={client_cert}&key={encrypted_key}", "encrypted"),
    ("tls://logstash", "needs host and port"),
    ("tls://logstash:tls", "Port"),
    ("tcp://logstash:5044?ca={ca}", "unknown tcp sink options ['ca']"),
    ("file:///tmp/e.jsonl?max_bytes=big", "max_bytes='big'"),
])
def test_bad_specs_fail_at_once_naming_the_option_and_the_spec(pki: Pki, tmp_path: Path, spec: str,
                                                               named: str) -> None:
    values = {"ca": pki.ca, "client_cert": pki.client_cert, "client_key": pki.client_key,
              "server_key": pki.server_key, "encrypted_key": pki.client_key_encrypted,
              "missing": tmp_path / "missing.pem"}
    spec, named = spec.format(**values), named.format(**values)
    with pytest.raises(ValueError, match=re.escape(named)) as raised:
        open_sink(spec)
    assert spec in str(raised.value)
    with pytest.raises(ValueError, match=re.escape(named)):  # from the constructor, not the writer thread
        ModelLogger("churn", "3", sink=spec, stats_interval=None)
