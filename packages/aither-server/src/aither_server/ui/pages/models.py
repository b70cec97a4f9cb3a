"""The models page (``/``): every model's last 24 hours, drift and monitors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from aither_server.ui.data import models_page
from aither_server.ui.pages.access import signed_in
from aither_server.ui.pages.render import PageRoute, page
from aither_server.ui.pages.state import fresh_drift, monitoring, store
from aither_server.ui.pages.work import built

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/")
async def models(request: Request, sort: Annotated[str, Query(max_length=20)] = "name") -> Response:
    session = await signed_in(request)
    drift = await fresh_drift(request)
    monitors = monitoring(request).monitors
    rows = await built(request, lambda: models_page(store(request), drift, monitors, sort))
    return page("models.html", session=session, rows=rows, sort=sort, nav="models")
