"""A page's response: the templates with their filters, the headers every page sends, and the refusals (a
redirect, a 403, 400 or 404 page) a check raises from any helper."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from aither_server.drift.stats import THRESHOLDS as DRIFT_THRESHOLDS
from aither_server.query import time as query_time
from aither_server.ui.charts import sparkline
from aither_server.ui.diagnose import THRESHOLDS
from aither_server.ui.prediction_view import labels_in_order, short_value
from aither_server.ui.sessions import Session
from aither_server.ui.window import iso_minute

__all__ = ["UI", "PageRoute", "Refused", "not_found", "page", "redirect"]


class Refused(Exception):
    """Raised by a page's checks: ``response`` (the sign-in redirect, a 403, 400 or 404 page) answers instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class PageRoute(APIRoute):
    """A dashboard route: a check that fails raises ``Refused`` from any helper, and its response answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[object, object, Response]]:
        handle = super().get_route_handler()

        async def handle_refused(request: Request) -> Response:
            try:
                return await handle(request)
            except Refused as refused:
                return refused.response

        return handle_refused


#: The folder of ``templates/`` and ``static/``.
UI = Path(__file__).parent.parent
_templates = Environment(
    loader=FileSystemLoader(UI / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
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
#: No script runs on these pages, none may be injected, and no other site may frame them.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def page(template: str, status: int = 200, **context: object) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


def not_found(session: Session, message: str, title: str = "Not found") -> HTMLResponse:
    return page("message.html", 404, session=session, title=title, message=message)
