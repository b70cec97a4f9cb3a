"""What the exporter says on the ``aither`` logger: enough to act on, never a flood.

The first delivery failure is logged at once with the URL (never the key: it travels in a header) and its
cause; while failures last, at most one line a minute; one line when delivery recovers. Drops are logged at
most once a minute per reason. A process that predicts thousands of times a second against a dead backend
writes a handful of lines, not thousands.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from ._wire import read_string_field

__all__ = ["DeliveryLog", "error_message_of"]

_INTERVAL_S = 60.0


class _Failing:
    __slots__ = ("failures", "last_logged", "since")

    def __init__(self, now: float) -> None:
        self.since = now
        self.last_logged = now
        self.failures = 1


class DeliveryLog:
    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._clock = clock
        self._failing: dict[str, _Failing] = {}
        self._last_by_key: dict[str, float] = {}
        self._once: set[str] = set()

    def failing(self, url: str, cause: str, retry_in: float) -> None:
        """One attempt to ``url`` failed and is retried in ``retry_in`` seconds."""
        now = self._clock()
        state = self._failing.get(url)
        if state is None:
            self._failing[url] = _Failing(now)
            self._logger.warning("aither: cannot deliver to %s: %s; will retry in %s", url, cause, _seconds(retry_in))
            return
        state.failures += 1
        if now - state.last_logged >= _INTERVAL_S:
            state.last_logged = now
            self._logger.warning(
                "aither: still cannot deliver to %s: %s (%d failed attempts in %.0f s); will retry in %s",
                url,
                cause,
                state.failures,
                now - state.since,
                _seconds(retry_in),
            )

    def refused(self, url: str, cause: str, what: str) -> None:
        """``url`` answered ``cause`` (a status that retrying cannot change): the request's ``what`` are dropped.
        Logged at most once a minute for each URL and cause."""
        self.dropped(f"{url} {cause}", "aither: dropped: %s (%s; %s not retried)", cause, url, what)

    def recovered(self, url: str) -> None:
        state = self._failing.pop(url, None)
        if state is not None:
            self._logger.warning(
                "aither: delivery to %s works again, after %d failed attempts in %.0f s",
                url,
                state.failures,
                self._clock() - state.since,
            )

    def dropped(self, key: str, message: str, *args: object) -> None:
        """A drop, logged at most once a minute for each ``key``."""
        now = self._clock()
        last = self._last_by_key.get(key)
        if last is None or now - last >= _INTERVAL_S:
            self._last_by_key[key] = now
            self._logger.warning(message, *args)

    def once(self, key: str, message: str, *args: object) -> None:
        if key not in self._once:
            self._once.add(key)
            self._logger.warning(message, *args)


def _seconds(delay: float) -> str:
    return f"{delay:.0f} s" if delay >= 10 else f"{delay:.1f} s"


def error_message_of(body: bytes) -> str:
    """The server's explanation in an error body: aither's JSON ``{"error": {"message"}}``, a JSON
    ``message``, or an OTLP collector's protobuf ``google.rpc.Status`` (its field 2); else a short text."""
    if not body:
        return ""
    try:
        decoded = json.loads(body)
    except ValueError:
        pass
    else:
        if isinstance(decoded, dict):
            error = decoded.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return str(error["message"])[:200]
            for key in ("message", "detail", "error"):
                if isinstance(decoded.get(key), str):
                    return str(decoded[key])[:200]
        return ""
    message = read_string_field(body, 2)  # google.rpc.Status { int32 code = 1; string message = 2; }
    if message:
        return message[:200]
    text = body[:200].decode("utf-8", "replace")
    return text if text.isprintable() else ""
