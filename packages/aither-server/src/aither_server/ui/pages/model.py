"""A model's page (``/models/<name>``): its charts, why it fails (``ui/diagnose.py``), drift, data quality and
monitors over a window."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from aither_server.query import models as query_models
from aither_server.ui.data import model_page
from aither_server.ui.pages.access import signed_in
from aither_server.ui.pages.params import Shown
from aither_server.ui.pages.render import PageRoute, not_found, page
from aither_server.ui.pages.state import fresh_drift, monitoring, store
from aither_server.ui.pages.work import built

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/models/{name:path}")
async def model(request: Request, name: str, shown: Annotated[Shown, Depends()]) -> Response:
    session = await signed_in(request)
    found_store = store(request)
    period = shown.period()
    drift = await fresh_drift(request)
    known = await run_in_threadpool(query_models.list_models, found_store.reader())
    entry = next((m for m in known if m["name"] == name), None)
    if entry is None:
        return not_found(session, f"No model named {name}.", title="No such model")
    data = await built(
        request,
        lambda: model_page(
            found_store,
            drift,
            name,
            version=shown.version or None,
            environment=shown.environment or None,
            period=period,
            versions=entry["versions"],
            environments=entry["environments"],
        ),
    )
    monitors = monitoring(request).monitors.all(name)
    return page(
        "model.html",
        session=session,
        model=entry,
        data=data,
        **shown.context(period),
        monitors=monitors,
        nav="models",
    )
