"""Webhook deliveries: a signed JSON POST per state change, sent by a background thread with retries.

The signature is Stripe's scheme: ``Aither-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
keyed with the monitor's secret; a receiver recomputes it and rejects old timestamps (replays). Each attempt
is logged in ``monitor_deliveries``. Deliveries are off the request path: evaluating never waits for a slow
receiver. A delivery waiting for a retry is lost if the process stops (the state change itself is stored).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from aither_server._version import __version__
from aither_server.monitors.store import Delivery, MonitorStore
from aither_server.monitors.targets import UnsafeTarget, check_target

logger = logging.getLogger("aither_server")

__all__ = ["Event", "Sender", "sign", "verify"]

SIGNATURE_HEADER = "Aither-Signature"
#: Seconds before each retry: five attempts over about half a minute.
BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
_TIMEOUT_S = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Aither-Signature`` header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of now: a receiver's check."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True)
class Event:
    monitor_id: str
    event_id: str
    url: str
    secret: str
    payload: dict[str, Any]


class Sender:
    """A thread that POSTs events, retrying failures with backoff, and logs every attempt."""

    def __init__(self, store: MonitorStore, *, allow_private: bool, backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        self._store = store
        self._allow_private = allow_private
        self._backoff_s = backoff_s
        # (due time, sequence, attempt, event): retries wait in time order beside new events.
        self._queue: queue.PriorityQueue[tuple[float, int, int, Event | None]] = queue.PriorityQueue()
        self._sequence = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=_TIMEOUT_S, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="aither-webhooks", daemon=True)
        self._thread.start()

    def send(self, event: Event) -> None:
        self._put(time.monotonic(), 1, event)

    def _put(self, due: float, attempt: int, event: Event | None) -> None:
        with self._lock:
            self._sequence += 1
            self._queue.put((due, self._sequence, attempt, event))

    def stop(self) -> None:
        self._put(0.0, 0, None)
        self._thread.join(5.0)
        self._client.close()

    def _run(self) -> None:
        while True:
            due, _, attempt, event = self._queue.get()
            if event is None:
                return
            wait = due - time.monotonic()
            if wait > 0:
                # Not due yet: put it back and wait for it or for anything newer, whichever comes first.
                self._put(due, attempt, event)
                time.sleep(min(wait, 0.2))
                continue
            try:
                self._attempt(event, attempt)
            except Exception:  # a database error while logging: never let the thread die
                logger.exception("webhook delivery of monitor %s failed", event.monitor_id)

    def _attempt(self, event: Event, attempt: int) -> None:
        body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True).encode()
        status: int | None = None
        error: str | None = None
        refused = False
        try:
            check_target(event.url, allow_private=self._allow_private)
            timestamp = int(time.time())
            response = self._client.post(
                event.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"aither-server/{__version__}",
                    SIGNATURE_HEADER: sign(event.secret, timestamp, body),
                    "Aither-Event-Id": event.event_id,
                },
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except UnsafeTarget as exc:
            error, refused = str(exc), True
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        ok = error is None
        self._store.log_delivery(
            event.monitor_id,
            Delivery(event.event_id, attempt, event.url, time.time_ns(), status, ok, error),
        )
        # A refused target will stay refused: no retry. Anything else is retried while backoff steps remain.
        if not ok and not refused and attempt <= len(self._backoff_s):
            self._put(time.monotonic() + self._backoff_s[attempt - 1], attempt + 1, event)
