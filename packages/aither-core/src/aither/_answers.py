"""Reading the server's JSON answers, shared by ``aither.models`` and ``aither.monitors``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from ._errors import APIError

__all__ = ["data_list", "parsing_answer"]


def data_list(answer: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    """The objects in the ``data`` list of a list answer (entries that are not objects are skipped); ``what``
    names that list in the error when there is none ("model list")."""
    items = answer.get("data")
    if not isinstance(items, list):
        raise APIError(f"the server sent an unexpected {what}")
    return [item for item in items if isinstance(item, Mapping)]


@contextlib.contextmanager
def parsing_answer(what: str) -> Iterator[None]:
    """Around the reading of an answer's fields: a missing or ill-typed one is the server's fault, not the
    caller's, so it is raised as ``APIError("the server sent <what> (...)")``."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise APIError(f"the server sent {what} ({type(exc).__name__}: {exc})") from None
