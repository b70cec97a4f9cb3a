"""The background exporter: the queue, the worker thread, flush and close, fork handling, and the counters
behind ``aither.stats()``.

The parts it puts together, each in its module:

- :mod:`._admission`: which predictions enter the queue (the keep-every policy under overload) and which
  labels follow them;
- :mod:`._delivery`: one payload to one endpoint, with retries, backoff and pacing, over :mod:`._transport`;
- :mod:`._metrics_report`: the per-model aggregates to ``/v1/metrics``;
- :mod:`._gil_lending`: busy callers lending the worker the GIL.

The calling thread only runs :meth:`BatchExporter.admit`, :meth:`~BatchExporter.skip` and
:meth:`~BatchExporter.submit`: a lock, a few integer updates and a deque append. Everything else runs on the
worker thread, or on the thread that calls ``flush``/``close`` when no worker runs (interpreter exit must not
start a thread).

Under the GIL the worker shares one core's worth of Python with the caller, and each blocking call it makes
hands the GIL to a CPU-bound caller for up to the switch interval (5 ms). So the worker makes few of them:
a send drains everything queued in one encoding pass and one request (split only at ``max_batch_bytes``),
and it wakes when ``batch_size`` records wait, when the queue passes a quarter of its bound, or every
``flush_interval``, whichever comes first. It encodes in slices of :data:`SLICE_SPANS` spans, and gives a
starving caller the GIL back between them.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .._config import Settings
from .._records import ModelIdentity, SpanRecord
from .._sketches import ProfileSketches
from .._stats import ExporterStats, stats_dict
from .._version import __version__
from ._admission import Admission
from ._delivery import OK, Delivery
from ._gil_lending import GilLending, lending_wanted
from ._metrics_report import MetricsReport
from ._span_encoder import SpanEncoder

if TYPE_CHECKING:
    from .._privacy import Privacy

__all__ = ["SLICE_SPANS", "BatchExporter"]

logger = logging.getLogger("aither")

#: Spans encoded between two looks at whether a waiting caller should have the GIL back.
SLICE_SPANS = 2

_monotonic = time.monotonic
_getpid = os.getpid
_live_exporters: weakref.WeakSet[BatchExporter] = weakref.WeakSet()


class BatchExporter:
    """Queues records and delivers them to ``/v1/traces``; reports per-model aggregates to ``/v1/metrics``."""

    def __init__(
        self,
        settings: Settings,
        resource: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        start_worker: bool = True,
        privacy: Privacy | None = None,
    ) -> None:
        """``clock`` paces retries and sends (injectable for tests); with ``start_worker=False`` no thread is
        started and ``flush``/``close`` deliver on the caller's thread (tests that drive the exporter by hand)."""
        self._settings = settings
        self._start_worker_thread = start_worker
        #: What of each span's sample may leave the process (docs/privacy.md), applied as spans are encoded.
        self._privacy = privacy
        self._base_resource = {k: v for k, v in resource.items() if k != "service.instance.id"}
        self._clock = clock
        headers = {"User-Agent": f"aither-python/{__version__}", "Content-Type": "application/x-protobuf"}
        if settings.api_key and settings.send_api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        headers.update(settings.headers)
        self._headers = headers
        self._reset_state()
        _live_exporters.add(self)

    # ------------------------------------------------------------------ state (also rebuilt after fork)

    def _reset_state(self) -> None:
        import uuid

        settings = self._settings
        self._pid = os.getpid()
        self.instance_id = str(uuid.uuid4())
        resource = {**self._base_resource, "service.instance.id": self.instance_id}
        #: Guards the queue, the admission policy and the counters; never held across a blocking call.
        self._lock = threading.Lock()
        self._progress = threading.Condition(threading.Lock())
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._lending = GilLending(lending_wanted(settings.gil_lending))
        self._admission = Admission(settings.max_queue_size, settings.max_queue_bytes)
        self._delivery = Delivery(settings, self._headers, clock=self._clock, stop=self._stop, lending=self._lending)
        #: Profile-only models' column sketches: updated as their spans are encoded, sent with the aggregates.
        self.sketches = ProfileSketches(self._privacy)
        self._report = MetricsReport(
            resource, self._delivery, self._lock, interval=settings.flush_interval, clock=self._clock,
            sketches=self.sketches,
        )  # fmt: skip
        self._span_encoder = SpanEncoder(resource, settings.max_attribute_bytes, self._privacy, self.sketches)
        self._queue: collections.deque[SpanRecord] = collections.deque()
        self._queued_bytes = 0
        self._in_flight = 0
        #: Bumped when ``close`` gives up on the records in flight: their late outcome is then not counted again.
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._flush_requests = 0
        self._flushes_served = 0
        # Wake the worker early: at batch_size records, or at a quarter of the queue's bound.
        self._wake_at = max(1, min(settings.batch_size, settings.max_queue_size // 4))
        self._max_queue_size = settings.max_queue_size
        self._max_queue_bytes = settings.max_queue_bytes
        self.queued = 0
        self.exported = 0
        self.dropped: collections.Counter[str] = collections.Counter()

    def _after_fork(self) -> None:
        """In a child process: forget the parent's queue, thread and connections (they are not ours)."""
        self._reset_state()

    def _check_pid(self) -> None:
        if self._pid != os.getpid():  # a fork that skipped os.register_at_fork (uWSGI forks from C)
            self._after_fork()

    # ------------------------------------------------------------------ caller thread

    @property
    def keep_every(self) -> int:
        """1 while every prediction is kept; else 1 in ``keep_every`` is (see :mod:`._admission`)."""
        return self._admission.keep_every

    @keep_every.setter
    def keep_every(self, value: int) -> None:  # tests set the overload by hand
        self._admission.keep_every = value

    def admit(self) -> int:
        """Whether to record the next prediction: 0 to skip it, else ``k`` when it stands for ``k`` calls.

        Normally 1. Under overload the worker keeps 1 prediction in ``k``, uniformly, and a skipped one costs the
        caller less than a kept one (no sample is taken).
        """
        return self._admission.admit()

    def skip(self, trace_id: int, model: ModelIdentity) -> None:
        """Count a prediction that :meth:`admit` left out."""
        with self._lock:
            self.queued += 1
            self.dropped["sampled"] += 1
            self._report.drops[(model, "sampled")] += 1
            self._admission.remember_dropped(trace_id)
        now = _monotonic()
        if now >= self._lending.ready_at:
            self._lending.lend(now)

    def submit(self, record: SpanRecord) -> None:
        """Queue a record without blocking; drop and count it when the queue is full or closed."""
        if self._pid != _getpid():  # a fork that skipped os.register_at_fork (uWSGI forks from C)
            self._after_fork()
        admission = self._admission
        with self._lock:
            self.queued += 1
            if self._closed:
                self._drop_one(record, "shutdown")
                return
            if record.has_label and admission.was_dropped(record.trace_id):
                # Its prediction never reached the backend: the label would only show there as unjoined.
                self.dropped["prediction_not_sent"] += 1
                return
            queue = self._queue
            held = len(queue) + self._in_flight
            size = self._queued_bytes + record.nbytes
            if held >= self._max_queue_size or size > self._max_queue_bytes:
                self._drop_one(record, "queue_full")
                full = True
            else:
                queue.append(record)
                self._queued_bytes = size
                held += 1
                full = False
                if held >= admission.raise_at or size >= admission.raise_at_bytes:
                    admission.passed_mark(held, size)
                wake = len(queue) == self._wake_at
        if full:
            self._delivery.log.dropped(
                "queue_full", "aither: export queue is full; dropping new records (see aither.stats())"
            )
            return
        if self._thread is None:
            if self._start_worker_thread:
                self._start_worker()
            return
        lending = self._lending
        now = _monotonic()
        if wake:
            self._wakeup.set()
            lending.woken(now)
        if now >= lending.ready_at:  # a busy worker has not had the GIL for a while: lend it
            lending.lend(now)

    def _drop_one(self, record: SpanRecord, reason: str) -> None:
        """Count one record dropped before it was queued (holding the lock)."""
        self.dropped[reason] += 1
        if record.model is not None:
            self._report.drops[(record.model, reason)] += 1
            self._admission.remember_dropped(record.trace_id)

    def _start_worker(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="aither-exporter", daemon=True)
            self._thread = thread
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down: flush()/close() export on their own thread
            with self._lock:
                self._thread = None
        else:
            self._lending.starting(_monotonic())

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        lending = self._lending
        lending.worker_started()
        while True:
            wait = self._until_next_work()
            lending.idle(_monotonic() + wait)
            self._wakeup.wait(wait)
            lending.busy()
            self._wakeup.clear()
            try:
                self._cycle()
            except Exception:  # never let the worker die: a dead worker would silently drop everything
                logger.exception("aither: export worker error")
            if self._stop.is_set():
                with self._lock:
                    if not self._queue:
                        return

    def _until_next_work(self) -> float:
        now = self._clock()
        wait = self._report.next_at - now
        pacer = self._delivery.pacer
        if pacer.paused():
            wait = max(wait, pacer.paused_until - now)
        return min(max(wait, 0.001), self._settings.flush_interval * 4)

    def _cycle(self, flush_deadline: float | None = None) -> None:
        """Send what is queued (unless paced after failures), then the aggregates when they are due; a flush or
        close forces both. Keeps sending while the queue refills faster than the wake-up threshold."""
        with self._lock:
            served = self._flush_requests
            forced = served != self._flushes_served or self._stop.is_set()
        pacer = self._delivery.pacer
        # One pass takes everything queued so far, so it covers every record a pending flush waits for.
        if forced or not pacer.paused():
            self._send_queued(flush_deadline)
        if self._report.due(forced) and (forced or not pacer.paused()):
            self._report.send(flush_deadline)
        with self._lock:
            self._flushes_served = max(self._flushes_served, served)
        with self._progress:
            self._progress.notify_all()
        while not pacer.paused():
            with self._lock:
                if len(self._queue) < self._wake_at:
                    break
            self._send_queued(flush_deadline)
            if self._report.due(False):
                self._report.send(flush_deadline)

    def _send_queued(self, flush_deadline: float | None) -> bool:
        """Encode everything queued (one pass) and send it, split at ``max_batch_bytes``. False if nothing was."""
        with self._lock:
            if not self._queue:
                self._admission.sent(self._in_flight, self._queued_bytes)
                return False
            records = list(self._queue)
            self._queue.clear()
            self._in_flight += len(records)
            generation = self._generation
        encoder = self._span_encoder
        pause = self._lending.pause
        limit = self._settings.max_batch_bytes
        spans: list[bytes] = []
        predictions: list[tuple[ModelIdentity, int]] = []
        size = 0
        released = 0
        for index, record in enumerate(records):
            if index % SLICE_SPANS == 0:
                pause()
            try:
                span = encoder.encode(record)
            except Exception as exc:
                logger.debug("aither: could not encode %r", record, exc_info=True)
                self._settle(generation, 1, "encoding_error", [(record.model, record.trace_id)] if record.model else [])
                self._delivery.record_error(f"encoding failed: {type(exc).__name__}")
                released += record.nbytes
                continue
            if spans and size + len(span) + 8 > limit:
                self._release_bytes(released)
                released = 0
                self._deliver(spans, predictions, generation, flush_deadline)
                spans, predictions, size = [], [], 0
            spans.append(span)
            size += len(span) + 8
            released += record.nbytes
            if record.model is not None:
                predictions.append((record.model, record.trace_id))
        del records
        self._release_bytes(released)
        if spans:
            self._deliver(spans, predictions, generation, flush_deadline)
        with self._lock:
            self._admission.sent(len(self._queue) + self._in_flight, self._queued_bytes)
        return True

    def _release_bytes(self, count: int) -> None:
        if count:
            with self._lock:
                self._queued_bytes -= count

    def _deliver(
        self, spans: list[bytes], predictions: list[tuple[ModelIdentity, int]], generation: int, deadline: float | None
    ) -> None:
        """One request's worth of spans: encode the request, post it, count its outcome."""
        pause = self._lending.pause
        pause()
        endpoint = self._delivery.traces
        payload = endpoint.encode(self._span_encoder.request(spans), pause)
        outcome = self._delivery.post(endpoint, payload, deadline, "spans")
        self._settle(generation, len(spans), None if outcome == OK else outcome, predictions)

    def _settle(
        self, generation: int, count: int, dropped: str | None, predictions: list[tuple[ModelIdentity, int]]
    ) -> None:
        """Count the outcome of records that were in flight, unless ``close`` already counted them."""
        with self._lock:
            if generation != self._generation:
                return
            self._in_flight -= count
            if dropped is None:
                self.exported += count
            else:
                self.dropped[dropped] += count
                for model, trace_id in predictions:
                    self._report.drops[(model, dropped)] += 1
                    self._admission.remember_dropped(trace_id)
        with self._progress:
            self._progress.notify_all()

    # ------------------------------------------------------------------ flush / close / stats

    def _settled_count(self) -> int:
        return self.exported + sum(self.dropped.values())

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is delivered or dropped. True when it was all delivered."""
        self._check_pid()
        deadline = None if timeout is None else self._clock() + timeout
        with self._lock:
            target = self.queued
            dropped_before = sum(self.dropped.values())
            self._flush_requests += 1
            request = self._flush_requests
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._cycle_here(deadline)
        else:
            self._wakeup.set()
            with self._progress:
                while True:
                    with self._lock:
                        done = self._settled_count() >= target and self._flushes_served >= request
                    remaining = None if deadline is None else deadline - self._clock()
                    if done or (remaining is not None and remaining <= 0):
                        break
                    self._progress.wait(0.05 if remaining is None else min(remaining, 0.05))
        with self._lock:
            return self._settled_count() >= target and sum(self.dropped.values()) == dropped_before

    def _cycle_here(self, deadline: float | None) -> None:
        """Export on the calling thread (no worker is running, e.g. at interpreter exit)."""
        try:
            self._cycle(deadline)
        except Exception:
            logger.exception("aither: export error during flush")

    def close(self, timeout: float | None = 5.0, *, reason: str = "shutdown") -> bool:
        """Flush within ``timeout`` seconds, then stop the worker. What is left is dropped and counted under
        ``reason`` (``"exit"`` at interpreter exit), and reported once on the ``aither`` logger."""
        self._check_pid()
        with self._lock:
            if self._closed:
                return self.queued == self._settled_count()
            deadline = None if timeout is None else self._clock() + timeout
            self._delivery.closing(deadline, reason)
            target = self.queued
            dropped_before = sum(self.dropped.values())
            lost_before = self.dropped[reason]
            self._closed = True
        self._stop.set()
        self._wakeup.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(None if deadline is None else max(0.0, deadline - self._clock()))
        if thread is None or not thread.is_alive():
            self._cycle_here(deadline)
        with self._lock:
            left = len(self._queue) + self._in_flight
            if left:
                # Records still queued, and those the worker is still trying to send: their fate is sealed now.
                for record in self._queue:
                    if record.model is not None:
                        self._report.drops[(record.model, reason)] += 1
                self._queue.clear()
                self._queued_bytes = 0
                self._in_flight = 0
                self._generation += 1
                self.dropped[reason] += left
            delivered = self._settled_count() >= target and sum(self.dropped.values()) == dropped_before
            # Left in the queue or in flight, and cut short by the deadline on the worker: one line for all.
            lost = self.dropped[reason] - lost_before
        if lost:
            logger.warning(
                "aither: %d record(s) were not delivered before the %s deadline (%s s) and are dropped%s",
                lost,
                "exit" if reason == "exit" else "close",
                timeout,
                f"; last error: {last_error}" if (last_error := self._delivery.last_error) else "",
            )
        if thread is None or not thread.is_alive():
            self._delivery.close()
        return delivered

    def stats(self) -> ExporterStats:
        retries, export_errors, rejected_spans, last_error = self._delivery.counters()
        with self._lock:
            stats = stats_dict(
                queued=self.queued,
                exported=self.exported,
                dropped=self.dropped,
                retries=retries,
                export_errors=export_errors,
                rejected_spans=rejected_spans,
                truncated_attributes=self._span_encoder.truncated_attributes,
                last_error=last_error,
            )
            stats["keep_every"] = self._admission.keep_every
            stats["metric_reports"] = self._report.reports
            stats["metric_reports_skipped"] = self._report.skipped
            stats["profiled_rows"] = self.sketches.rows
            stats["unprofiled_batches"] = self.sketches.unprofiled
        return stats


def _reinit_after_fork() -> None:
    for exporter in list(_live_exporters):
        exporter._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
