"""Monitor routes (docs/monitors.md): admin keys create, change, delete and evaluate monitors (a monitor
holds a URL the server will post to); read keys list them, their state history and webhook deliveries.

A read key sees a webhook URL's scheme and host only: receivers' URLs often carry their own secret (Slack's
do), and the secret of the signature is shown once, to the admin key that created the monitor."""

from __future__ import annotations

from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from aither_server.api.auth import Admin, Read
from aither_server.api.errors import ApiError, errors_doc
from aither_server.model.api_keys import Principal, has_scope
from aither_server.monitors.evaluate import target_warnings
from aither_server.monitors.schemas import (
    DeliveryList,
    MonitorCreate,
    MonitorCreated,
    MonitorList,
    MonitorOut,
    MonitorUpdate,
    StateList,
)
from aither_server.monitors.service import Monitoring
from aither_server.monitors.store import MonitorRecord
from aither_server.monitors.targets import UnsafeTarget, check_target
from aither_server.query import time as query_time

__all__ = ["router"]

router = APIRouter(tags=["monitors"])

_Id = Annotated[str, Path(min_length=1, max_length=40)]


def _monitoring(request: Request) -> Monitoring:
    found: Monitoring = request.app.state.monitoring
    return found


def _shown_url(url: str | None, principal: Principal) -> str | None:
    if url is None or has_scope(principal.scopes, "admin"):
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


_Out = TypeVar("_Out", bound=MonitorOut)


def _out(out: type[_Out], record: MonitorRecord, principal: Principal, **extra: object) -> _Out:
    return out.model_validate(
        {
            "id": record.id,
            "name": record.name,
            "model": record.model,
            "version": record.version,
            "environment": record.environment,
            "metric": record.metric,
            "op": record.op,
            "threshold": record.threshold,
            "window": record.window,
            "min_rows": record.min_rows,
            "webhook_url": _shown_url(record.webhook_url, principal),
            "enabled": record.enabled,
            "state": record.state,
            "value": record.value,
            "rows": record.rows,
            "last_evaluated": query_time.iso(record.last_evaluated_ns),
            "created_at": query_time.iso(record.created_ns) or "",
            **extra,
        }
    )


def _found(monitoring: Monitoring, monitor_id: str) -> MonitorRecord:
    record = monitoring.monitors.get(monitor_id)
    if record is None:
        raise ApiError(404, "not_found", f"no monitor with id {monitor_id!r}")
    return record


def _check_url(monitoring: Monitoring, url: str | None) -> None:
    if url is None:
        return
    try:
        check_target(url, allow_private=monitoring.allow_private_webhooks)
    except UnsafeTarget as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None


@router.post("/api/v1/monitors", response_model=MonitorCreated, status_code=201, responses=errors_doc(400))
def create_monitor(request: Request, body: MonitorCreate, principal: Admin) -> MonitorCreated:
    """A new monitor, in state NO_DATA until evaluated. Its webhook ``secret`` is in this answer only."""
    monitoring = _monitoring(request)
    _check_url(monitoring, body.webhook_url)
    record = monitoring.monitors.create(body.model_dump())
    evaluator = monitoring.evaluator
    warnings = target_warnings(evaluator.store, evaluator.drift, body.model, body.version, body.metric)
    return _out(MonitorCreated, record, principal, secret=record.secret, warnings=warnings)


@router.get("/api/v1/monitors", response_model=MonitorList, responses=errors_doc())
def list_monitors(
    request: Request, principal: Read, model: Annotated[str | None, Query(max_length=256)] = None
) -> MonitorList:
    records = _monitoring(request).monitors.all(model)
    return MonitorList(data=[_out(MonitorOut, r, principal) for r in records])


@router.get("/api/v1/monitors/{monitor_id}", response_model=MonitorOut, responses=errors_doc(404))
def get_monitor(request: Request, monitor_id: _Id, principal: Read) -> MonitorOut:
    return _out(MonitorOut, _found(_monitoring(request), monitor_id), principal)


@router.patch("/api/v1/monitors/{monitor_id}", response_model=MonitorOut, responses=errors_doc(400, 404))
def update_monitor(request: Request, monitor_id: _Id, body: MonitorUpdate, principal: Admin) -> MonitorOut:
    """Change the fields sent. The state stays until the next evaluation."""
    monitoring = _monitoring(request)
    _found(monitoring, monitor_id)
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "model", "metric", "op", "threshold", "window", "min_rows", "enabled"):
        if required in changes and changes[required] is None:
            raise ApiError(400, "invalid_request", f"{required} cannot be null")
    _check_url(monitoring, changes.get("webhook_url"))
    record = monitoring.monitors.update(monitor_id, changes)
    if record is None:
        raise ApiError(404, "not_found", f"no monitor with id {monitor_id!r}")
    return _out(MonitorOut, record, principal)


@router.delete("/api/v1/monitors/{monitor_id}", status_code=204, responses=errors_doc(404))
def delete_monitor(request: Request, monitor_id: _Id, _: Admin) -> None:
    if not _monitoring(request).monitors.delete(monitor_id):
        raise ApiError(404, "not_found", f"no monitor with id {monitor_id!r}")


@router.post("/api/v1/monitors/{monitor_id}/evaluate", response_model=MonitorOut, responses=errors_doc(404))
async def evaluate_monitor(request: Request, monitor_id: _Id, principal: Admin) -> MonitorOut:
    """Evaluate now (enabled or not): the answer holds the new state; a change of state sends the webhook."""
    monitoring = _monitoring(request)
    record = await run_in_threadpool(_found, monitoring, monitor_id)
    evaluated = await run_in_threadpool(monitoring.evaluator.evaluate, record)
    return _out(MonitorOut, evaluated, principal)


@router.get("/api/v1/monitors/{monitor_id}/states", response_model=StateList, responses=errors_doc(404))
def monitor_states(
    request: Request, monitor_id: _Id, _: Read, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> StateList:
    """The state changes, newest first."""
    monitoring = _monitoring(request)
    _found(monitoring, monitor_id)
    changes = monitoring.monitors.history(monitor_id, limit)
    return StateList.model_validate(
        {
            "data": [
                {
                    "state": c.state,
                    "previous": c.previous,
                    "value": c.value,
                    "rows": c.rows,
                    "at": query_time.iso(c.at_ns),
                }
                for c in changes
            ]
        }
    )


@router.get("/api/v1/monitors/{monitor_id}/deliveries", response_model=DeliveryList, responses=errors_doc(404))
def monitor_deliveries(
    request: Request, monitor_id: _Id, principal: Read, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> DeliveryList:
    """Webhook delivery attempts, newest first."""
    monitoring = _monitoring(request)
    _found(monitoring, monitor_id)
    return DeliveryList.model_validate(
        {
            "data": [
                {
                    "event_id": d.event_id,
                    "attempt": d.attempt,
                    "url": _shown_url(d.url, principal),
                    "at": query_time.iso(d.at_ns),
                    "status_code": d.status_code,
                    "ok": d.ok,
                    "error": d.error,
                }
                for d in monitoring.monitors.deliveries(monitor_id, limit)
            ]
        }
    )
