"""Error answers of the HTTP layer: ``{"error": {"type", "message"}}`` (docs/management-api.md) for every
refusal, whichever router or handler makes it. Messages never echo the API key that was sent."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from google.rpc.status_pb2 import Status
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from aither_server.api.schemas import ErrorResponse
from aither_server.ingest import body as otlp_body

__all__ = [
    "ApiError",
    "error_response",
    "errors_doc",
    "install_handlers",
    "internal_error",
    "logger",
    "otlp_error",
    "otlp_internal_error",
    "overloaded",
    "protobuf_errors",
]

logger = logging.getLogger("aither_server")

#: Seconds a client is asked to wait before retrying a request refused for the in-flight cap.
RETRY_AFTER_S = 1


class ApiError(Exception):
    """An error answer: status, a short machine-readable type and a human message."""

    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.type, self.message, self.headers)


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message}}, status_code=status, headers=headers)


def internal_error(exc: BaseException) -> JSONResponse:
    """The 500 answer, the error logged with its traceback (the answer says nothing of it)."""
    logger.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
    return error_response(500, "internal_error", "internal server error; see the server log")


#: The gRPC code an OTLP error's ``google.rpc.Status`` carries for each HTTP status.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


def otlp_error(error: ApiError, protobuf: bool) -> Response:
    """An ingestion route's error answer as OTLP/HTTP says: a ``google.rpc.Status`` in the request's encoding
    (protobuf for protobuf requests, else its JSON form), the message as in every other error answer."""
    code = _GRPC_CODES.get(error.status, 2)  # 2: UNKNOWN
    if protobuf:
        body = Status(code=code, message=error.message).SerializeToString()
        return Response(body, error.status, error.headers, media_type="application/x-protobuf")
    return JSONResponse({"code": code, "message": error.message}, error.status, error.headers)


def protobuf_errors(headers: Headers) -> bool:
    """Whether the request's error answers are protobuf (any Content-Type but JSON's: an unknown one is
    most likely a protobuf exporter's mistake)."""
    try:
        return otlp_body.media_type(headers.get("content-type")) == otlp_body.PROTOBUF
    except otlp_body.UnsupportedMediaType:
        return True


def otlp_internal_error(exc: BaseException, protobuf: bool) -> Response:
    """:func:`internal_error` for an ingestion route."""
    logger.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
    return otlp_error(ApiError(500, "internal_error", "internal server error; see the server log"), protobuf)


def overloaded(message: str) -> ApiError:
    """503 with Retry-After: the SDK and OpenTelemetry exporters retry it later."""
    return ApiError(503, "overloaded", message, {"Retry-After": str(RETRY_AFTER_S)})


def errors_doc(*statuses: int) -> dict[int | str, dict[str, object]]:
    """The OpenAPI ``responses`` of an authenticated route that may also answer ``statuses``."""
    return {status: {"model": ErrorResponse} for status in (401, 403, *statuses)}


def install_handlers(app: FastAPI) -> None:
    """Every error FastAPI or Starlette raises answers in the error format."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(400, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unhandled(_: Request, exc: Exception) -> JSONResponse:
        return internal_error(exc)
