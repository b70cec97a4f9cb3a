"""One webhook POST, bounded every way a receiver could stretch it: made to the address the target check
accepted (the name is not resolved again; the ``Host`` header and, for https, SNI and the certificate check
use the URL's host), over within one deadline for the whole exchange (connect, TLS, send and answer, however
slowly a receiver drips bytes), and reading no more of the answer than its status line, at most
:data:`MAX_RESPONSE_BYTES`.

A plain HTTP/1.1 exchange on a socket, not an HTTP client library: the three bounds are what it is for.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from aither_server.monitors.targets import Target

__all__ = ["MAX_RESPONSE_BYTES", "DeliveryFailed", "post"]

#: Bytes of a receiver's answer read at most, looking for its status line; the rest is never read.
MAX_RESPONSE_BYTES = 64 * 1024


class DeliveryFailed(Exception):
    """The POST got no status: unreachable, refused, timed out, TLS failed or the answer was not HTTP."""


def post(target: Target, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST ``body`` to ``target``; the answer's status code. Raises :class:`DeliveryFailed`."""
    deadline = time.monotonic() + timeout_s
    # Wrapping for TLS hands the connection to a new socket object: the watchdog shuts whichever is current.
    current = [_connect(target, deadline)]
    # The deadline holds even where one blocking call could outlast it (a TLS handshake fed byte by byte):
    # at the deadline the socket is shut down, which ends any call blocked on it.
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), lambda: _shut(current[0]))
    watchdog.daemon = True
    watchdog.start()
    try:
        if target.scheme == "https":
            _remaining(current[0], deadline)
            current[0] = ssl.create_default_context().wrap_socket(current[0], server_hostname=target.host)
        _remaining(current[0], deadline)
        current[0].sendall(_request(target, body, headers))
        return _status(current[0], deadline)
    except (OSError, ssl.SSLError) as exc:
        if time.monotonic() >= deadline:
            raise DeliveryFailed(f"no answer within {timeout_s:g} s") from None
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        watchdog.cancel()
        current[0].close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _remaining(sock: socket.socket, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    sock.settimeout(left)


def _connect(target: Target, deadline: float) -> socket.socket:
    failure: OSError | None = None
    for family, sockaddr in target.addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            _remaining(sock, deadline)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    raise DeliveryFailed(f"cannot connect to {target.host}: {failure}")


def _request(target: Target, body: bytes, headers: dict[str, str]) -> bytes:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    lines = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {host}" + ("" if target.port == default_port else f":{target.port}"),
        *(f"{name}: {value}" for name, value in headers.items()),
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _status(sock: socket.socket, deadline: float) -> int:
    data = b""
    while b"\r\n" not in data:
        if len(data) >= MAX_RESPONSE_BYTES:
            raise DeliveryFailed(f"no status line in the answer's first {MAX_RESPONSE_BYTES} bytes")
        _remaining(sock, deadline)
        got = sock.recv(MAX_RESPONSE_BYTES - len(data))
        if not got:
            if time.monotonic() >= deadline:
                raise TimeoutError("shut down at the deadline")
            break
        data += got
    parts = data.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise DeliveryFailed("the answer is not HTTP")
    return int(parts[1])
