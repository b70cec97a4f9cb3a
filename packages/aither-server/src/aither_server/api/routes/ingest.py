"""Ingestion routes: ``POST /v1/traces`` (the span stream) and ``POST /v1/metrics`` (the SDK's aggregates).

``/v1/traces`` is most of this server's work, so it is one plain ASGI handler routed by Starlette: no
dependency injection, the body read without copies, and one thread-pool trip for the key check, decoding and
storage. FastAPI cannot describe such a handler, so :func:`document_traces` adds it to the OpenAPI document.
Both routes refuse in the same order: key, then Content-Type / Content-Encoding, then sizes, then the body; the
body is read only once the key is known to write (``api/body_guard.py`` bounds and times its reading).
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from aither_server.api.auth import PRINCIPAL, authenticate, require_scope
from aither_server.api.errors import (
    ApiError,
    errors_doc,
    otlp_error,
    otlp_internal_error,
    overloaded,
    protobuf_errors,
)
from aither_server.drift.feeder import Feeder
from aither_server.ingest import body as otlp_body
from aither_server.ingest import metrics as otlp_metrics
from aither_server.ingest import spans as otlp_spans
from aither_server.ingest.cumulative import CumulativeSeries
from aither_server.ingest.inflight import ByteBudget, Held
from aither_server.ingest.refusal_log import RefusalLog
from aither_server.model.api_keys import Principal
from aither_server.privacy.enforce import enforce_batch, enforce_profiles
from aither_server.privacy.policies import PolicyCache
from aither_server.store.database import Store

__all__ = ["IngestLimits", "document_traces", "router"]


@dataclasses.dataclass(frozen=True)
class IngestLimits:
    """What one ingestion request may cost, and the budget all requests in flight share."""

    max_body_bytes: int
    max_decompressed_bytes: int
    max_attribute_bytes: int
    budget: ByteBudget
    refusals: RefusalLog
    #: The last point of each cumulative metric series this app has seen (``ingest/cumulative.py``).
    cumulative: CumulativeSeries = dataclasses.field(default_factory=CumulativeSeries)


def _ingest_headers(headers: Headers, max_body_bytes: int) -> tuple[str, ApiError | None]:
    """The request's encoding, and the refusal its headers earn (415, 413), if any."""
    try:
        kind = otlp_body.media_type(headers.get("content-type"))
        otlp_body.decompress(b"", headers.get("content-encoding"), 0)  # refuse an unknown encoding before the body
    except otlp_body.UnsupportedMediaType as exc:
        return otlp_body.PROTOBUF, ApiError(415, "unsupported_media_type", str(exc))
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        return kind, ApiError(413, "payload_too_large", f"body is {declared} bytes; the limit is {max_body_bytes}")
    return kind, None


async def _read_body(receive: Receive, max_body_bytes: int, held: Held) -> bytes | ApiError:
    """The whole body (one chunk is not copied), or a 413 as soon as it passes the limit (a 503 as soon as
    the in-flight cap has no room for it)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_body_bytes:
                return ApiError(413, "payload_too_large", f"body is over the limit of {max_body_bytes} bytes")
            if not held.take(len(chunk)):
                return overloaded("the server holds too many request bytes; retry later")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _decompressed(limits: IngestLimits, body: bytes | ApiError, encoding: str | None, held: Held) -> bytes:
    if isinstance(body, ApiError):
        raise body
    try:
        return otlp_body.decompress(body, encoding, limits.max_decompressed_bytes, held.take)
    except otlp_body.Overloaded as exc:
        raise overloaded(str(exc)) from None
    except otlp_body.BodyTooLarge as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from None


def _media(kind: str) -> str:
    return "application/x-protobuf" if kind == otlp_body.PROTOBUF else "application/json"


def _store_traces(
    store: Store,
    privacy: PolicyCache,
    drift: Feeder | None,
    limits: IngestLimits,
    kind: str,
    encoding: str | None,
    body: bytes | ApiError,
    held: Held,
) -> Response:
    """The body's refusals or its ingestion (run in the thread pool, the key already checked)."""
    try:
        try:
            batch = otlp_spans.decode_body(
                _decompressed(limits, body, encoding, held), kind, limits.max_attribute_bytes
            )
        except otlp_body.MalformedBody as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        # The server's privacy policies, before anything is stored or sketched (docs/privacy.md).
        enforce_batch(batch, privacy.policy_of)
        store.ingest(batch.predictions, batch.labels, rejected_spans=batch.rejected, ignored_spans=batch.ignored)
        if drift is not None and batch.predictions:  # queued for drift's hourly sketches: never raises
            drift.observe(batch.predictions)
    except ApiError as exc:
        return otlp_error(exc, kind == otlp_body.PROTOBUF)
    if batch.not_stored:
        first_reason = next(iter(batch.reasons), otlp_spans.IGNORED_REASON)
        limits.refusals.report(batch.not_stored, first_reason, batch.error_message)
    return Response(otlp_spans.encode_response(kind, batch.not_stored, batch.error_message), media_type=_media(kind))


async def _writer(scope: Scope, store: Store, authorization: str | None) -> None:
    """Refuse (401, 403) unless the request's key may write, before its body is read. The body guard has
    looked the key up already when a body was announced; else it is looked up here."""
    principal: Principal | None = scope.get(PRINCIPAL)
    if principal is None:
        await run_in_threadpool(authenticate, store, authorization, "write")
    else:
        require_scope(principal, "write")


class _Traces:
    """``POST /v1/traces``: OTLP/HTTP traces, protobuf or JSON, optionally gzip; one request, one transaction.

    An ASGI application (not a function), so Starlette routes to it as it is."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        store: Store = state.store
        limits: IngestLimits = state.ingest
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        response: Response
        try:
            await _writer(scope, store, authorization)
            kind, refusal = _ingest_headers(headers, limits.max_body_bytes)
            if refusal is not None:
                raise refusal
            with limits.budget.hold() as held:
                body = await _read_body(receive, limits.max_body_bytes, held)
                encoding = headers.get("content-encoding")
                response = await run_in_threadpool(
                    _store_traces,
                    store,
                    state.privacy,
                    getattr(state, "drift_feeder", None),
                    limits,
                    kind,
                    encoding,
                    body,
                    held,
                )
        except ApiError as exc:
            response = otlp_error(exc, protobuf_errors(headers))
        except ClientDisconnect:
            return
        except Exception as exc:
            if store.unavailable(exc):
                unavailable = overloaded(f"the database is unavailable: {type(exc).__name__}")
                response = otlp_error(unavailable, protobuf_errors(headers))
            else:
                response = otlp_internal_error(exc, protobuf_errors(headers))
        await response(scope, receive, send)


router = APIRouter(tags=["ingestion"])
router.routes.append(Route("/v1/traces", _Traces(), methods=["POST"]))
# Served, not redirected: an exporter configured with a trailing slash would not follow a 307 with its body.
router.routes.append(Route("/v1/traces/", _Traces(), methods=["POST"]))

_OTLP_BODY_OPENAPI: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
_ERROR_STATUSES = {
    "401": "Unauthorized",
    "403": "Forbidden",
    "400": "Bad Request",
    "413": "Request Entity Too Large",
    "415": "Unsupported Media Type",
    "503": "Service Unavailable",
}


def document_traces(schema: dict[str, object]) -> None:
    """Add ``POST /v1/traces`` to an OpenAPI document FastAPI generated (it does not see ASGI routes)."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    responses: dict[str, object] = {
        "200": {
            "description": "ExportTraceServiceResponse, with partial_success for rejected spans",
            "content": {"application/json": {"schema": {}}},
        }
    }
    responses.update({status: {"description": text, "content": error} for status, text in _ERROR_STATUSES.items()})
    operation = {
        "tags": ["ingestion"],
        "summary": "Traces",
        "description": "OTLP/HTTP traces: protobuf or JSON, optionally gzip. One request is stored in one transaction.",
        "operationId": "traces_v1_traces_post",
        **_OTLP_BODY_OPENAPI,
        "responses": responses,
        "security": [{"HTTPBearer": []}],
    }
    paths = schema.setdefault("paths", {})
    assert isinstance(paths, dict)
    paths["/v1/traces"] = {"post": operation}


@router.post("/v1/metrics/", include_in_schema=False)  # served, not redirected, as /v1/traces/ is
@router.post(
    "/v1/metrics",
    openapi_extra={**_OTLP_BODY_OPENAPI, "security": [{"HTTPBearer": []}]},
    responses={
        200: {"description": "ExportMetricsServiceResponse, with partial_success for points not stored"},
        **errors_doc(400, 413, 415, 503),
    },
)
async def metrics_ingest(request: Request) -> Response:
    """OTLP/HTTP metrics: the SDK's per-model aggregates (docs/wire-contract.md). Same key scope, encodings
    and limits as /v1/traces; other senders' metrics are answered 200 and counted as not stored."""
    limits: IngestLimits = request.app.state.ingest
    store: Store = request.app.state.store
    try:
        await _writer(request.scope, store, request.headers.get("authorization"))
        kind, refusal = _ingest_headers(request.headers, limits.max_body_bytes)
        if refusal is not None:
            raise refusal
        with limits.budget.hold() as held:
            body = await _read_body(request.receive, limits.max_body_bytes, held)
            encoding = request.headers.get("content-encoding")
            feeder: Feeder | None = getattr(request.app.state, "drift_feeder", None)
            privacy: PolicyCache = request.app.state.privacy
            return await run_in_threadpool(_store_metrics, store, limits, kind, encoding, body, held, privacy, feeder)
    except ApiError as exc:
        return otlp_error(exc, protobuf_errors(request.headers))


def _store_metrics(
    store: Store,
    limits: IngestLimits,
    kind: str,
    encoding: str | None,
    body: bytes | ApiError,
    held: Held,
    privacy: PolicyCache,
    feeder: Feeder | None = None,
) -> Response:
    try:
        decoded = otlp_metrics.decode_metrics(_decompressed(limits, body, encoding, held), kind, limits.cumulative)
    except otlp_body.MalformedBody as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    store.ingest_aggregates(decoded.points)
    if decoded.profiles:
        # The server's privacy policies hold for sketches as for sampled rows (docs/privacy.md).
        enforce_profiles(decoded, privacy.policy_of)
    if decoded.profiles and feeder is not None:  # a profile-only SDK's sketches: merged by drift's feeder, once
        feeder.observe_profiles(decoded.profiles)
    return Response(otlp_metrics.encode_metrics_response(kind, decoded), media_type=_media(kind))
