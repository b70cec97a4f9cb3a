"""The exporter's HTTP transport: one POST is one write and one read on a kept-alive connection.

Built on ``http.client`` rather than httpx: the worker shares the GIL with the caller, and every blocking call
it makes (each socket operation, lock and event wait) hands the GIL to a CPU-bound caller that may keep it for
the whole switch interval (5 ms). ``http.client`` sends headers and body in one ``send`` and reads a small
response in one ``recv``; httpx makes several times more blocking calls per request. What the transport keeps:
TLS with the system's certificates (``SSL_CERT_FILE`` honoured), ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
``NO_PROXY``, a timeout per request, keep-alive with a fresh connection after any failure, and a bounded
read of the response. It never goes through httpx, so instrumenting httpx with OpenTelemetry cannot make the
exporter trace itself.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import encodings.idna  # noqa: F401  (socket encodes host names with it on the first connect: import it here, not

# on the worker)
import http.client
import re
import socket
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping

__all__ = [
    "MAX_RESPONSE_BYTES",
    "TIMED_OUT",
    "HttpTransport",
    "Response",
    "TransportError",
    "describe_error",
    "parse_retry_after",
]

#: What :func:`describe_error` says of a request that ran out of time.
TIMED_OUT = "timed out"
#: Bytes of a response body we are willing to read (a partial_success message is tiny).
MAX_RESPONSE_BYTES = 64 * 1024


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds (``120``, leniently ``1.5``) or an HTTP date
    (GMT, also when the zone is missing); ``None`` if unusable. A date in the past means at once.

    The one parser of the project: the exporter and the management client both use it.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


_SECONDS = re.compile(r"\d+(\.\d+)?")


class TransportError(Exception):
    """No HTTP answer: the connection failed, timed out or was reset. ``str()`` says which, without secrets."""


class Response:
    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after


def describe_error(error: BaseException) -> str:
    """A short cause for a failed request: "connection refused", "timed out", "TLS: ..."; never header values."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return TIMED_OUT
    if isinstance(error, socket.gaierror):
        return f"DNS lookup failed ({error.strerror or error})"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS error ({error.reason or type(error).__name__})"
    if isinstance(error, (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        return "connection reset by the server"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return type(error).__name__


def _proxy_for(url: urllib.parse.SplitResult) -> urllib.parse.SplitResult | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for this URL, unless ``NO_PROXY`` exempts its host."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme)
    bypass = urllib.request.proxy_bypass_environment(url.hostname or "", proxies)  # type: ignore[attr-defined]
    if not proxy or bypass:
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    return urllib.parse.urlsplit(proxy)


class HttpTransport:
    """POSTs to one origin over one kept-alive connection. Not thread-safe: the worker is its only user."""

    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._url = url
        self._https = url.scheme == "https"
        self._port = url.port or (443 if self._https else 80)
        self._headers = dict(headers)
        self._proxy = _proxy_for(url)
        self._context = ssl.create_default_context() if self._https else None
        self._connection: http.client.HTTPConnection | None = None
        self._socket_timeout: float | None = None
        default_port = 443 if self._https else 80
        host = url.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 literal
        self._host_header = host if self._port == default_port else f"{host}:{self._port}"
        # An HTTP proxy takes the absolute URL in the request line; an HTTPS one is a CONNECT tunnel.
        self._absolute_target = self._proxy is not None and not self._https
        if self._proxy is not None and self._proxy.username:
            user = urllib.parse.unquote(self._proxy.username)
            credentials = f"{user}:{urllib.parse.unquote(self._proxy.password or '')}"
            self._proxy_auth: dict[str, str] = {
                "Proxy-Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()
            }
        else:
            self._proxy_auth = {}

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        host = self._url.hostname or ""
        connection: http.client.HTTPConnection
        if self._proxy is None:
            if self._https:
                connection = http.client.HTTPSConnection(host, self._port, timeout=timeout, context=self._context)
            else:
                connection = http.client.HTTPConnection(host, self._port, timeout=timeout)
            return connection
        proxy_host, proxy_port = self._proxy.hostname or "", self._proxy.port or 80
        if self._https:
            connection = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=timeout, context=self._context)
            connection.set_tunnel(host, self._port, headers=self._proxy_auth)
        else:
            connection = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
        return connection

    def post(self, path: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """One request. Raises :class:`TransportError` when no HTTP answer came back.

        A kept-alive connection the server closed meanwhile fails before any answer; that attempt is repeated
        once on a new connection, as browsers and urllib3 do, instead of costing the batch a backoff.
        """
        reused = self._connection is not None
        try:
            return self._post_once(path, body, headers, timeout)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            if not reused:
                raise TransportError(describe_error(exc)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(describe_error(exc)) from None
        try:
            return self._post_once(path, body, headers, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(describe_error(exc)) from None

    def _post_once(self, path: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect(timeout)
            self._socket_timeout = timeout
        try:
            if connection.sock is None:
                connection.connect()  # TCP, then the proxy tunnel and TLS when there are
            sock = connection.sock
            if self._socket_timeout != timeout:
                sock.settimeout(timeout)  # each change is a system call: only when it changes
                self._socket_timeout = timeout
            # The request line, headers and body in one write: http.client sends a body of 2,000 bytes or more
            # apart from its headers, and each socket call can cost the worker the GIL for a switch interval.
            sock.sendall(self._head(path, len(body), headers) + body)
            response = http.client.HTTPResponse(sock, method="POST")
            response.begin()
            content = response.read(MAX_RESPONSE_BYTES)
            retry_after = response.getheader("retry-after")
            if not response.isclosed() or response.will_close:
                self.close()  # a body left unread (over the bound), or the server closes: a fresh connection next
            return Response(response.status, content, retry_after)
        except BaseException:
            self.close()
            raise

    def _head(self, path: str, length: int, headers: Mapping[str, str]) -> bytes:
        lines = [f"POST {self._target(path)} HTTP/1.1", f"Host: {self._host_header}", f"Content-Length: {length}"]
        lines += [f"{name}: {value}" for name, value in {**self._headers, **headers, **self._auth_for_proxy()}.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _target(self, path: str) -> str:
        if self._absolute_target:
            return f"http://{self._url.netloc.rpartition('@')[2]}{path}"
        return path

    def _auth_for_proxy(self) -> dict[str, str]:
        return self._proxy_auth if self._absolute_target else {}

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except OSError:
                pass
