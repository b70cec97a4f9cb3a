"""The version, environment and window a model's pages show: the query parameters they take, and what the
pages' templates say of them (the window picker, the query string that opens another page on the same window).
"""

# No ``from __future__ import annotations``: FastAPI reads the query parameters from the dataclass's fields, and
# FastAPI before 0.123.7 (this package allows >=0.110) cannot resolve a class's annotations as strings.

import dataclasses
from typing import Annotated, TypedDict
from urllib.parse import quote

from fastapi import Query

from aither_server.ui.window import RANGES, Window, iso_minute, window

__all__ = ["Shown", "WindowContext"]


class WindowContext(TypedDict):
    range: str
    ranges: list[str]
    version: str
    environment: str
    period: Window
    query: str


@dataclasses.dataclass(frozen=True)
class Shown:
    """A page's ``version``, ``environment`` and window (``range``, or ``start`` and ``end``): a dependency
    (``Annotated[Shown, Depends()]``) whose fields are query parameters."""

    version: Annotated[str | None, Query(max_length=256)] = None
    environment: Annotated[str | None, Query(max_length=256)] = None
    range: Annotated[str, Query(max_length=8)] = "24h"
    start: Annotated[str | None, Query(max_length=40)] = None
    end: Annotated[str | None, Query(max_length=40)] = None

    def period(self) -> Window:
        return window(self.range, self.start, self.end)

    def context(self, period: Window) -> WindowContext:
        """What a page's template says of the window: the picker's choices, the query string of its links."""
        return {
            "range": period.range,
            "ranges": list(RANGES),
            "version": self.version or "",
            "environment": self.environment or "",
            "period": period,
            "query": self._query(period),
        }

    def _query(self, period: Window) -> str:
        """The query string that opens another page on the same model, version, environment and window."""
        parts = {"version": self.version or "", "environment": self.environment or ""}
        if period.range == "custom":
            parts.update(start=iso_minute(period.start_ns), end=iso_minute(period.end_ns))
        else:
            parts["range"] = period.range
        return "&".join(f"{k}={quote(v, safe='')}" for k, v in parts.items() if v)
