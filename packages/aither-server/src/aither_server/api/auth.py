"""Who is calling: the API key of a request checked against the store, and the scope each route needs.

One reading of the ``Authorization`` header (``_auth.parse_bearer``) serves both the FastAPI dependencies and
the ingestion handler, which reads headers without FastAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aither_server.api.errors import ApiError
from aither_server.model.api_keys import Principal, has_scope, parse_bearer
from aither_server.store.database import Store

__all__ = ["PRINCIPAL", "Admin", "Read", "Write", "authenticate", "require_key", "require_scope"]

#: The ASGI scope key under which the body guard (``api/body_guard.py``) hands a request's principal on.
PRINCIPAL = "aither.principal"

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_MISSING_KEY = "missing API key: send Authorization: Bearer aith_..."


def authenticate(store: Store, authorization: str | None, scope: str) -> Principal:
    """The principal behind an ``Authorization`` header, if its key is live and has ``scope``; else 401/403."""
    return _check_token(store, parse_bearer(authorization), scope)


def require_key(store: Store, authorization: str | None) -> Principal:
    """The principal behind an ``Authorization`` header whatever its scopes, if its key is live; else 401."""
    return _live_key(store, parse_bearer(authorization))


def require_scope(principal: Principal, scope: str) -> Principal:
    """``principal`` if its key has ``scope``; else 403."""
    if not has_scope(principal.scopes, scope):
        raise ApiError(403, "permission_denied", f"this API key lacks the {scope!r} scope")
    return principal


def _live_key(store: Store, token: str | None) -> Principal:
    if token is None:
        raise ApiError(401, "authentication_error", _MISSING_KEY, _CHALLENGE)
    principal = store.authenticate(token)
    if principal is None:
        raise ApiError(401, "authentication_error", "invalid or revoked API key", _CHALLENGE)
    return principal


def _check_token(store: Store, token: str | None, scope: str) -> Principal:
    return require_scope(_live_key(store, token), scope)


# FastAPI's bearer scheme reads the header for the routes (and documents the scheme in the OpenAPI document).
_bearer = HTTPBearer(auto_error=False, description="An aither API key: aith_...")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def _principal(request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str) -> Principal:
    checked: Principal | None = request.scope.get(PRINCIPAL)
    if checked is not None:  # the body guard checked the key before the body was read
        return require_scope(checked, scope)
    return _check_token(request.app.state.store, None if credentials is None else credentials.credentials, scope)


# The dependencies are sync on purpose: FastAPI runs them in its thread pool, off the event loop (they read
# the database). API calls are counted in memory (``Store.count_api_call``): a read never waits for the writer.
def _read_scope(request: Request, credentials: _Credentials) -> Principal:
    principal = _principal(request, credentials, "read")
    request.app.state.store.count_api_call()
    return principal


def _admin_scope(request: Request, credentials: _Credentials) -> Principal:
    principal = _principal(request, credentials, "admin")
    request.app.state.store.count_api_call()
    return principal


def _write_scope(request: Request, credentials: _Credentials) -> Principal:
    # Ingestion counts its call inside its own transaction, so a refused request stores nothing at all.
    return _principal(request, credentials, "write")


Read = Annotated[Principal, Depends(_read_scope)]
Admin = Annotated[Principal, Depends(_admin_scope)]
Write = Annotated[Principal, Depends(_write_scope)]
