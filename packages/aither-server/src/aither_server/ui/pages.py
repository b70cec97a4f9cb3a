"""The dashboard: server-rendered pages at ``/`` (Jinja2 templates in ``templates/``, one stylesheet in
``static/``, charts as inline SVG from ``ui/charts.py``), behind a sign-in with an API key (docs/dashboard.md).

Sign-in checks the key like an API call and keeps a server-side session (``ui/sessions.py``); the key itself is
never stored, put in a cookie or in a URL. A read key sees; an admin key also manages monitors and API keys.
Every form posts its CSRF token: the session's, or for the sign-in form a double-submit cookie.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Annotated, Literal, TypedDict, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from aither_server.drift.feeder import Feeder
from aither_server.drift.stats import THRESHOLDS as DRIFT_THRESHOLDS
from aither_server.drift.store import DriftStore
from aither_server.model.api_keys import has_scope
from aither_server.model.cancellation import Cancelled, Token, watched
from aither_server.monitors.schemas import MonitorCreate
from aither_server.monitors.service import Monitoring
from aither_server.monitors.store import MonitorRecord
from aither_server.monitors.targets import UnsafeTarget, check_target
from aither_server.query import models as query_models
from aither_server.query import predictions as query_predictions
from aither_server.query import time as query_time
from aither_server.query.prediction_search import Filters, FoundPrediction, parse_cursor, search_predictions
from aither_server.store.database import LastAdminKey, Store
from aither_server.ui.charts import sparkline
from aither_server.ui.data import model_page, models_page
from aither_server.ui.diagnose import THRESHOLDS
from aither_server.ui.feature import distributions, overlay
from aither_server.ui.prediction_view import labels_in_order, sampled_table, short_value
from aither_server.ui.sessions import COOKIE, Session, SessionStore, same_token
from aither_server.ui.views import feature_quality, segments_page
from aither_server.ui.window import RANGES, Window, iso_minute, parse_moment, window

__all__ = ["router"]


class _Refused(Exception):
    """Raised by a page's checks: ``response`` (the sign-in redirect, a 403, 400 or 404 page) answers instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class _PageRoute(APIRoute):
    """A dashboard route: a check that fails raises ``_Refused`` from any helper, and its response answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[object, object, Response]]:
        handle = super().get_route_handler()

        async def handle_refused(request: Request) -> Response:
            try:
                return await handle(request)
            except _Refused as refused:
                return refused.response

        return handle_refused


router = APIRouter(include_in_schema=False, route_class=_PageRoute)

_HERE = Path(__file__).parent
_templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
)
_templates.filters["pct"] = lambda v: "-" if v is None else f"{v * 100:.1f}%"
_templates.filters["num"] = lambda v: "-" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:.4g}")
_templates.filters["q"] = lambda v: quote(str(v), safe="")
_templates.globals["spark"] = sparkline
_templates.globals["iso"] = query_time.iso
_templates.globals["minute"] = iso_minute
_templates.globals["thresholds"] = THRESHOLDS
# Whether a drift method's threshold is on the p-value (drift below it) rather than on the score (drift at or above).
_templates.globals["decided_by_p"] = lambda method: method in DRIFT_THRESHOLDS and not DRIFT_THRESHOLDS[method][1]
_templates.filters["short"] = short_value
_templates.globals["labels_in_order"] = labels_in_order
_LOGIN_CSRF = "aither_login_csrf"
#: Predictions listed per page.
_PAGE = 50
_MAX_FORM_BYTES = 64 * 1024
#: No script runs on these pages, none may be injected, and no other site may frame them.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
#: The query parameters several pages take.
_Version = Annotated[str | None, Query(max_length=256)]
_Environment = Annotated[str | None, Query(max_length=256)]
_Range = Annotated[str, Query(max_length=8)]
_Moment = Annotated[str | None, Query(max_length=40)]


_logger = logging.getLogger("aither_server")
#: Seconds between two looks at whether a page's client is still there.
DISCONNECT_POLL_S = 0.05
T = TypeVar("T")


def page_work(request: Request) -> set[Token]:
    """The tokens of the pages being built now (the server sets them all when it stops)."""
    found: set[Token] | None = getattr(request.app.state, "page_work", None)
    if found is None:
        found = request.app.state.page_work = set()
    return found


def _stopped(token: Token, path: str) -> None:
    _logger.info("page %s stopped after %d steps: %s", path, token.steps, token.reason)


async def _built(request: Request, work: Callable[[], T]) -> T:
    """``work()`` in a worker thread, stopped at its next step (``model/cancellation.py``) once the client has
    gone or this request is cancelled (the server stopping): nobody then waits for the page, and the server's
    shutdown never waits on it. A page whose client has gone answers nothing anyone reads."""
    token = Token()
    running = page_work(request)
    running.add(token)
    path = request.url.path

    def run() -> T:
        try:
            return watched(token, work)
        except Cancelled:
            _stopped(token, path)
            raise

    task = asyncio.ensure_future(run_in_threadpool(run))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await request.is_disconnected():
                token.cancel("the client disconnected")
        return task.result()
    except Cancelled:
        raise _Refused(Response(status_code=499)) from None
    finally:
        if not task.done():
            # This request was cancelled (the server stopping past its grace): the thread stops at its next step.
            token.cancel("the server is stopping")
        running.discard(token)


def _sessions(request: Request) -> SessionStore:
    found: SessionStore = request.app.state.ui_sessions
    return found


def _store(request: Request) -> Store:
    found: Store = request.app.state.store
    return found


def _monitoring(request: Request) -> Monitoring:
    found: Monitoring = request.app.state.monitoring
    return found


async def _drift(request: Request) -> DriftStore:
    """Drift's tables once every span stored so far is in them, as the drift API reads them."""
    feeder: Feeder = request.app.state.drift_feeder
    await run_in_threadpool(feeder.flush)
    return feeder.store


def _page(template: str, status: int = 200, **context: object) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


async def _session(request: Request) -> Session | None:
    return await run_in_threadpool(_sessions(request).get, request.cookies.get(COOKIE))


async def _form(request: Request) -> dict[str, str]:
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


def _cookie_flags(request: Request) -> _CookieFlags:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/"}


# -- checks: signed in, an admin, the form's CSRF token --------------------------------------------------------


def _forbidden(session: Session) -> HTMLResponse:
    return _page("message.html", 403, session=session, title="Admins only", message="This page needs an admin key.")


def _bad_csrf(session: Session) -> HTMLResponse:
    return _page("message.html", 400, session=session, title="Form expired", message="Reload the page and retry.")


def _not_found(session: Session, message: str, title: str = "Not found") -> HTMLResponse:
    return _page("message.html", 404, session=session, title=title, message=message)


async def _signed_in(request: Request) -> Session:
    """The request's session; without one, the page answers with a redirect to the sign-in form."""
    session = await _session(request)
    if session is None:
        raise _Refused(_redirect("/login"))
    return session


async def _admin(request: Request) -> Session:
    """The session of a signed-in admin key; a read key gets the 403 page."""
    session = await _signed_in(request)
    if not session.admin:
        raise _Refused(_forbidden(session))
    return session


def _check_csrf(form: Mapping[str, str], session: Session) -> None:
    if not same_token(form.get("csrf"), session.csrf):
        raise _Refused(_bad_csrf(session))


async def _admin_form(request: Request) -> tuple[Session, dict[str, str]]:
    """An admin's posted form, once it has posted back its session's CSRF token."""
    session = await _admin(request)
    form = await _form(request)
    _check_csrf(form, session)
    return session, form


# -- sign-in ---------------------------------------------------------------------------------------------------


def _login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _page("login.html", status, csrf=token, error=error, session=None)
    response.set_cookie(_LOGIN_CSRF, token, max_age=3600, **_cookie_flags(request))
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await _session(request) is not None:
        return _redirect("/")
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    if not same_token(form.get("csrf"), request.cookies.get(_LOGIN_CSRF) or "\0"):
        return _login_page(request, "The form expired; please sign in again.", 400)
    key = form.get("api_key", "").strip()
    principal = await run_in_threadpool(_store(request).authenticate, key) if key else None
    if principal is None or not has_scope(principal.scopes, "read"):
        return _login_page(request, "That key is not a valid, unrevoked key with the read scope.", 401)
    session_id = await run_in_threadpool(_sessions(request).create, principal)
    response = _redirect("/")
    response.set_cookie(COOKIE, session_id, **_cookie_flags(request))
    response.delete_cookie(_LOGIN_CSRF, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await _session(request)
    form = await _form(request)
    if session is not None:
        # A forged form (no token) signs nobody out: the cookie stays as the session does.
        _check_csrf(form, session)
        await run_in_threadpool(_sessions(request).delete, request.cookies.get(COOKIE))
    response = _redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/static/dashboard.css")
def stylesheet() -> FileResponse:
    path = _HERE / "static" / "dashboard.css"
    return FileResponse(path, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


# -- pages -----------------------------------------------------------------------------------------------------


@router.get("/")
async def models(request: Request, sort: Annotated[str, Query(max_length=20)] = "name") -> Response:
    session = await _signed_in(request)
    drift = await _drift(request)
    monitors = _monitoring(request).monitors
    rows = await _built(request, lambda: models_page(_store(request), drift, monitors, sort))
    return _page("models.html", session=session, rows=rows, sort=sort, nav="models")


@router.get("/feature")
async def feature(
    request: Request,
    model: Annotated[str, Query(max_length=256)],
    name: Annotated[str, Query(max_length=1024)],
    version: _Version = None,
    environment: _Environment = None,
    range: _Range = "24h",
    start: _Moment = None,
    end: _Moment = None,
) -> Response:
    """A feature's reference and current distributions, overlaid, and its nulls."""
    session = await _signed_in(request)
    period = window(range, start, end)
    drift = await _drift(request)
    found = await _built(
        request,
        lambda: distributions(
            drift,
            model,
            name,
            version=version or None,
            environment=environment or None,
            window=(period.start_ns, period.end_ns),
        ),
    )
    chart = None if found is None else overlay(f"{name}: reference and current", found["bars"])
    quality = await _built(
        request, lambda: feature_quality(drift, model, name, version or None, environment or None, period)
    )
    return _page(
        "feature.html",
        quality=quality,
        session=session,
        model=model,
        name=name,
        found=found,
        chart=chart,
        range=period.range,
        ranges=list(RANGES),
        version=version or "",
        environment=environment or "",
        period=period,
        query=_window_query(period, version, environment),
        nav="models",
    )


@router.get("/models/{name:path}")
async def model(
    request: Request,
    name: str,
    version: _Version = None,
    environment: _Environment = None,
    range: _Range = "24h",
    start: _Moment = None,
    end: _Moment = None,
) -> Response:
    session = await _signed_in(request)
    store = _store(request)
    period = window(range, start, end)
    drift = await _drift(request)
    known = await run_in_threadpool(query_models.list_models, store.reader())
    entry = next((m for m in known if m["name"] == name), None)
    if entry is None:
        return _not_found(session, f"No model named {name}.", title="No such model")
    data = await _built(
        request,
        lambda: model_page(
            store,
            drift,
            name,
            version=version or None,
            environment=environment or None,
            period=period,
            versions=entry["versions"],
            environments=entry["environments"],
        ),
    )
    monitors = _monitoring(request).monitors.all(name)
    return _page(
        "model.html",
        session=session,
        model=entry,
        data=data,
        version=version or "",
        environment=environment or "",
        range=period.range,
        ranges=list(RANGES),
        period=period,
        query=_window_query(period, version, environment),
        monitors=monitors,
        nav="models",
    )


def _window_query(period: Window, version: str | None, environment: str | None) -> str:
    """The query string that opens another page on the same model, version, environment and window."""
    parts = {"version": version or "", "environment": environment or ""}
    if period.range == "custom":
        parts.update(start=iso_minute(period.start_ns), end=iso_minute(period.end_ns))
    else:
        parts["range"] = period.range
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in parts.items() if v)


@router.get("/segments")
async def segments(
    request: Request,
    model: Annotated[str, Query(max_length=256)],
    feature: Annotated[str | None, Query(max_length=1024)] = None,
    version: _Version = None,
    environment: _Environment = None,
    range: _Range = "24h",
    start: _Moment = None,
    end: _Moment = None,
) -> Response:
    """Where the model is worst: every feature's segments ranked by quality gap, or one feature's segments."""
    session = await _signed_in(request)
    period = window(range, start, end)
    drift = await _drift(request)
    found = await _built(
        request,
        lambda: segments_page(
            _store(request),
            drift,
            model,
            feature=feature or None,
            version=version or None,
            environment=environment or None,
            period=period,
        ),
    )
    if found is None:
        return _not_found(session, f"No model named {model}.", title="No such model")
    return _page(
        "segments.html",
        session=session,
        model=model,
        feature=feature or "",
        found=found,
        period=period,
        range=period.range,
        ranges=list(RANGES),
        version=version or "",
        environment=environment or "",
        query=_window_query(period, version, environment),
        nav="models",
    )


def _choice(text: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(text or "")


@router.get("/predictions")
async def predictions(
    request: Request,
    model: Annotated[str | None, Query(max_length=256)] = None,
    trace_id: Annotated[str | None, Query(max_length=64)] = None,
    version: _Version = None,
    environment: _Environment = None,
    start: _Moment = None,
    end: _Moment = None,
    status: Annotated[str | None, Query(max_length=8)] = None,
    labelled: Annotated[str | None, Query(max_length=8)] = None,
    correct: Annotated[str | None, Query(max_length=8)] = None,
    after: Annotated[str | None, Query(max_length=48)] = None,
) -> Response:
    """A model's predictions, newest first, filtered and a page at a time (``after``: the previous page's cursor)."""
    session = await _signed_in(request)
    if trace_id:
        return _redirect("/predictions/" + quote(trace_id.strip().lower(), safe=""))
    store = _store(request)
    names = [m["name"] for m in await run_in_threadpool(query_models.list_models, store.reader())]
    chosen = model if model in names else (names[0] if names else None)
    filters = Filters(
        version=version or None,
        environment=environment or None,
        start_ns=parse_moment(start),
        end_ns=parse_moment(end),
        error={"error": True, "ok": False}.get(status or ""),
        labelled=_choice(labelled),
        correct=_choice(correct),
    )
    rows: list[FoundPrediction] = []
    cursor = None
    if chosen is not None:
        name = chosen
        found = await _built(
            request, lambda: search_predictions(store.reader(), name, filters, limit=_PAGE, cursor=parse_cursor(after))
        )
        rows, cursor = found or ([], None)
    params = {
        "model": chosen or "",
        "version": version or "",
        "environment": environment or "",
        "start": start or "",
        "end": end or "",
        "status": status or "",
        "labelled": labelled or "",
        "correct": correct or "",
    }
    next_url = None
    if cursor is not None:
        next_url = "/predictions?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if v)
        next_url += "&after=" + cursor
    return _page(
        "predictions.html",
        session=session,
        names=names,
        chosen=chosen,
        rows=rows,
        f=params,
        paged=bool(after),
        next_url=next_url,
        first_url="/predictions?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if v),
        nav="predictions",
    )


@router.get("/predictions/{trace_id}")
async def prediction(request: Request, trace_id: str) -> Response:
    session = await _signed_in(request)
    try:
        raw = bytes.fromhex(trace_id)
    except ValueError:
        raw = b""
    found = None
    if len(raw) == 16:
        found = await run_in_threadpool(query_predictions.get_prediction, _store(request).reader(), raw)
    if found is None:
        return _not_found(session, f"No prediction with trace id {trace_id}.")
    return _page("prediction.html", session=session, p=found, table=sampled_table(found), nav="predictions")


# -- monitors --------------------------------------------------------------------------------------------------


def _monitor_fields(form: Mapping[str, str]) -> dict[str, object]:
    fields: dict[str, object] = {k: form.get(k, "").strip() for k in ("name", "model", "metric", "op", "window")}
    for optional in ("version", "environment", "webhook_url"):
        fields[optional] = form.get(optional, "").strip() or None
    fields["threshold"] = form.get("threshold", "")
    fields["min_rows"] = form.get("min_rows", "") or "1"
    fields["enabled"] = True
    return fields


async def _monitor(request: Request, session: Session, monitor_id: str) -> MonitorRecord:
    """The monitor ``monitor_id``; without one, the 404 page answers."""
    record = await run_in_threadpool(_monitoring(request).monitors.get, monitor_id)
    if record is None:
        raise _Refused(_not_found(session, "No such monitor."))
    return record


@router.get("/monitors")
async def monitors_page(request: Request) -> Response:
    return await _monitors_page(request, await _signed_in(request))


async def _monitors_page(
    request: Request,
    session: Session,
    error: str | None = None,
    created: MonitorRecord | None = None,
    status: int = 200,
) -> HTMLResponse:
    monitoring = _monitoring(request)
    rows = await run_in_threadpool(monitoring.monitors.all)
    names = [m["name"] for m in await run_in_threadpool(query_models.list_models, _store(request).reader())]
    return _page(
        "monitors.html", status, session=session, rows=rows, names=names, error=error, created=created, nav="monitors"
    )


@router.post("/monitors")
async def create_monitor(request: Request) -> Response:
    session, form = await _admin_form(request)
    monitoring = _monitoring(request)
    try:
        body = MonitorCreate.model_validate(_monitor_fields(form))
        if body.webhook_url is not None:
            check_target(body.webhook_url, allow_private=monitoring.allow_private_webhooks)
    except (ValueError, UnsafeTarget) as exc:
        message = str(exc).splitlines()
        return await _monitors_page(request, session, error=" ".join(message[:3]), status=400)
    record = await run_in_threadpool(monitoring.monitors.create, body.model_dump())
    return await _monitors_page(request, session, created=record, status=201)


@router.get("/monitors/{monitor_id}")
async def monitor_page(request: Request, monitor_id: str) -> Response:
    session = await _signed_in(request)
    record = await _monitor(request, session, monitor_id)
    store = _monitoring(request).monitors
    history = await run_in_threadpool(store.history, monitor_id)
    deliveries = await run_in_threadpool(store.deliveries, monitor_id)
    return _page("monitor.html", session=session, m=record, history=history, deliveries=deliveries, nav="monitors")


@router.post("/monitors/{monitor_id}/{action}")
async def monitor_action(request: Request, monitor_id: str, action: str) -> Response:
    session, _ = await _admin_form(request)
    record = await _monitor(request, session, monitor_id)
    monitoring = _monitoring(request)
    if action == "evaluate":
        await run_in_threadpool(monitoring.evaluator.evaluate, record)
    elif action == "delete":
        await run_in_threadpool(monitoring.monitors.delete, monitor_id)
        return _redirect("/monitors")
    elif action in ("enable", "disable"):
        await run_in_threadpool(monitoring.monitors.update, monitor_id, {"enabled": action == "enable"})
    else:
        return _not_found(session, "No such action.")
    return _redirect("/monitors/" + quote(monitor_id, safe=""))


# -- API keys --------------------------------------------------------------------------------------------------


async def _keys_page(
    request: Request, session: Session, secret: str | None = None, error: str | None = None, status: int = 200
) -> HTMLResponse:
    keys = await run_in_threadpool(_store(request).list_keys)
    return _page("keys.html", status, session=session, keys=keys, secret=secret, error=error, nav="keys")


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    return await _keys_page(request, await _admin(request))


@router.post("/keys")
async def create_key(request: Request) -> Response:
    session, form = await _admin_form(request)
    name = form.get("name", "").strip()[:200]
    scopes = [s for s in ("read", "write", "admin") if form.get("scope_" + s)]
    if not name or not scopes:
        return await _keys_page(request, session, error="A key needs a name and at least one scope.", status=400)
    _, secret = await run_in_threadpool(_store(request).create_key, name, scopes)
    return await _keys_page(request, session, secret=secret, status=201)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    session, _ = await _admin_form(request)
    try:
        await run_in_threadpool(_store(request).revoke_key, key_id)
    except LastAdminKey as exc:
        return await _keys_page(request, session, error=str(exc), status=409)
    return _redirect("/keys")
