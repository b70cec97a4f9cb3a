"""The exporter's HTTP transport against real local servers: TLS, proxies (HTTP and CONNECT), keep-alive."""

from __future__ import annotations

import http.client
import http.server
import select
import socket
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

import aither
from aither._export._transport import HttpTransport, TransportError
from aither.testing import Fault, OTLPReceiver


def _init(url: str) -> None:
    aither.init(api_key="aith_transport", base_url=url, flush_interval=0.05, initial_backoff=0.05, max_retry_time=2.0)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[OTLPReceiver]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with OTLPReceiver(tls=context) as receiver:
        yield receiver


def test_https_with_a_trusted_certificate_delivers(
    tls_receiver: OTLPReceiver, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    _init(tls_receiver.url)
    trace_id = aither.log_prediction("tls", {"x": 1}, 1)
    assert aither.flush(timeout=10)
    assert [span.trace_id for span in tls_receiver.spans] == [trace_id]


def test_https_with_an_untrusted_certificate_says_so(tls_receiver: OTLPReceiver) -> None:
    _init(tls_receiver.url)
    aither.log_prediction("tls", {"x": 1}, 1)
    assert aither.flush(timeout=10) is False
    stats = aither.stats()
    assert "TLS certificate verification failed" in (stats["last_error"] or "")
    assert tls_receiver.spans == []


def test_a_retry_the_deadline_cuts_short_keeps_the_error_that_says_why() -> None:
    # The first try is reset; the retry gets what is left of the retry budget (0.5 s) as its timeout, and the
    # server takes longer: that try times out for want of time, and last_error still names the reset.
    with OTLPReceiver() as receiver:
        receiver.fail(Fault(reset=True), Fault(delay=1.5))
        aither.init(api_key="aith_transport", base_url=receiver.url, flush_interval=0.05, initial_backoff=0.05,
                    max_retry_time=0.5)  # fmt: skip
        aither.log_prediction("cut", {"x": 1}, 1)
        assert aither.flush(timeout=10) is False
        stats = aither.stats()
        assert stats["last_error"] == f"connection reset by the server ({receiver.url}/v1/traces)"
        assert stats["export_errors"] == 2  # the retry's timeout is counted, only not shown as the cause


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    seen: list[str]


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """A forward proxy: absolute-URI requests are relayed, CONNECT opens a tunnel."""

    server: _Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.server.seen.append(f"POST {self.path}")
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream.request("POST", target.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    def do_CONNECT(self) -> None:
        self.server.seen.append(f"CONNECT {self.path}")
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        client = self.connection
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 10)
            if not readable:
                break
            for source in readable:
                data = source.recv(65536)
                if not data:
                    upstream.close()
                    self.close_connection = True
                    return
                (upstream if source is client else client).sendall(data)


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy(("127.0.0.1", 0), _ProxyHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _proxy_url(server: _Proxy) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def test_http_proxy_from_the_environment_carries_the_requests(proxy: _Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("HTTP_PROXY", _proxy_url(proxy))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        _init(receiver.url)
        trace_id = aither.log_prediction("proxied", {"x": 1}, 1)
        assert aither.flush(timeout=10)
        assert [span.trace_id for span in receiver.spans] == [trace_id]
        assert f"POST {receiver.url}/v1/traces" in proxy.seen


def test_no_proxy_exempts_its_hosts(proxy: _Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("HTTP_PROXY", _proxy_url(proxy))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        _init(receiver.url)
        aither.log_prediction("direct", {"x": 1}, 1)
        assert aither.flush(timeout=10)
        assert len(receiver.spans) == 1
        assert proxy.seen == []


def test_https_goes_through_a_connect_tunnel(
    proxy: _Proxy,
    tls_receiver: OTLPReceiver,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    monkeypatch.setenv("HTTPS_PROXY", _proxy_url(proxy))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    _init(tls_receiver.url)
    trace_id = aither.log_prediction("tunnel", {"x": 1}, 1)
    assert aither.flush(timeout=10)
    assert [span.trace_id for span in tls_receiver.spans] == [trace_id]
    assert proxy.seen[0] == f"CONNECT {tls_receiver.url.removeprefix('https://')}"


def test_requests_share_one_kept_alive_connection() -> None:
    with OTLPReceiver() as receiver:
        _init(receiver.url)
        for i in range(3):
            aither.log_prediction("alive", {"x": i}, i)
            assert aither.flush(timeout=10)
        clients = {request.client for request in receiver.requests + receiver.metrics_requests}
        assert len(receiver.requests) == 3
        assert len(clients) == 1


def test_a_connection_refused_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = HttpTransport(f"http://127.0.0.1:{port}", {})
    with pytest.raises(TransportError, match="connection refused"):
        transport.post("/v1/traces", b"", {}, timeout=2)
