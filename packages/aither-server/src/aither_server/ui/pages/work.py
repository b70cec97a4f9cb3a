"""A page built in a worker thread and stopped at its next step once nobody waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from aither_server.model.cancellation import Cancelled, Token, watched
from aither_server.ui.pages.render import Refused

__all__ = ["DISCONNECT_POLL_S", "built", "page_work"]

_logger = logging.getLogger("aither_server")
#: Seconds between two looks at whether a page's client is still there.
DISCONNECT_POLL_S = 0.05
T = TypeVar("T")


def page_work(request: Request) -> set[Token]:
    """The tokens of the pages being built now (the server sets them all when it stops)."""
    found: set[Token] | None = getattr(request.app.state, "page_work", None)
    if found is None:
        found = request.app.state.page_work = set()
    return found


def _stopped(token: Token, path: str) -> None:
    _logger.info("page %s stopped after %d steps: %s", path, token.steps, token.reason)


async def built(request: Request, work: Callable[[], T]) -> T:
    """``work()`` in a worker thread, stopped at its next step (``model/cancellation.py``) once the client has
    gone or this request is cancelled (the server stopping): nobody then waits for the page, and the server's
    shutdown never waits on it. A page whose client has gone answers nothing anyone reads."""
    token = Token()
    running = page_work(request)
    running.add(token)
    path = request.url.path

    def run() -> T:
        try:
            return watched(token, work)
        except Cancelled:
            _stopped(token, path)
            raise

    task = asyncio.ensure_future(run_in_threadpool(run))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await request.is_disconnected():
                token.cancel("the client disconnected")
        return task.result()
    except Cancelled:
        raise Refused(Response(status_code=499)) from None
    finally:
        if not task.done():
            # This request was cancelled (the server stopping past its grace): the thread stops at its next step.
            token.cancel("the server is stopping")
        running.discard(token)
