"""The dashboard's one stylesheet (no sign-in: the sign-in page uses it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from aither_server.ui.pages.render import UI, PageRoute

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/static/dashboard.css")
def stylesheet() -> FileResponse:
    path = UI / "static" / "dashboard.css"
    return FileResponse(path, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
