"""Stopping a page's work when nobody waits for it any more (issue 23): a token set when the client disconnects
or the server stops, checked between the steps of the work (a slice, a column, a segment's feature).

The work runs in a worker thread under :func:`watched`, which makes the token the thread's current one; the
steps call :func:`check`, which raises :class:`Cancelled` once the token is set. Code run outside a page (the API,
the monitors) has no current token, and :func:`check` costs it a context-variable read.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Cancelled", "Token", "check", "current", "watched"]

T = TypeVar("T")


class Cancelled(Exception):
    """The work's token was set: its client has gone, or the server is stopping."""


class Token:
    """Set once, from any thread; counts the checks made before and after it was set."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self.reason = ""
        #: Steps checked (and so begun) while the token was clear.
        self.steps = 0

    def cancel(self, reason: str) -> None:
        if not self._set.is_set():
            self.reason = reason
            self._set.set()

    @property
    def cancelled(self) -> bool:
        return self._set.is_set()

    def check(self) -> None:
        if self._set.is_set():
            raise Cancelled(self.reason)
        self.steps += 1


_current: contextvars.ContextVar[Token | None] = contextvars.ContextVar("aither_page_token", default=None)


def current() -> Token | None:
    """The token of the work running on this thread, if any."""
    return _current.get()


def check() -> None:
    """Raise :class:`Cancelled` when the current work's token is set; a step of work begins otherwise."""
    token = _current.get()
    if token is not None:
        token.check()


def watched(token: Token, work: Callable[[], T]) -> T:
    """Run ``work`` with ``token`` as the current token (call it in the worker thread)."""
    reset = _current.set(token)
    try:
        token.check()
        return work()
    finally:
        _current.reset(reset)
