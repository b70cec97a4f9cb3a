"""The segments page (``/segments``): where the model is worst, every feature's segments ranked by quality gap,
or one feature's segments in their order."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from aither_server.ui.pages.access import signed_in
from aither_server.ui.pages.params import Shown
from aither_server.ui.pages.render import PageRoute, not_found, page
from aither_server.ui.pages.state import fresh_drift, store
from aither_server.ui.pages.work import built
from aither_server.ui.views import segments_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/segments")
async def segments(
    request: Request,
    shown: Annotated[Shown, Depends()],
    model: Annotated[str, Query(max_length=256)],
    feature: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """Where the model is worst: every feature's segments ranked by quality gap, or one feature's segments."""
    session = await signed_in(request)
    period = shown.period()
    drift = await fresh_drift(request)
    found = await built(
        request,
        lambda: segments_page(
            store(request),
            drift,
            model,
            feature=feature or None,
            version=shown.version or None,
            environment=shown.environment or None,
            period=period,
        ),
    )
    if found is None:
        return not_found(session, f"No model named {model}.", title="No such model")
    return page(
        "segments.html",
        session=session,
        model=model,
        feature=feature or "",
        found=found,
        **shown.context(period),
        nav="models",
    )
