"""The predictions pages: a model's predictions (``/predictions``), newest first, filtered, a page at a time;
one prediction (``/predictions/<trace id>``) with its sampled rows, outputs and labels side by side."""

from __future__ import annotations

from typing import Annotated, TypedDict
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from aither_server.query import predictions as query_predictions
from aither_server.query.prediction_search import Filters, FoundPrediction, parse_cursor, search_predictions
from aither_server.ui.pages.access import signed_in
from aither_server.ui.pages.render import PageRoute, not_found, page, redirect
from aither_server.ui.pages.state import model_names, store
from aither_server.ui.pages.work import built
from aither_server.ui.prediction_view import sampled_table
from aither_server.ui.window import parse_moment

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)

#: Predictions listed per page.
_PAGE = 50
_Moment = Annotated[str | None, Query(max_length=40)]


def _choice(text: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(text or "")


@router.get("/predictions")
async def predictions(
    request: Request,
    model: Annotated[str | None, Query(max_length=256)] = None,
    trace_id: Annotated[str | None, Query(max_length=64)] = None,
    version: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=256)] = None,
    start: _Moment = None,
    end: _Moment = None,
    status: Annotated[str | None, Query(max_length=8)] = None,
    labelled: Annotated[str | None, Query(max_length=8)] = None,
    correct: Annotated[str | None, Query(max_length=8)] = None,
    after: Annotated[str | None, Query(max_length=48)] = None,
) -> Response:
    """A model's predictions, newest first, filtered and a page at a time (``after``: the previous page's cursor)."""
    session = await signed_in(request)
    if trace_id:
        return redirect("/predictions/" + quote(trace_id.strip().lower(), safe=""))
    found_store = store(request)
    names = await model_names(request)
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
        found = await built(
            request,
            lambda: search_predictions(found_store.reader(), name, filters, limit=_PAGE, cursor=parse_cursor(after)),
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
    return page(
        "predictions.html",
        session=session,
        names=names,
        chosen=chosen,
        **_links(params, cursor),
        rows=rows,
        f=params,
        paged=bool(after),
        nav="predictions",
    )


class _Links(TypedDict):
    first_url: str
    next_url: str | None


def _links(params: dict[str, str], cursor: str | None) -> _Links:
    """The first page's URL and the next page's (``None`` on the last page), with the same filters."""
    first_url = "/predictions?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if v)
    return {"first_url": first_url, "next_url": None if cursor is None else first_url + "&after=" + cursor}


@router.get("/predictions/{trace_id}")
async def prediction(request: Request, trace_id: str) -> Response:
    session = await signed_in(request)
    try:
        raw = bytes.fromhex(trace_id)
    except ValueError:
        raw = b""
    found = None
    if len(raw) == 16:
        found = await run_in_threadpool(query_predictions.get_prediction, store(request).reader(), raw)
    if found is None:
        return not_found(session, f"No prediction with trace id {trace_id}.")
    return page("prediction.html", session=session, p=found, table=sampled_table(found), nav="predictions")
