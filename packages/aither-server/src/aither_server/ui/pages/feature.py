"""A feature's page (``/feature``): its reference and current distributions, overlaid, and its data quality."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from aither_server.ui.feature import distributions, overlay
from aither_server.ui.pages.access import signed_in
from aither_server.ui.pages.params import Shown
from aither_server.ui.pages.render import PageRoute, page
from aither_server.ui.pages.state import fresh_drift
from aither_server.ui.pages.work import built
from aither_server.ui.views import feature_quality

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/feature")
async def feature(
    request: Request,
    model: Annotated[str, Query(max_length=256)],
    name: Annotated[str, Query(max_length=1024)],
    shown: Annotated[Shown, Depends()],
) -> Response:
    """A feature's reference and current distributions, overlaid, and its nulls."""
    session = await signed_in(request)
    period = shown.period()
    version, environment = shown.version or None, shown.environment or None
    drift = await fresh_drift(request)
    found = await built(
        request,
        lambda: distributions(
            drift, model, name, version=version, environment=environment, window=(period.start_ns, period.end_ns)
        ),
    )
    chart = None if found is None else overlay(f"{name}: reference and current", found["bars"])
    quality = await built(request, lambda: feature_quality(drift, model, name, version, environment, period))
    return page(
        "feature.html",
        session=session,
        model=model,
        name=name,
        **shown.context(period),
        found=found,
        chart=chart,
        quality=quality,
        nav="models",
    )
