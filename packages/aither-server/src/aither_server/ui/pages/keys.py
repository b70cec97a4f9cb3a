"""The API keys page (``/keys``, admins only): the keys, a new one's secret once, revoking one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aither_server.store.database import LastAdminKey
from aither_server.ui.pages.access import admin, admin_form
from aither_server.ui.pages.render import PageRoute, page, redirect
from aither_server.ui.pages.state import store
from aither_server.ui.sessions import Session

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


async def _keys_page(
    request: Request, session: Session, secret: str | None = None, error: str | None = None, status: int = 200
) -> HTMLResponse:
    keys = await run_in_threadpool(store(request).list_keys)
    return page("keys.html", status, session=session, keys=keys, secret=secret, error=error, nav="keys")


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    return await _keys_page(request, await admin(request))


@router.post("/keys")
async def create_key(request: Request) -> Response:
    session, form = await admin_form(request)
    name = form.get("name", "").strip()[:200]
    scopes = [s for s in ("read", "write", "admin") if form.get("scope_" + s)]
    if not name or not scopes:
        return await _keys_page(request, session, error="A key needs a name and at least one scope.", status=400)
    _, secret = await run_in_threadpool(store(request).create_key, name, scopes)
    return await _keys_page(request, session, secret=secret, status=201)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    session, _ = await admin_form(request)
    try:
        await run_in_threadpool(store(request).revoke_key, key_id)
    except LastAdminKey as exc:
        return await _keys_page(request, session, error=str(exc), status=409)
    return redirect("/keys")
