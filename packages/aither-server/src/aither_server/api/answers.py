"""A model route's answer computed in the thread pool, with the errors such routes answer: a 400 for what the
query layer finds invalid (a ``ValueError``), a 404 when no model has the name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool

from aither_server.api.errors import ApiError

__all__ = ["model_answer"]

T = TypeVar("T")


async def model_answer(name: str, work: Callable[[], T | None]) -> T:
    """``work()`` off the event loop; its ``None`` (no model named ``name``) a 404, its ``ValueError`` a 400."""
    try:
        found = await run_in_threadpool(work)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    if found is None:
        raise ApiError(404, "not_found", f"no model named {name!r}")
    return found
