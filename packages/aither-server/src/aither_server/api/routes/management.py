"""Management routes: the organisation, its usage, the calling user, and API keys (docs/management-api.md)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Request

from aither_server.api.auth import Admin, Read
from aither_server.api.errors import ApiError, errors_doc
from aither_server.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut, OrgOut, UsageOut, UserOut
from aither_server.query import time as query_time
from aither_server.store.database import KeyRecord, LastAdminKey, Store

__all__ = ["router"]

router = APIRouter()


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


_Key = TypeVar("_Key", bound=ApiKeyOut)


def _key(out: type[_Key], record: KeyRecord, **extra: object) -> _Key:
    return out.model_validate(
        {
            "id": record.id,
            "name": record.name,
            "prefix": record.prefix,
            "scopes": list(record.scopes),
            "created_at": query_time.iso(record.created_ns) or "",
            "last_used_at": query_time.iso(record.last_used_ns),
            "revoked": record.revoked_ns is not None,
            **extra,
        }
    )


def _key_out(record: KeyRecord) -> ApiKeyOut:
    return _key(ApiKeyOut, record)


@router.get("/api/v1/org", response_model=OrgOut, tags=["management"], responses=errors_doc())
def get_org(request: Request, _: Read) -> OrgOut:
    org = _store(request).org()
    return OrgOut(id=org.id, name=org.name, plan=org.plan, created_at=query_time.iso(org.created_ns) or "")


@router.get("/api/v1/org/usage", response_model=UsageOut, tags=["management"], responses=errors_doc())
def get_usage(request: Request, _: Read) -> UsageOut:
    """Counters for the current billing period (calendar month, UTC); predictions, labels in rows."""
    usage = _store(request).usage()
    return UsageOut(
        period_start=usage.period_start.isoformat().replace("+00:00", "Z"),
        period_end=usage.period_end.isoformat().replace("+00:00", "Z"),
        api_calls=usage.api_calls,
        predictions=usage.predictions,
        labels=usage.labels,
        rejected_spans=usage.rejected_spans,
        ignored_spans=usage.ignored_spans,
    )


@router.get("/api/v1/users/me", response_model=UserOut, tags=["management"], responses=errors_doc())
def get_me(request: Request, principal: Read) -> UserOut:
    org = _store(request).org()
    return UserOut(
        id="user_" + principal.key_id.removeprefix("key_"),
        email=f"{org.user_name}@localhost",
        name=org.user_name,
        role=principal.role,
    )


@router.get("/api/v1/api-keys", response_model=ApiKeyList, tags=["api keys"], responses=errors_doc())
def list_keys(request: Request, _: Admin) -> ApiKeyList:
    return ApiKeyList(data=[_key_out(k) for k in _store(request).list_keys()])


@router.post(
    "/api/v1/api-keys",
    response_model=ApiKeyCreated,
    status_code=201,
    tags=["api keys"],
    responses=errors_doc(400),
)
def create_key(request: Request, body: ApiKeyCreate, _: Admin) -> ApiKeyCreated:
    """A new key. Its ``secret`` is in this answer only: it is stored as a hash."""
    record, secret = _store(request).create_key(body.name, body.scopes)
    return _key(ApiKeyCreated, record, secret=secret)


@router.delete("/api/v1/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api keys"], responses=errors_doc(404, 409))
def revoke_key(request: Request, key_id: Annotated[str, Path(max_length=100)], _: Admin) -> ApiKeyOut:
    """Revoke a key; it is refused from the next request on. The last admin key cannot be revoked."""
    try:
        record = _store(request).revoke_key(key_id)
    except LastAdminKey as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    if record is None:
        raise ApiError(404, "not_found", f"no API key with id {key_id!r}")
    return _key_out(record)
