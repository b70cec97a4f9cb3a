"""Privacy routes (admin scope): the server's policies, erasure of a trace's or an entity's data, and the audit
log (docs/management-api.md, docs/privacy.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request

from aither_server.api.auth import Admin
from aither_server.api.errors import ApiError, errors_doc
from aither_server.drift.feeder import Feeder
from aither_server.privacy import audit
from aither_server.privacy.enforce import entity_key
from aither_server.privacy.erasure import erase
from aither_server.privacy.policies import PolicyCache, StoredPolicy
from aither_server.privacy.policy import PolicyError
from aither_server.query import time as query_time
from aither_server.store.database import Store

__all__ = ["router"]

router = APIRouter(tags=["privacy"])
_Model = Annotated[str, Path(max_length=256, description="a model's name, or * for the organisation's policy")]


def _policies(request: Request) -> PolicyCache:
    cache: PolicyCache = request.app.state.privacy
    return cache


def _policy_out(stored: StoredPolicy) -> dict[str, object]:
    model, spec, updated_ns, updated_by = stored
    return {**spec.to_json(), "model": model, "updated_at": query_time.iso(updated_ns), "updated_by": updated_by}


@router.get("/api/v1/privacy/policies", responses=errors_doc())
def list_policies(request: Request, _: Admin) -> dict[str, object]:
    return {"data": [_policy_out(p) for p in _policies(request).list()]}


@router.get("/api/v1/privacy/policies/{model:path}", responses=errors_doc(404))
def get_policy(request: Request, _: Admin, model: _Model) -> dict[str, object]:
    found = _policies(request).get(model)
    if found is None:
        raise ApiError(404, "not_found", f"no privacy policy for {model!r}")
    return _policy_out(found)


@router.put("/api/v1/privacy/policies/{model:path}", responses=errors_doc(400))
def put_policy(
    request: Request, principal: Admin, model: _Model, body: Annotated[dict[str, object], Body()]
) -> dict[str, object]:
    """Set a model's policy (``*``: the organisation's); it applies to what is ingested from now on."""
    try:
        stored = _policies(request).put(model, body, principal.key_id)
    except PolicyError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return _policy_out(stored)


@router.delete("/api/v1/privacy/policies/{model:path}", responses=errors_doc(404))
def delete_policy(request: Request, principal: Admin, model: _Model) -> dict[str, object]:
    if not _policies(request).delete(model, principal.key_id):
        raise ApiError(404, "not_found", f"no privacy policy for {model!r}")
    return {"model": model, "deleted": True}


def _trace_id(text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 32:
        raise ApiError(400, "invalid_request", "trace_id must be 32 hex characters")
    try:
        trace_id = bytes.fromhex(text)
    except ValueError:
        raise ApiError(400, "invalid_request", "trace_id must be 32 hex characters") from None
    if trace_id == bytes(16):
        raise ApiError(400, "invalid_request", "trace_id must not be all zeros")
    return trace_id


@router.post("/api/v1/erasures", responses=errors_doc(400))
def post_erasure(request: Request, principal: Admin, body: Annotated[dict[str, object], Body()]) -> dict[str, object]:
    """Erase every stored prediction and label of a trace (``{"trace_id"}``) or of an entity (``{"entity"}``:
    the SDK's ``aither.entity_key(value)``, or the value itself when the server has ``AITHER_HASH_KEY``); with
    ``"sketches": true``, drift's sketches of the hours they were in go too (docs/privacy.md)."""
    sketches = body.get("sketches", False)
    if set(body) - {"sketches"} not in ({"trace_id"}, {"entity"}) or not isinstance(sketches, bool):
        message = 'send {"trace_id": "<32 hex>"} or {"entity": "<key>"}, and "sketches": true or false'
        raise ApiError(400, "invalid_request", message)
    store: Store = request.app.state.store
    if sketches:  # the spans stored so far merged first, or a queued one would bring its hour's sketch back
        feeder: Feeder | None = getattr(request.app.state, "drift_feeder", None)
        if feeder is not None:
            feeder.flush()
    if "trace_id" in body:
        trace_id = _trace_id(body["trace_id"])
        erased = erase(store, principal.key_id, trace_id=trace_id, sketches=sketches)
        target = {"trace_id": trace_id.hex()}
    else:
        value = body["entity"]
        if not isinstance(value, str) or not value or len(value) > 256:
            raise ApiError(400, "invalid_request", "entity must be a non-empty string of at most 256 characters")
        key = entity_key(value, _policies(request).hash_key)
        if key is None:
            message = "send the entity's key (aither.entity_key(value)): this server has no AITHER_HASH_KEY"
            raise ApiError(400, "invalid_request", message)
        erased = erase(store, principal.key_id, entity=key, sketches=sketches)
        target = {"entity": key}
    return {**target, **erased.to_json()}


@router.get("/api/v1/audit-log", responses=errors_doc(400))
def get_audit_log(
    request: Request,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, description="entries older than this id")] = None,
) -> dict[str, object]:
    store: Store = request.app.state.store
    entries = audit.entries(store.reader(), limit, before)
    return {
        "data": [
            {
                "id": e.id,
                "time": query_time.iso(e.time_ns),
                "key_id": e.key_id,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            }
            for e in entries
        ]
    }
