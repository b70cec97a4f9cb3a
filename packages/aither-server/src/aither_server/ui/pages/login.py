"""Sign-in with an API key (a double-submit CSRF cookie on the form) and sign-out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aither_server.model.api_keys import has_scope
from aither_server.ui.pages.access import check_csrf, cookie_flags, form, session
from aither_server.ui.pages.render import PageRoute, page, redirect
from aither_server.ui.pages.state import sessions, store
from aither_server.ui.sessions import COOKIE, same_token

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)

_LOGIN_CSRF = "aither_login_csrf"


def _login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page("login.html", status, csrf=token, error=error, session=None)
    response.set_cookie(_LOGIN_CSRF, token, max_age=3600, **cookie_flags(request))
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await session(request) is not None:
        return redirect("/")
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    posted = await form(request)
    if not same_token(posted.get("csrf"), request.cookies.get(_LOGIN_CSRF) or "\0"):
        return _login_page(request, "The form expired; please sign in again.", 400)
    key = posted.get("api_key", "").strip()
    principal = await run_in_threadpool(store(request).authenticate, key) if key else None
    if principal is None or not has_scope(principal.scopes, "read"):
        return _login_page(request, "That key is not a valid, unrevoked key with the read scope.", 401)
    session_id = await run_in_threadpool(sessions(request).create, principal)
    response = redirect("/")
    response.set_cookie(COOKIE, session_id, **cookie_flags(request))
    response.delete_cookie(_LOGIN_CSRF, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    found = await session(request)
    posted = await form(request)
    if found is not None:
        # A forged form (no token) signs nobody out: the cookie stays as the session does.
        check_csrf(posted, found)
        await run_in_threadpool(sessions(request).delete, request.cookies.get(COOKIE))
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response
