"""The server log's account of spans it did not store, rate-limited so a misconfigured sender cannot flood it.

A request whose spans are partly refused is answered 200 with ``partial_success`` (OTLP), which most senders
do not show anyone; the server log is where a person running ``aither server`` sees it. Each reason is logged
at most once per interval, with the spans refused for it since it was last logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["RefusalLog"]

#: At most one message per reason per minute.
DEFAULT_INTERVAL_S = 60.0


class RefusalLog:
    """Logs ``report``\\ ed refusals, at most once per ``interval_s`` per reason. Thread-safe."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._pending: dict[str, int] = {}

    def report(self, spans: int, reason: str, detail: str) -> bool:
        """``spans`` of one request were not stored, the first of them for ``reason``; ``detail`` says why for
        all of them. Returns whether a message was logged."""
        now = self._clock()
        with self._lock:
            total = self._pending.pop(reason, 0) + spans
            last = self._last.get(reason)
            if last is not None and now - last < self._interval_s:
                self._pending[reason] = total
                return False
            self._last[reason] = now
        self._logger.warning(
            "%d spans not stored since this reason was last logged; the latest request: %s"
            " (spans with no ml.* attribute are not aither's; counts are in GET /api/v1/org/usage)",
            total,
            detail,
        )
        return True
