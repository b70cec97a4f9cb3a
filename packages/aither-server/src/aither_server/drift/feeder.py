"""Drift's sketches updated off the ingestion path: spans queued by the ingest hook, merged about once a second.

The ingest hook only appends the stored request's prediction spans to a list (a lock and a list extend), so
ingestion pays almost nothing for drift. A background thread takes what is queued every :data:`INTERVAL_S`
and feeds it (``_drift_sketches.feed``): many requests' sampled rows merge into each hour's sketches in one
transaction instead of one per request. Queries call :meth:`DriftFeeder.flush` first, so they see every span
stored before them. At most :data:`MAX_PENDING` spans wait: past that, the hook feeds them itself (back
pressure instead of unbounded memory). Spans still queued when the process dies are lost to drift only (they
are stored): the sketches are a sample already.

Profiles a profile-only SDK sent (``/v1/metrics``' ``aither.profile`` points) are queued alike
(:meth:`DriftFeeder.observe_profiles`) and merged by the same feeder (``DriftStore.add_reported``), so every
write to the hours' sketches comes from one place, one transaction at a time.

The thread shares the interpreter lock with the requests, so its work is still paid on the core that serves
them: ``aither server`` feeds drift in a process of its own instead (``drift/process.py``), with the same
interface (:class:`Feeder`). This thread is the embedded servers' feeder (tests, ``aither demo``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from aither.profile import profile_values
from aither_server.drift.sketches import DriftSample, drift_samples, observe
from aither_server.drift.store import DriftStore
from aither_server.model.records import PredictionSpan

if TYPE_CHECKING:
    from aither_server.ingest.metrics import ProfileReport

__all__ = ["INTERVAL_S", "MAX_PENDING", "DriftFeeder", "Feeder", "Queued", "merge_reported"]

logger = logging.getLogger("aither_server")

INTERVAL_S = 1.0
MAX_PENDING = 200_000


class Feeder(Protocol):
    """What ingestion and drift's queries use of a feeder: this module's thread, or ``drift/process.py``."""

    store: DriftStore
    """Drift's tables, as this process reads them."""

    def observe(self, spans: Sequence[PredictionSpan]) -> None: ...
    def observe_profiles(self, reports: Sequence[ProfileReport]) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class Queued:
    """What ingestion handed drift and drift has not merged (or passed on) yet: sampled spans and sent profiles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: list[DriftSample] = []
        self._profiles: list[ProfileReport] = []

    def add(self, samples: Sequence[DriftSample], profiles: Sequence[ProfileReport] = ()) -> bool:
        """Queue them; whether :data:`MAX_PENDING` spans now wait (the caller then passes them on at once)."""
        with self._lock:
            self._samples.extend(samples)
            self._profiles.extend(profiles)
            return len(self._samples) >= MAX_PENDING

    def take(self) -> tuple[list[DriftSample], list[ProfileReport]]:
        """Everything queued, leaving the queue empty."""
        with self._lock:
            taken = self._samples, self._profiles
            self._samples, self._profiles = [], []
        return taken


class DriftFeeder:
    """Feeds drift on a thread of the server's process."""

    def __init__(self, store: DriftStore, *, interval_s: float = INTERVAL_S) -> None:
        self.store = store
        self._queued = Queued()
        self._feeding = threading.Lock()
        self._stop = threading.Event()
        self._interval_s = interval_s
        # numpy and DataSketches load now, as the server starts, not inside the first requests' time.
        profile_values([0.0, 1.0])
        profile_values(["a"])
        self._thread = threading.Thread(target=self._loop, name="aither-drift", daemon=True)
        self._thread.start()

    def observe(self, spans: Sequence[PredictionSpan]) -> None:
        """Queue stored prediction spans for the sketches (the ingest hook). Never raises."""
        self.queue(drift_samples(spans))

    def queue(self, samples: Sequence[DriftSample], profiles: Sequence[ProfileReport] = ()) -> None:
        """Queue what drift reads of stored spans, and profiles an SDK sent; fed within :data:`INTERVAL_S`.
        Never raises."""
        if self._queued.add(samples, profiles):
            self.flush()

    def observe_profiles(self, reports: Sequence[ProfileReport]) -> None:
        """Queue the profiles an SDK sent (``ingest.metrics.ProfileReport``). Never raises."""
        self.queue((), reports)

    def flush(self) -> None:
        """Merge every queued span and profile into the sketches now (queries call this first). Never raises."""
        with self._feeding:
            taken, profiles = self._queued.take()
            if taken:
                observe(self.store, taken)
            if profiles:
                merge_reported(self.store, profiles)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()


def merge_reported(store: DriftStore, reports: Sequence[ProfileReport]) -> None:
    """``store.add_reported``, logged instead of raised: the aggregates of their request are stored already."""
    try:
        store.add_reported(reports)
    except Exception:
        logger.warning("aither-server: %d profiles sent by SDKs not merged into drift", len(reports), exc_info=True)
