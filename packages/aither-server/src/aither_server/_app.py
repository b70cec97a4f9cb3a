"""The HTTP layer: routes, authentication, error bodies. Decoding is in ``_otlp``, storage in ``_store``,
reads in ``_query``; this module only wires them to FastAPI.

Every error answers ``{"error": {"type", "message"}}`` (docs/management-api.md). Messages never echo the
API key that was sent.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from . import _otlp, _otlp_metrics, _query, _query_labels
from ._auth import Principal, has_scope
from ._inflight import ByteBudget, Held
from ._refusal_log import RefusalLog
from ._schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    ErrorResponse,
    Health,
    MetricsOut,
    ModelList,
    OrgOut,
    PredictionList,
    PredictionOut,
    UnjoinedLabels,
    UsageOut,
    UserOut,
)
from ._store import KeyRecord, LastAdminKey, Store
from ._version import __version__

__all__ = [
    "DEFAULT_LABEL_GRACE_S",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "default_inflight_bytes",
    "ApiError",
    "create_app",
]

logger = logging.getLogger("aither_server")

#: Compressed request size accepted on /v1/traces: the OpenTelemetry Collector's default.
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
#: Decompressed size; a gzip bomb stops here, having used at most this much memory.
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
#: How long a label may wait for its prediction before it is listed as an unknown trace (labels may come first).
DEFAULT_LABEL_GRACE_S = 600.0


def default_inflight_bytes(max_body_bytes: int, max_decompressed_bytes: int) -> int:
    """Request bytes held at once by default: two maximum-size requests (each its body and its decompressed
    body), so one always fits; ordinary requests (kilobytes) by the thousand."""
    return 2 * (max_body_bytes + max_decompressed_bytes)


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class ApiError(Exception):
    """An error answer: status, a short machine-readable type and a human message."""

    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers


def _error(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message}}, status_code=status, headers=headers)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse} for status in (401, 403, *statuses)}


def _ns(moment: datetime.datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _key_fields(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "scopes": list(record.scopes),
        "created_at": _query.iso(record.created_ns) or "",
        "last_used_at": _query.iso(record.last_used_ns),
        "revoked": record.revoked_ns is not None,
    }


def _key_out(record: KeyRecord) -> ApiKeyOut:
    return ApiKeyOut(**_key_fields(record))


_bearer = HTTPBearer(auto_error=False, description="An aither API key: aith_...")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_MISSING_KEY = "missing API key: send Authorization: Bearer aith_..."


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str) -> Principal:
    if credentials is None:
        raise ApiError(401, "authentication_error", _MISSING_KEY, _CHALLENGE)
    return _check_key(request.app.state.store, credentials.credentials, scope)


def _check_key(store: Store, secret: str, scope: str) -> Principal:
    principal = store.authenticate(secret)
    if principal is None:
        raise ApiError(401, "authentication_error", "invalid or revoked API key", _CHALLENGE)
    if not has_scope(principal.scopes, scope):
        raise ApiError(403, "permission_denied", f"this API key lacks the {scope!r} scope")
    return principal


def _bearer_token(authorization: str | None) -> str | None:
    """The key of an Authorization header, read exactly as FastAPI's ``HTTPBearer`` reads it."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not (scheme and token) or scheme.lower() != "bearer":
        return None
    return token


def _authenticate_header(store: Store, authorization: str | None, scope: str) -> Principal:
    token = _bearer_token(authorization)
    if token is None:
        raise ApiError(401, "authentication_error", _MISSING_KEY, _CHALLENGE)
    return _check_key(store, token, scope)


def _ingest_headers(headers: Headers, max_body_bytes: int) -> tuple[str, ApiError | None]:
    """The request's encoding, and the refusal its headers earn (415, 413), if any."""
    try:
        kind = _otlp.media_type(headers.get("content-type"))
        _otlp.decompress(b"", headers.get("content-encoding"), 0)  # refuse an unknown encoding before the body
    except _otlp.UnsupportedMediaType as exc:
        return _otlp.PROTOBUF, ApiError(415, "unsupported_media_type", str(exc))
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        return kind, ApiError(413, "payload_too_large", f"body is {declared} bytes; the limit is {max_body_bytes}")
    return kind, None


#: Seconds a client is asked to wait before retrying a request refused for the in-flight cap.
_RETRY_AFTER_S = 1


def _overloaded(message: str) -> ApiError:
    return ApiError(503, "overloaded", message, {"Retry-After": str(_RETRY_AFTER_S)})


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
                return _overloaded("the server holds too many request bytes; retry later")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _AitherApp(FastAPI):
    """FastAPI, except that ``POST /v1/traces`` goes straight to :attr:`traces_asgi`."""

    traces_asgi: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.traces_asgi is not None
            and scope["type"] == "http"
            and scope["path"] == "/v1/traces"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.traces_asgi(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


# The dependencies are sync on purpose: FastAPI runs them in its thread pool, off the event loop (they read
# SQLite).
def _read_scope(request: Request, credentials: _Credentials) -> Principal:
    principal = _authenticate(request, credentials, "read")
    request.app.state.store.count_api_call()
    return principal


def _admin_scope(request: Request, credentials: _Credentials) -> Principal:
    principal = _authenticate(request, credentials, "admin")
    request.app.state.store.count_api_call()
    return principal


def _write_scope(request: Request, credentials: _Credentials) -> Principal:
    # Ingestion counts its call inside its own transaction, so a refused request stores nothing at all.
    return _authenticate(request, credentials, "write")


Read = Annotated[Principal, Depends(_read_scope)]
Admin = Annotated[Principal, Depends(_admin_scope)]
Write = Annotated[Principal, Depends(_write_scope)]

_OTLP_BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


def create_app(
    store: Store,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    label_grace_s: float = DEFAULT_LABEL_GRACE_S,
    close_store: bool = True,
    max_inflight_bytes: int | None = None,
    max_attribute_bytes: int = _otlp.DEFAULT_MAX_ATTRIBUTE_BYTES,
) -> FastAPI:
    """The ASGI application over an open, migrated :class:`Store`. The app closes the store on shutdown.

    ``max_inflight_bytes`` caps the request bytes held at once (default :func:`default_inflight_bytes`); it
    must hold one maximum-size request.
    """
    if max_inflight_bytes is None:
        max_inflight_bytes = default_inflight_bytes(max_body_bytes, max_decompressed_bytes)
    if max_inflight_bytes < max_body_bytes + max_decompressed_bytes:
        raise ValueError("max_inflight_bytes must hold one maximum-size request: max_body + max_decompressed")
    budget = ByteBudget(max_inflight_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if close_store:
            store.close()

    app = _AitherApp(
        title="aither server",
        version=__version__,
        description="OTLP ingestion of model predictions and labels, the management API and the query API.",
        lifespan=lifespan,
    )
    app.state.store = store
    refusals = RefusalLog(logger)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.type, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(400, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
        return _error(500, "internal_error", "internal server error; see the server log")

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """200 once the database is open and migrated (the app is only served after that)."""
        return Health(status="ok", version=__version__)

    @app.post(
        "/v1/traces",
        tags=["ingestion"],
        openapi_extra=_OTLP_BODY_OPENAPI,
        responses={
            200: {"description": "ExportTraceServiceResponse, with partial_success for rejected spans"},
            **_errors(400, 413, 415, 503),
        },
    )
    async def traces(request: Request, _: Write) -> Response:
        """OTLP/HTTP traces: protobuf or JSON, optionally gzip. One request is stored in one transaction."""
        # POST /v1/traces is answered by _AitherApp.__call__ without FastAPI; this route documents it and
        # answers only what reaches FastAPI anyway (a mounted app, say), with the same checks in the same order.
        kind, refusal = _ingest_headers(request.headers, max_body_bytes)
        with budget.hold() as held:
            body = refusal if refusal is not None else await _read_body(request.receive, max_body_bytes, held)
            encoding = request.headers.get("content-encoding")
            return await run_in_threadpool(_traces_answer, kind, encoding, body, held)

    def _traces_answer(kind: str, encoding: str | None, body: bytes | ApiError, held: Held) -> Response:
        if isinstance(body, ApiError):
            raise body
        try:
            decompressed = _otlp.decompress(body, encoding, max_decompressed_bytes, held.take)
            batch = _otlp.decode_body(decompressed, kind, max_attribute_bytes)
        except _otlp.Overloaded as exc:
            raise _overloaded(str(exc)) from None
        except _otlp.BodyTooLarge as exc:
            raise ApiError(413, "payload_too_large", str(exc)) from None
        except _otlp.MalformedBody as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        store.ingest(batch.predictions, batch.labels, rejected_spans=batch.rejected, ignored_spans=batch.ignored)
        if batch.not_stored:
            first_reason = next(iter(batch.reasons), _otlp.IGNORED_REASON)
            refusals.report(batch.not_stored, first_reason, batch.error_message)
        media = "application/x-protobuf" if kind == _otlp.PROTOBUF else "application/json"
        return Response(_otlp.encode_response(kind, batch.not_stored, batch.error_message), media_type=media)

    def _traces_fast(
        authorization: str | None, kind: str, encoding: str | None, body: bytes | ApiError, held: Held
    ) -> Response:
        """Authentication, then the body's refusals or its ingestion: one trip to the thread pool."""
        try:
            _authenticate_header(store, authorization, "write")
            return _traces_answer(kind, encoding, body, held)
        except ApiError as exc:
            return _error(exc.status, exc.type, exc.message, exc.headers)

    async def traces_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/traces straight from the server: no routing, dependency injection or middleware, and one
        thread-pool trip for authentication, decoding and storage (ingestion is most of this server's work)."""
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        response: Response
        try:
            if _bearer_token(authorization) is None:
                raise ApiError(401, "authentication_error", _MISSING_KEY, _CHALLENGE)
            # The checks FastAPI made after authentication are made here first but answered after it, so a
            # request gets the same answer as through the route above.
            kind, refusal = _ingest_headers(headers, max_body_bytes)
            with budget.hold() as held:
                body = refusal if refusal is not None else await _read_body(receive, max_body_bytes, held)
                encoding = headers.get("content-encoding")
                response = await run_in_threadpool(_traces_fast, authorization, kind, encoding, body, held)
        except ApiError as exc:
            response = _error(exc.status, exc.type, exc.message, exc.headers)
        except ClientDisconnect:
            return
        except Exception as exc:
            logger.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
            response = _error(500, "internal_error", "internal server error; see the server log")
        await response(scope, receive, send)

    app.traces_asgi = traces_asgi

    @app.post(
        "/v1/metrics",
        tags=["ingestion"],
        openapi_extra=_OTLP_BODY_OPENAPI,
        responses={
            200: {"description": "ExportMetricsServiceResponse, with partial_success for points not stored"},
            **_errors(400, 413, 415, 503),
        },
    )
    async def metrics_ingest(request: Request, _: Write) -> Response:
        """OTLP/HTTP metrics: the SDK's per-model aggregates (docs/wire-contract.md). Same key scope, encodings
        and limits as /v1/traces; other senders' metrics are answered 200 and counted as not stored."""
        kind, refusal = _ingest_headers(request.headers, max_body_bytes)
        with budget.hold() as held:
            body = refusal if refusal is not None else await _read_body(request.receive, max_body_bytes, held)
            encoding = request.headers.get("content-encoding")
            return await run_in_threadpool(_metrics_answer, kind, encoding, body, held)

    def _metrics_answer(kind: str, encoding: str | None, body: bytes | ApiError, held: Held) -> Response:
        if isinstance(body, ApiError):
            raise body
        try:
            decompressed = _otlp.decompress(body, encoding, max_decompressed_bytes, held.take)
            decoded = _otlp_metrics.decode_metrics(decompressed, kind)
        except _otlp.Overloaded as exc:
            raise _overloaded(str(exc)) from None
        except _otlp.BodyTooLarge as exc:
            raise ApiError(413, "payload_too_large", str(exc)) from None
        except _otlp.MalformedBody as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        store.ingest_aggregates(decoded.points)
        media = "application/x-protobuf" if kind == _otlp.PROTOBUF else "application/json"
        return Response(_otlp_metrics.encode_metrics_response(kind, decoded), media_type=media)

    @app.get("/api/v1/org", response_model=OrgOut, tags=["management"], responses=_errors())
    def get_org(_: Read) -> OrgOut:
        org = store.org()
        return OrgOut(id=org.id, name=org.name, plan=org.plan, created_at=_query.iso(org.created_ns) or "")

    @app.get("/api/v1/org/usage", response_model=UsageOut, tags=["management"], responses=_errors())
    def get_usage(_: Read) -> UsageOut:
        """Counters for the current billing period (calendar month, UTC); predictions, labels in rows."""
        usage = store.usage()
        return UsageOut(
            period_start=usage.period_start.isoformat().replace("+00:00", "Z"),
            period_end=usage.period_end.isoformat().replace("+00:00", "Z"),
            api_calls=usage.api_calls,
            predictions=usage.predictions,
            labels=usage.labels,
            rejected_spans=usage.rejected_spans,
            ignored_spans=usage.ignored_spans,
        )

    @app.get("/api/v1/users/me", response_model=UserOut, tags=["management"], responses=_errors())
    def get_me(principal: Read) -> UserOut:
        org = store.org()
        return UserOut(
            id="user_" + principal.key_id.removeprefix("key_"),
            email=f"{org.user_name}@localhost",
            name=org.user_name,
            role=principal.role,
        )

    @app.get("/api/v1/api-keys", response_model=ApiKeyList, tags=["api keys"], responses=_errors())
    def list_keys(_: Admin) -> ApiKeyList:
        return ApiKeyList(data=[_key_out(k) for k in store.list_keys()])

    @app.post(
        "/api/v1/api-keys",
        response_model=ApiKeyCreated,
        status_code=201,
        tags=["api keys"],
        responses=_errors(400),
    )
    def create_key(body: ApiKeyCreate, _: Admin) -> ApiKeyCreated:
        """A new key. Its ``secret`` is in this answer only: it is stored as a hash."""
        record, secret = store.create_key(body.name, body.scopes)
        return ApiKeyCreated(**_key_fields(record), secret=secret)

    @app.delete("/api/v1/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api keys"], responses=_errors(404, 409))
    def revoke_key(key_id: Annotated[str, Path(max_length=100)], _: Admin) -> ApiKeyOut:
        """Revoke a key; it is refused from the next request on. The last admin key cannot be revoked."""
        try:
            record = store.revoke_key(key_id)
        except LastAdminKey as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        if record is None:
            raise ApiError(404, "not_found", f"no API key with id {key_id!r}")
        return _key_out(record)

    @app.get("/api/v1/models", response_model=ModelList, tags=["query"], responses=_errors())
    def list_models(_: Read) -> ModelList:
        return ModelList.model_validate({"data": _query.list_models(store.reader())})

    @app.get(
        "/api/v1/models/{name:path}/metrics",
        response_model=MetricsOut,
        tags=["query"],
        responses=_errors(400, 404),
    )
    def model_metrics(
        _: Read,
        name: Annotated[str, Path(min_length=1, max_length=256, description="The name given to aither.wrap.")],
        version: Annotated[str | None, Query(max_length=256)] = None,
        environment: Annotated[str | None, Query(max_length=256)] = None,
        start: Annotated[datetime.datetime | None, Query(description="Inclusive; ISO 8601, UTC if naive.")] = None,
        end: Annotated[datetime.datetime | None, Query(description="Exclusive; ISO 8601, UTC if naive.")] = None,
        bucket: Annotated[
            str | None,
            Query(pattern=r"^[0-9]{1,7}[smhdSMHD]$", description="Volume bucket: 30s, 5m, 1h, 1d..."),
        ] = None,
    ) -> MetricsOut:
        """Volume, latency, error rate, label coverage and quality metrics (classification or regression)."""
        try:
            result = _query.metrics(
                store.reader(),
                name,
                version=version,
                environment=environment,
                start_ns=_ns(start),
                end_ns=_ns(end),
                bucket=bucket,
            )
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        if result is None:
            raise ApiError(404, "not_found", f"no model named {name!r}")
        return MetricsOut.model_validate(result)

    @app.get(
        "/api/v1/models/{name:path}/predictions",
        response_model=PredictionList,
        tags=["query"],
        responses=_errors(404),
    )
    def model_predictions(
        _: Read,
        name: Annotated[str, Path(min_length=1, max_length=256, description="The name given to aither.wrap.")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        version: Annotated[str | None, Query(max_length=256)] = None,
        environment: Annotated[str | None, Query(max_length=256)] = None,
    ) -> PredictionList:
        """The newest predictions, with their labels by row."""
        rows = _query.recent_predictions(store.reader(), name, limit=limit, version=version, environment=environment)
        if rows is None:
            raise ApiError(404, "not_found", f"no model named {name!r}")
        return PredictionList.model_validate({"data": rows})

    @app.get("/api/v1/labels/unjoined", response_model=UnjoinedLabels, tags=["query"], responses=_errors(400))
    def unjoined_labels(
        _: Read,
        model: Annotated[str | None, Query(max_length=256, description="Only this model's predictions.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> UnjoinedLabels:
        """Labels kept but not joined to a prediction: ``unknown trace`` (no prediction after the grace period)
        or ``row out of range`` (the prediction has fewer rows). With ``model``, only the latter, for it."""
        found = _query_labels.unjoined_labels(
            store.reader(), model=model, limit=limit, grace_ns=int(label_grace_s * 1e9), now_ns=time.time_ns()
        )
        return UnjoinedLabels.model_validate(found)

    @app.get(
        "/api/v1/predictions/{trace_id}",
        response_model=PredictionOut,
        tags=["query"],
        responses=_errors(400, 404),
    )
    def prediction(_: Read, trace_id: Annotated[str, Path(description="32 hex characters")]) -> PredictionOut:
        try:
            raw = bytes.fromhex(trace_id)
        except ValueError:
            raw = b""
        if len(raw) != 16:
            raise ApiError(400, "invalid_request", "trace_id must be 32 hex characters")
        found = _query.get_prediction(store.reader(), raw)
        if found is None:
            raise ApiError(404, "not_found", f"no prediction with trace id {trace_id.lower()}")
        return PredictionOut.model_validate(found)

    return app
