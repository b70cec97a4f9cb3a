"""The monitors pages: the list and the form that creates one (``/monitors``), one monitor with its history and
webhook deliveries (``/monitors/<id>``), and its actions (evaluate, enable, disable, delete; admins only)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aither_server.monitors.schemas import MonitorCreate
from aither_server.monitors.store import MonitorRecord
from aither_server.monitors.targets import UnsafeTarget, check_target
from aither_server.ui.pages.access import admin_form, signed_in
from aither_server.ui.pages.render import PageRoute, Refused, not_found, page, redirect
from aither_server.ui.pages.state import model_names, monitoring
from aither_server.ui.sessions import Session

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


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
    record = await run_in_threadpool(monitoring(request).monitors.get, monitor_id)
    if record is None:
        raise Refused(not_found(session, "No such monitor."))
    return record


@router.get("/monitors")
async def monitors_page(request: Request) -> Response:
    return await _monitors_page(request, await signed_in(request))


async def _monitors_page(
    request: Request,
    session: Session,
    error: str | None = None,
    created: MonitorRecord | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = await run_in_threadpool(monitoring(request).monitors.all)
    names = await model_names(request)
    return page(
        "monitors.html", status, session=session, rows=rows, names=names, error=error, created=created, nav="monitors"
    )


@router.post("/monitors")
async def create_monitor(request: Request) -> Response:
    session, form = await admin_form(request)
    service = monitoring(request)
    try:
        body = MonitorCreate.model_validate(_monitor_fields(form))
        if body.webhook_url is not None:
            check_target(body.webhook_url, allow_private=service.allow_private_webhooks)
    except (ValueError, UnsafeTarget) as exc:
        message = str(exc).splitlines()
        return await _monitors_page(request, session, error=" ".join(message[:3]), status=400)
    record = await run_in_threadpool(service.monitors.create, body.model_dump())
    return await _monitors_page(request, session, created=record, status=201)


@router.get("/monitors/{monitor_id}")
async def monitor_page(request: Request, monitor_id: str) -> Response:
    session = await signed_in(request)
    record = await _monitor(request, session, monitor_id)
    store = monitoring(request).monitors
    history = await run_in_threadpool(store.history, monitor_id)
    deliveries = await run_in_threadpool(store.deliveries, monitor_id)
    return page("monitor.html", session=session, m=record, history=history, deliveries=deliveries, nav="monitors")


@router.post("/monitors/{monitor_id}/{action}")
async def monitor_action(request: Request, monitor_id: str, action: str) -> Response:
    session, _ = await admin_form(request)
    record = await _monitor(request, session, monitor_id)
    service = monitoring(request)
    if action == "evaluate":
        await run_in_threadpool(service.evaluator.evaluate, record)
    elif action == "delete":
        await run_in_threadpool(service.monitors.delete, monitor_id)
        return redirect("/monitors")
    elif action in ("enable", "disable"):
        await run_in_threadpool(service.monitors.update, monitor_id, {"enabled": action == "enable"})
    else:
        return not_found(session, "No such action.")
    return redirect("/monitors/" + quote(monitor_id, safe=""))
