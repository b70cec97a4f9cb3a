"""Who may see a page: the request's session, the checks (signed in, an admin, the form's CSRF token) and the
forms posted to the pages, read within a cap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from aither_server.ui.pages.render import Refused, page, redirect
from aither_server.ui.pages.state import sessions
from aither_server.ui.sessions import COOKIE, Session, same_token

__all__ = ["admin", "admin_form", "check_csrf", "cookie_flags", "form", "session", "signed_in"]

_MAX_FORM_BYTES = 64 * 1024


async def session(request: Request) -> Session | None:
    return await run_in_threadpool(sessions(request).get, request.cookies.get(COOKIE))


async def form(request: Request) -> dict[str, str]:
    # Read as it streams and stopped at the cap: a form over it is never held whole.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


class _CookieFlags(TypedDict):
    httponly: bool
    samesite: Literal["strict"]
    secure: bool
    path: str


def cookie_flags(request: Request) -> _CookieFlags:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/"}


def _forbidden(session: Session) -> HTMLResponse:
    return page("message.html", 403, session=session, title="Admins only", message="This page needs an admin key.")


def _bad_csrf(session: Session) -> HTMLResponse:
    return page("message.html", 400, session=session, title="Form expired", message="Reload the page and retry.")


async def signed_in(request: Request) -> Session:
    """The request's session; without one, the page answers with a redirect to the sign-in form."""
    found = await session(request)
    if found is None:
        raise Refused(redirect("/login"))
    return found


async def admin(request: Request) -> Session:
    """The session of a signed-in admin key; a read key gets the 403 page."""
    found = await signed_in(request)
    if not found.admin:
        raise Refused(_forbidden(found))
    return found


def check_csrf(posted: Mapping[str, str], session: Session) -> None:
    if not same_token(posted.get("csrf"), session.csrf):
        raise Refused(_bad_csrf(session))


async def admin_form(request: Request) -> tuple[Session, dict[str, str]]:
    """An admin's posted form, once it has posted back its session's CSRF token."""
    found = await admin(request)
    posted = await form(request)
    check_csrf(posted, found)
    return found, posted
