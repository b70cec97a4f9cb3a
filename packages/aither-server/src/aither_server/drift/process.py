"""Drift's sketches fed in a process of their own, so their work runs beside the requests, not between them.

The ingest hook queues what drift reads of each stored span (``DriftSample``: the model, the start, the
``ml.features`` text and the parsed prediction) in a list; a sender thread passes the list to the drift
process through a pipe about every :data:`SEND_INTERVAL_S` (pickling is C and the write releases the
interpreter lock, so the requests' thread pays a list extend). The process merges what it received into the
hours' sketches about once a second (``_drift_sketches.feed``, its own connection to the same database), as
the thread feeder would. A query's :meth:`DriftProcess.flush` sends what is queued and waits until the process
has merged it, so it sees every span stored before it.

Drift never breaks ingestion: if the process cannot start or dies, a warning is logged and this process feeds
drift on a thread again (``DriftFeeder``); samples in the pipe at that moment are lost to drift only (the
spans are stored), as a thread feeder loses its queue when the server dies.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from aither_server.drift.feeder import INTERVAL_S, DriftFeeder, Queued, merge_reported
from aither_server.drift.sketches import DriftSample, drift_samples, observe
from aither_server.drift.store import DriftStore
from aither_server.model.records import PredictionSpan
from aither_server.store.engine import sqlalchemy_engine

if TYPE_CHECKING:
    from aither_server.ingest.metrics import ProfileReport

__all__ = ["SEND_INTERVAL_S", "DriftProcess"]

logger = logging.getLogger("aither_server")

#: How often the sender thread passes what is queued to the drift process.
SEND_INTERVAL_S = 0.05
#: How long a flush (a drift query) waits for the process to merge what it was sent.
_FLUSH_TIMEOUT_S = 120.0


class DriftProcess:
    """Feeds drift in a child process on the same database (``url``, SQLAlchemy's spelling)."""

    def __init__(self, store: DriftStore, url: str, *, interval_s: float = INTERVAL_S) -> None:
        self.store = store
        self._queued = Queued()
        # Held to talk to the process: one message, or a flush and its answer, at a time.
        self._pipe_lock = threading.Lock()
        self._fallback: DriftFeeder | None = None
        self._stop = threading.Event()
        # spawn, not fork: the server's threads and database connections must not be copied into the child.
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(url, child_end, interval_s), name="aither-drift", daemon=True
        )
        try:
            with _stop_signals_ignored():
                self._process.start()
        except Exception as exc:  # no process to start (a sandbox, too many processes): the thread then
            self._broken(exc)
        finally:
            child_end.close()
        self._sender = threading.Thread(target=self._send_loop, name="aither-drift-sender", daemon=True)
        self._sender.start()

    def observe(self, spans: Sequence[PredictionSpan]) -> None:
        """Queue stored prediction spans for the sketches (the ingest hook). Never raises."""
        samples = drift_samples(spans)
        if samples:
            self._queue(samples, ())

    def observe_profiles(self, reports: Sequence[ProfileReport]) -> None:
        """Queue the profiles an SDK sent, for the process to merge (``DriftStore.add_reported``). Never raises."""
        self._queue((), reports)

    def _queue(self, samples: Sequence[DriftSample], profiles: Sequence[ProfileReport]) -> None:
        fallback = self._fallback
        if fallback is not None:
            fallback.queue(samples, profiles)
        elif self._queued.add(samples, profiles):
            # Back pressure: this request waits for the pipe, instead of memory growing without bound.
            self._send()

    def flush(self) -> None:
        """Have every queued span merged into the sketches now (queries call this first). Never raises."""
        with self._pipe_lock:
            if self._fallback is None and self._send_locked():
                try:
                    self._pipe.send(("flush",))
                    if not self._pipe.poll(_FLUSH_TIMEOUT_S):
                        raise TimeoutError(f"no answer in {_FLUSH_TIMEOUT_S:.0f} s")
                    self._pipe.recv()
                except Exception as exc:
                    self._broken(exc)
        if self._fallback is not None:
            self._fallback.flush()

    def close(self) -> None:
        """Merge what is queued, then stop the process (and the fallback thread, if it runs)."""
        self._stop.set()
        self._sender.join(timeout=30)
        with self._pipe_lock:
            if self._fallback is None and self._send_locked():
                try:
                    self._pipe.send(("close",))
                    if self._pipe.poll(_FLUSH_TIMEOUT_S):
                        self._pipe.recv()
                except Exception as exc:
                    self._broken(exc)
            self._pipe.close()
        if self._process.pid is not None:
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
        if self._fallback is not None:
            self._fallback.close()

    def _send_loop(self) -> None:
        while not self._stop.wait(SEND_INTERVAL_S):
            if self._fallback is not None:
                return
            self._send()

    def _send(self) -> None:
        with self._pipe_lock:
            self._send_locked()

    def _send_locked(self) -> bool:
        """Pass the queue to the process (called with the pipe's lock); whether the process is still there."""
        if self._fallback is not None:
            return False
        taken, profiles = self._queued.take()
        try:
            if taken:
                self._pipe.send(("samples", taken))
            if profiles:
                self._pipe.send(("profiles", profiles))
            return True
        except Exception as exc:
            self._broken(exc, taken, profiles)
            return False

    def _broken(
        self, exc: BaseException, unsent: list[DriftSample] | None = None, profiles: list[ProfileReport] | None = None
    ) -> None:
        """The process is gone: log it once, and feed on a thread of this process from now on."""
        if self._fallback is not None:
            return
        logger.warning("aither-server: the drift process stopped (%s); drift is fed in this process", exc)
        fallback = DriftFeeder(self.store)
        queued, queued_profiles = self._queued.take()
        fallback.queue([*(unsent or []), *queued], [*(profiles or []), *queued_profiles])
        self._fallback = fallback


@contextlib.contextmanager
def _stop_signals_ignored() -> Iterator[None]:
    """Ctrl-C reaches the whole process group, and a service manager's SIGTERM may too; the drift process must
    not die of them, but be stopped by its server (``close``, after the last merge) or by the end of its pipe
    when the server dies. A process starts with the signals its parent ignores ignored, and Python then leaves
    SIGINT so; so they are ignored here while the process starts (milliseconds), before it runs any code."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    saved = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _serve(url: str, pipe: Connection, interval_s: float) -> None:
    """The drift process: merge what arrives about every ``interval_s``, and at once on a flush or close."""
    store = DriftStore(sqlalchemy_engine(url))
    received: list[DriftSample] = []
    profiles: list[ProfileReport] = []
    next_feed = time.monotonic() + interval_s
    try:
        while True:
            kind = None
            if pipe.poll(max(0.0, next_feed - time.monotonic())):
                # Unpickled off the pipe: ("samples", [DriftSample]), ("profiles", [ProfileReport]), ("flush",).
                message: tuple[Any, ...] = pipe.recv()
                kind = message[0]
                if kind == "samples":
                    received.extend(message[1])
                elif kind == "profiles":
                    profiles.extend(message[1])
            # Merged on time even while samples keep arriving, and at once when a query or the close asks.
            if kind in ("flush", "close") or time.monotonic() >= next_feed:
                if received:
                    observe(store, received)
                    received = []
                if profiles:
                    merge_reported(store, profiles)
                    profiles = []
                next_feed = time.monotonic() + interval_s
            if kind in ("flush", "close"):
                pipe.send(("done",))
                if kind == "close":
                    return
    except (EOFError, OSError):  # the server went away: what it sent is merged before this process ends
        if received:
            observe(store, received)
        if profiles:
            merge_reported(store, profiles)
    finally:
        store.engine.dispose()
