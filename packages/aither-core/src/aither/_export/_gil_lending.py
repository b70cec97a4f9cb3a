"""Lending the worker the GIL from a CPU-bound calling thread.

A thread that wants the GIL back (the exporter's worker, returning from a socket call or a wake-up) only asks
the holder to drop it once it has waited a whole switch interval without being signalled. A caller running
numpy (scikit-learn's ``predict``) releases the GIL for a moment several times per call: each release signals
the waiting worker, and the caller takes the GIL back before the woken worker is scheduled. The worker then
waits for seconds while the queue overflows, and every release costs the caller a futex wake-up besides.

So the callers lend the worker their turn. A worker that is late to wake (its timer passed, or a caller woke
it, :data:`LATE` seconds ago and it has not run) is starving: a caller sleeps :data:`LEND` seconds, which
gives the GIL up long enough for the waiting worker to take it. From then on, for :data:`STARVING_FOR`
seconds after the last late wake, the caller that wakes the worker lends at once, and callers also lend while
the worker is busy (sending) and has not run for :data:`GRACE` seconds: the shorter a starving worker waits
for the GIL, the fewer of the caller's GIL releases signal it (each is a futex wake-up paid by both).

The worker's CPU clock tells whether it ran: when it did not, it was waiting on the network, not on the GIL,
and the callers back off (doubling, up to :data:`MAX_BACKOFF`), so a slow backend costs a starving process a
few short sleeps per request and never a wait on the network. A process whose worker wakes on time never
lends.

The check on the calling thread is one clock read and one comparison per recorded prediction.

Lent, the worker never keeps the GIL long against the callers: it encodes and compresses in slices, and
between two slices that took more than :data:`SLICE` seconds of a starving process it gives the GIL back
(:meth:`GilLending.pause`), so a lending caller waits for one slice, not a whole switch interval.

Lending is only on where it helps (:func:`lending_wanted`): not on a free-threaded build (no GIL to lend: a
caller would only sleep), not under gevent or eventlet (threads are greenlets there, and a sleep yields to the
hub), and never on the thread of a running asyncio event loop (a sleep there stalls every request it serves).
``init(gil_lending=False)`` or ``AITHER_GIL_LENDING=0`` turns it off.
"""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["GRACE", "LATE", "LEND", "MAX_BACKOFF", "SLICE", "STARVING_FOR", "GilLending", "lending_wanted"]

#: How late a worker may be to wake before a caller lends it the GIL (and takes it for starving).
LATE = 0.002
#: While starving, how long a busy worker may go without running before a caller lends it the GIL.
GRACE = 0.0001
#: How long after its last late wake the worker is still taken for starving.
STARVING_FOR = 10.0
#: How long a lending caller sleeps: enough for the woken worker to be scheduled and take the GIL.
LEND = 0.00005
#: The longest a caller waits before lending again to a worker that did not run the last time.
MAX_BACKOFF = 0.032
#: The worker's CPU time between two chances for a starving caller to take the GIL back.
SLICE = 0.00015
_INFINITY = float("inf")
_BUILTIN = type(len)


def lending_wanted(switch: bool) -> bool:
    """Whether the callers of this process should lend the worker the GIL: ``switch`` (the ``gil_lending``
    setting), a GIL to lend, and real threads."""
    if not switch:
        return False
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_gil_enabled is not None and not is_gil_enabled():
        return False  # free-threaded: the worker runs beside the callers
    return not _green_threads()


def _green_threads() -> bool:
    """Whether gevent or eventlet monkey-patched ``threading`` (checked, never imported)."""
    gevent = sys.modules.get("gevent.monkey")
    if gevent is not None:
        try:
            if gevent.is_module_patched("threading"):
                return True
        except Exception:  # a gevent without the function: take the sleep's module as the witness below
            pass
    eventlet = sys.modules.get("eventlet.patcher")
    if eventlet is not None:
        try:
            if eventlet.is_monkey_patched("thread"):
                return True
        except Exception:
            pass
    # Both replace time.sleep by their hub's, a Python function: a lend would then only switch greenlets.
    return not isinstance(time.sleep, _BUILTIN)


def _on_event_loop() -> bool:
    """Whether this thread runs an asyncio event loop now (asyncio is looked up, never imported)."""
    events = sys.modules.get("asyncio.events")
    return events is not None and events._get_running_loop() is not None


class GilLending:
    """Shared by the worker (which says when it is busy) and the callers (which lend it the GIL).

    Disabled (``enabled=False``), ``ready_at`` stays infinite: the callers never lend, the worker never pauses.
    """

    __slots__ = (
        "_backoff",
        "_clock_id",
        "_idle",
        "_slice_start",
        "_starving_until",
        "_steps",
        "enabled",
        "lends",
        "misses",
        "pauses",
        "ready_at",
    )

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        #: When a caller should next lend the worker the GIL (monotonic seconds); infinity while not needed.
        self.ready_at = _INFINITY
        self._clock_id: int | None = None
        self._backoff = GRACE
        #: Bumped by the worker at each change of state, so a caller never overwrites a newer ``ready_at``.
        self._steps = 0
        self._idle = True
        self._starving_until = 0.0
        self._slice_start = 0.0
        self.lends = 0
        self.misses = 0
        self.pauses = 0

    # ---------------------------------------------------------------- worker thread

    def worker_started(self) -> None:
        """On the worker thread: find its CPU clock, which tells a lender whether the worker ran."""
        if not self.enabled:
            return
        try:
            self._clock_id = time.pthread_getcpuclockid(threading.get_ident())
        except (AttributeError, OSError):  # not on every platform
            self._clock_id = None

    def starting(self, now: float) -> None:
        """(The thread that started the worker.) A new worker wants the GIL to reach its first wait: a caller
        that never gives the GIL up would otherwise never see it late."""
        if self.enabled:
            self._idle = True
            self.ready_at = now + LATE

    def busy(self) -> None:
        """The worker woke up and has work: while starving, lend it the GIL when it has not run for a while."""
        if not self.enabled:
            return
        self._steps += 1
        self._idle = False
        self._backoff = GRACE
        now = time.monotonic()
        self._slice_start = time.thread_time()
        self.ready_at = now + GRACE if now < self._starving_until else _INFINITY

    def pause(self) -> None:
        """Between two slices of the worker's work: when the callers are starving and the worker has run for
        :data:`SLICE` since it last gave the GIL up, give it to them for a moment. They lend it back soon."""
        if not self.enabled:
            return
        now = time.monotonic()  # read first: the thread's CPU clock is a system call, this is not
        if now >= self._starving_until or time.thread_time() - self._slice_start < SLICE:
            return
        self._steps += 1
        self._backoff = GRACE
        self.ready_at = now + LEND + GRACE
        self.pauses += 1
        time.sleep(LEND)
        self._slice_start = time.thread_time()

    def resumed(self) -> None:
        """The worker is back from a blocking call (a request): the GIL it has now is a new slice."""
        if self.enabled:
            self._slice_start = time.thread_time()

    def idle(self, until: float) -> None:
        """The worker waits for work, or at most until ``until`` (monotonic), when it will want the GIL again."""
        if not self.enabled:
            return
        self._steps += 1
        self._idle = True
        self._backoff = GRACE
        # A starving worker is lent the GIL as soon as it wants it; otherwise only when it is late.
        self.ready_at = until if time.monotonic() < self._starving_until else until + LATE

    # ---------------------------------------------------------------- calling threads

    def woken(self, now: float) -> None:
        """A caller woke the worker: if it was idle, it wants the GIL from now on."""
        if not self.enabled:
            return
        ready = now if now < self._starving_until else now + LATE
        if self._idle and ready < self.ready_at:
            self.ready_at = ready

    def lend(self, now: float) -> None:
        """Give the worker the GIL for a moment (called when ``now >= ready_at``)."""
        steps = self._steps
        if _on_event_loop():  # a sleep here would stall every task of the loop: let another caller lend
            self.ready_at = now + MAX_BACKOFF
            return
        if _green_threads():  # monkey-patched after init: threads became greenlets
            self.enabled = False
            self.ready_at = _INFINITY
            return
        if self._idle:  # late to wake: the worker is starving
            self._starving_until = now + STARVING_FOR
        self.ready_at = _INFINITY  # one lender at a time
        clock_id = self._clock_id
        try:
            before = time.clock_gettime_ns(clock_id) if clock_id is not None else 0
            time.sleep(LEND)
            ran = clock_id is not None and time.clock_gettime_ns(clock_id) != before
        except OSError:  # the worker thread is gone
            self._clock_id = None
            ran = False
        self.lends += 1
        if self._steps != steps:
            return  # the worker ran and went idle or woke again: it has set ready_at itself
        if ran:
            self._backoff = GRACE
        else:
            self.misses += 1
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        self.ready_at = time.monotonic() + self._backoff
