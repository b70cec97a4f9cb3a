"""Every request body, on every route, bounded before it is buffered: the key checked before a byte of it is
read, its size capped, and its reading given a deadline.

Routes read bodies their own way (FastAPI parses JSON before its dependencies check the key; ``/v1/traces``
reads the ASGI messages itself), so the guard sits under all of them as ASGI middleware:

- On ``/api/`` and ``/v1/`` a request that carries a body is answered 401 at once unless its ``Authorization``
  header holds a live key; the body is never read, so an unauthenticated client costs no memory and takes
  nothing from the in-flight budget authenticated ingestion shares. The principal found is handed to the
  route (``scope["aither.principal"]``), which checks its scope without a second lookup.
- A ``Content-Length`` over the route's cap is answered 413 before reading; a body that streams past it is cut
  off with a 413 when it does.
- The whole body must arrive within ``timeout_s`` of the route's first read, or the request is answered 408:
  a peer that trickles bytes holds nothing for longer than that.

A refused request's connection is closed (``Connection: close``): the rest of its body is never read.
"""

from __future__ import annotations

import asyncio
import dataclasses

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aither_server.api.auth import PRINCIPAL, require_key
from aither_server.api.errors import ApiError, otlp_error, overloaded, protobuf_errors
from aither_server.model.api_keys import Principal
from aither_server.store.database import Store

__all__ = ["BodyGuard", "BodyLimits"]

_KEYED_PREFIXES = ("/api/", "/v1/")


@dataclasses.dataclass(frozen=True)
class BodyLimits:
    """Caps on one request's body: bytes on the keyed routes (API and ingestion) and elsewhere (the dashboard's
    forms), and the seconds its whole body may take to arrive."""

    keyed_bytes: int
    form_bytes: int
    timeout_s: float


def _carries_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    return headers.get("transfer-encoding") is not None or (length is not None and length.strip() not in ("", "0"))


class BodyGuard:
    """ASGI middleware applying :class:`BodyLimits` to every HTTP request (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, store: Store, limits: BodyLimits) -> None:
        self.app = app
        self.store = store
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _carries_body(headers):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        keyed = path.startswith(_KEYED_PREFIXES)
        cap = self.limits.keyed_bytes if keyed else self.limits.form_bytes
        try:
            if keyed:
                scope[PRINCIPAL] = await self._principal(headers)
            declared = headers.get("content-length", "")
            if declared.strip().isdigit() and int(declared) > cap:
                raise ApiError(413, "payload_too_large", f"body is {declared.strip()} bytes; the limit is {cap}")
        except ApiError as exc:
            await _refuse(exc, scope, receive, send)
            return
        await _Guarded(self.app, cap, self.limits.timeout_s)(scope, receive, send)

    async def _principal(self, headers: Headers) -> Principal:
        try:
            return await run_in_threadpool(require_key, self.store, headers.get("authorization"))
        except ApiError:
            raise
        except Exception as exc:
            # A lost database connection (PostgreSQL restarted) is retried by senders, as the routes answer it.
            if self.store.unavailable(exc):
                raise overloaded(f"the database is unavailable: {type(exc).__name__}") from None
            raise


class _Guarded:
    """One request under the guard: its ``receive`` counted and timed until the body's last message, its
    ``send`` muted once the guard answers instead of the route."""

    def __init__(self, app: ASGIApp, cap: int, timeout_s: float) -> None:
        self.app = app
        self.cap = cap
        self.timeout_s = timeout_s
        self.size = 0
        self.deadline: float | None = None
        self.done = False  # the body's last message has arrived: reads after it (disconnect waits) pass through
        self.refusal: ApiError | None = None
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def guarded_receive() -> Message:
            if self.refusal is not None:
                return {"type": "http.disconnect"}
            if self.done:
                return await receive()
            loop = asyncio.get_running_loop()
            if self.deadline is None:
                self.deadline = loop.time() + self.timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(self.deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                self.refusal = ApiError(
                    408, "request_timeout", f"the request body did not arrive within {self.timeout_s:g} s"
                )
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                self.size += len(message.get("body", b""))
                if self.size > self.cap:
                    self.refusal = ApiError(413, "payload_too_large", f"body is over the limit of {self.cap} bytes")
                    return {"type": "http.disconnect"}
                if not message.get("more_body", False):
                    self.done = True
            return message

        async def guarded_send(message: Message) -> None:
            if self.refusal is not None and not self.started:
                return  # the route's answer to the cut-off body is replaced by the guard's
            self.started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if self.refusal is None or self.started:
                raise
        if self.refusal is not None and not self.started:
            await _refuse(self.refusal, scope, receive, send)


async def _refuse(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    closing = ApiError(error.status, error.type, error.message, {**(error.headers or {}), "Connection": "close"})
    if scope["path"].startswith("/v1/"):  # OTLP/HTTP's error body: a google.rpc.Status
        response = otlp_error(closing, protobuf_errors(Headers(scope=scope)))
    else:
        response = closing.response()
    await response(scope, receive, send)
