"""A request's head (request line and headers) bounded in size and in time, below the ASGI app.

uvicorn's httptools protocol keeps every header byte a client sends until the head ends, with no limit and no
deadline: 100 MB of one header cost the server 200 MB of memory, and a client dripping a header byte at a time
holds its connection forever. No ASGI middleware sees a request before its head is complete, so the bound is
a subclass of the protocol, given to uvicorn as ``Config(http=BoundedHead)``: a head over
:data:`MAX_HEAD_BYTES` is answered 431 and its connection closed; a head not complete within
:data:`HEAD_TIMEOUT_S` of the connection (or of the previous response) has its connection closed.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HEAD_TIMEOUT_S", "MAX_HEAD_BYTES", "BoundedHead"]

#: Bytes a request's head may take (browsers' own cookies stay under 8 KiB).
MAX_HEAD_BYTES = 64 * 1024
#: Seconds a request's head may take to arrive.
HEAD_TIMEOUT_S = 10.0

_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class BoundedHead(HttpToolsProtocol):
    """uvicorn's httptools protocol with each request's head bounded (see the module's docstring)."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def _await_head(self) -> None:
        self._head_bytes = 0
        self._awaiting_head = True
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        if self._awaiting_head and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        awaiting = self._awaiting_head
        super().data_received(data)
        # Counted once parsed, and only while the head goes on: a chunk that ends the head may carry the body's
        # first bytes. The bound is this cap plus one chunk (what the transport reads at once).
        if awaiting and self._awaiting_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._stop_head_timer()
                self._awaiting_head = False
                self.transport.write(_TOO_LARGE)
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's head is awaited, unless a pipelined one's already came.
        if not self.pipeline and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)
