"""A real OTLP/HTTP receiver on 127.0.0.1 that can misbehave on purpose, for tests of delivery.

Faults are scripted per request: answer a status (with headers such as ``Retry-After``), sleep before
answering, or reset the connection. Every request that reached the handler is kept, decoded.
"""

from __future__ import annotations

import collections
import dataclasses
import http.server
import socket
import ssl
import struct
import threading
import time

from ._metrics import MetricPoint, decode_metrics
from ._spans import CapturedSpan, decode_request

__all__ = ["Fault", "OTLPReceiver", "ReceivedRequest"]


@dataclasses.dataclass(frozen=True)
class Fault:
    """What to do with one request instead of answering 200."""

    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Seconds to sleep before answering (past the client's timeout, to test timeouts).
    delay: float = 0.0
    #: Close the socket with a TCP reset instead of answering.
    reset: bool = False
    body: bytes = b""
    #: The path whose next request gets this fault: span requests by default, so that the aggregates the
    #: SDK also sends (to ``/v1/metrics``) do not take the faults a test meant for its spans.
    path: str = "/v1/traces"


@dataclasses.dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None
    #: ``time.monotonic()`` when the request body had been read.
    received_at: float
    #: The client's (host, port): tells connections apart.
    client: tuple[str, int] = ("", 0)

    @property
    def spans(self) -> list[CapturedSpan]:
        return decode_request(self.body, self.headers.get("content-encoding"))

    @property
    def metrics(self) -> list[MetricPoint]:
        return decode_metrics(self.body, self.headers.get("content-encoding"))

    @property
    def is_metrics(self) -> bool:
        return self.path.endswith("/v1/metrics")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        received_at = time.monotonic()
        fault = receiver._next_fault(self.path)
        if fault.reset:
            receiver._record(ReceivedRequest(self.path, headers, body, None, received_at, self.client_address[:2]))
            # SO_LINGER with a zero timeout turns close() into a TCP RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault.delay:
            time.sleep(fault.delay)
        receiver._record(ReceivedRequest(self.path, headers, body, fault.status, received_at, self.client_address[:2]))
        self.send_response(fault.status)
        for key, value in fault.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(fault.body)))
        self.end_headers()
        self.wfile.write(fault.body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: OTLPReceiver


class OTLPReceiver:
    """``with OTLPReceiver() as receiver: aither.init(base_url=receiver.url)``; then ``receiver.spans``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: a server-side context (certificate loaded) to serve HTTPS instead of HTTP."""
        self._lock = threading.Condition()
        self._faults: collections.deque[Fault] = collections.deque()
        self._requests: list[ReceivedRequest] = []
        self._server = _Server((host, port), _Handler)
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._server.receiver = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def start(self) -> OTLPReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, *faults: Fault) -> None:
        """Queue faults: the next requests get them in order, then 200 again."""
        with self._lock:
            self._faults.extend(faults)

    def _next_fault(self, path: str) -> Fault:
        with self._lock:
            for fault in self._faults:
                if fault.path == path:
                    self._faults.remove(fault)
                    return fault
            return Fault()

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The span requests (every request but those to ``/v1/metrics``), in arrival order."""
        with self._lock:
            return [r for r in self._requests if not r.is_metrics]

    @property
    def metrics_requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self._requests if r.is_metrics]

    @property
    def spans(self) -> list[CapturedSpan]:
        """Spans of the requests answered with 2xx (what a real backend would have stored)."""
        return [span for r in self.requests if r.answered and 200 <= r.answered < 300 for span in r.spans]

    @property
    def metrics(self) -> list[MetricPoint]:
        """Metric data points of the ``/v1/metrics`` requests answered with 2xx."""
        return [p for r in self.metrics_requests if r.answered and 200 <= r.answered < 300 for p in r.metrics]

    def metric_total(self, metric: str, model: str | None = None, reason: str | None = None) -> int | float:
        """The sum of a metric's accepted points (a histogram's counts), optionally for one model and one
        ``aither.drop.reason``."""
        total: int | float = 0
        for point in self.metrics:
            if point.metric != metric or (model is not None and point.attributes.get("ml.model.name") != model):
                continue
            if reason is not None and point.attributes.get("aither.drop.reason") != reason:
                continue
            total += point.count if point.count is not None else point.value or 0
        return total

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[CapturedSpan]:
        """Wait until at least ``count`` spans were accepted (or ``timeout``), then return them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                accepted = sum(
                    len(r.spans) for r in self._requests if not r.is_metrics and r.answered and 200 <= r.answered < 300
                )
                remaining = deadline - time.monotonic()
                if accepted >= count or remaining <= 0:
                    break
                self._lock.wait(remaining)
        return self.spans

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faults.clear()
