"""Webhook deliveries: a signed JSON POST per state change, sent off the request path with retries.

The signature is Stripe's scheme: ``Aither-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
keyed with the monitor's secret; a receiver recomputes it and rejects old timestamps (replays). Each attempt
is logged in ``monitor_deliveries``. Deliveries are off the request path: evaluating never waits for a slow
receiver, and each target (scheme, host, port) has a lane of its own, so one slow receiver delays only its
own deliveries. Each attempt is one bounded POST (``pinned_post.py``: the checked address, a whole-exchange
deadline, the answer read up to its status line). A delivery waiting for a retry is lost if the process stops
(the state change itself is stored).

The signature proves who sent an event and bounds a replay to the 300 s window :func:`verify` allows; it does
not dedupe: a receiver that must act once per event keeps the ``Aither-Event-Id`` values it has seen for that
window (:class:`SeenEvents` does).
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
from urllib.parse import urlsplit

from aither_server._version import __version__
from aither_server.monitors.pinned_post import DeliveryFailed, post
from aither_server.monitors.store import Delivery, MonitorStore
from aither_server.monitors.targets import UnsafeTarget, resolve_target

logger = logging.getLogger("aither_server")

__all__ = ["Event", "SeenEvents", "Sender", "sign", "verify"]

SIGNATURE_HEADER = "Aither-Signature"
#: Seconds before each retry: five attempts over about half a minute.
BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
#: Seconds one attempt may take, connecting to the answer's status line; after it the attempt has failed.
TIMEOUT_S = 10.0
#: Seconds a target's lane waits idle for more before its thread ends.
_LANE_IDLE_S = 30.0


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


class SeenEvents:
    """A receiver's replay guard beside :func:`verify`: the event ids seen within the signature's window.

    ``if verify(secret, header, body) and seen.first(event_id): act()`` acts once per event, however often a
    signed request is replayed within the window (older ones fail :func:`verify`). Thread-safe.
    """

    def __init__(self, window_s: float = 300.0) -> None:
        self._window_s = window_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first(self, event_id: str, *, now: float | None = None) -> bool:
        """Whether ``event_id`` is seen here for the first time within the window (and remember it)."""
        at = time.time() if now is None else now
        with self._lock:
            # Twice the window: a signature may be up to one window early or late.
            horizon = at - 2 * self._window_s
            for old in [k for k, seen_at in self._seen.items() if seen_at < horizon]:
                del self._seen[old]
            if event_id in self._seen:
                return False
            self._seen[event_id] = at
            return True


@dataclass(frozen=True)
class Event:
    monitor_id: str
    event_id: str
    url: str
    secret: str
    payload: dict[str, object]


class Sender:
    """POSTs events, retrying failures with backoff, and logs every attempt: a scheduler thread hands each due
    attempt to its target's lane, a thread of its own that ends once idle."""

    def __init__(
        self,
        store: MonitorStore,
        *,
        allow_private: bool,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._store = store
        self._allow_private = allow_private
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        # (due time, sequence, attempt, event): retries wait in time order beside new events.
        self._queue: queue.PriorityQueue[tuple[float, int, int, Event | None]] = queue.PriorityQueue()
        self._sequence = 0
        self._lock = threading.Lock()
        self._lanes: dict[str, queue.SimpleQueue[tuple[int, Event] | None]] = {}
        self._lane_threads: list[threading.Thread] = []
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
        with self._lock:
            lanes, threads = list(self._lanes.values()), list(self._lane_threads)
            self._lanes.clear()
        for lane in lanes:
            lane.put(None)
        deadline = time.monotonic() + 5.0
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))

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
            self._hand(event.url, (attempt, event))

    def _hand(self, url: str, job: tuple[int, Event]) -> None:
        """Queue ``job`` on its target's lane, starting the lane's thread if it has none."""
        try:
            parts = urlsplit(url)
            key = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        except ValueError:
            key = url
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = queue.SimpleQueue()
                thread = threading.Thread(target=self._drain, args=(key, lane), name="aither-webhook-lane", daemon=True)
                self._lane_threads = [t for t in self._lane_threads if t.is_alive()] + [thread]
                thread.start()
            # Under the lock: a lane ending idle checks, under it too, that nothing came meanwhile.
            lane.put(job)

    def _drain(self, key: str, lane: queue.SimpleQueue[tuple[int, Event] | None]) -> None:
        while True:
            try:
                job = lane.get(timeout=_LANE_IDLE_S)
            except queue.Empty:
                with self._lock:
                    if not lane.empty():
                        continue
                    if self._lanes.get(key) is lane:
                        del self._lanes[key]
                    return
            if job is None:
                return
            attempt, event = job
            try:
                self._attempt(event, attempt)
            except Exception:  # a database error while logging: never let the lane die
                logger.exception("webhook delivery of monitor %s failed", event.monitor_id)

    def _attempt(self, event: Event, attempt: int) -> None:
        body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True).encode()
        status: int | None = None
        error: str | None = None
        refused = False
        try:
            target = resolve_target(event.url, allow_private=self._allow_private)
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"aither-server/{__version__}",
                SIGNATURE_HEADER: sign(event.secret, timestamp, body),
                "Aither-Event-Id": event.event_id,
            }
            status = post(target, body, headers, self._timeout_s)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except UnsafeTarget as exc:
            error, refused = str(exc), True
        except DeliveryFailed as exc:
            error = str(exc)[:500]
        ok = error is None
        self._store.log_delivery(
            event.monitor_id,
            Delivery(event.event_id, attempt, event.url, time.time_ns(), status, ok, error),
        )
        # A refused target will stay refused: no retry. Anything else is retried while backoff steps remain.
        if not ok and not refused and attempt <= len(self._backoff_s):
            self._put(time.monotonic() + self._backoff_s[attempt - 1], attempt + 1, event)
