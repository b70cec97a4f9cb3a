"""The dashboard: server-rendered pages at ``/`` (Jinja2 templates in ``templates/``, one stylesheet in
``static/``, charts as inline SVG from ``ui/charts.py``), behind a sign-in with an API key (docs/dashboard.md).

Sign-in checks the key like an API call and keeps a server-side session (``ui/sessions.py``); the key itself is
never stored, put in a cookie or in a URL. A read key sees; an admin key also manages monitors and API keys.
Every form posts its CSRF token: the session's, or for the sign-in form a double-submit cookie.

One module a page (``models``, ``model``, ``feature``, ``segments``, ``predictions``, ``monitors``, ``keys``,
``login``); what they share: ``render`` (templates, the page response), ``access`` (sessions, the checks, forms),
``work`` (a page built in a thread, stopped when its client goes), ``params`` (the version and window a
page shows), ``state`` (the stores), ``static`` (the stylesheet).
"""

from __future__ import annotations

from fastapi import APIRouter

from aither_server.ui.pages import feature, keys, login, model, models, monitors, predictions, segments, static
from aither_server.ui.pages.render import PageRoute

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)
for _page in (login, static, models, feature, model, segments, predictions, monitors, keys):
    router.include_router(_page.router)
