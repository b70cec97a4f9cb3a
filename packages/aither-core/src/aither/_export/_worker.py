"""The background exporter: a bounded queue with an overload policy, adaptive batches, delivery with retries,
per-model aggregates every interval, and the counters behind ``aither.stats()``.

The calling thread only runs :meth:`BatchExporter.admit`, :meth:`~BatchExporter.skip` and
:meth:`~BatchExporter.submit`: a lock, a few integer updates and a deque append. Everything else runs on the
worker thread, or on the thread that calls ``flush``/``close`` when no worker runs (interpreter exit must not
start a thread).

Under the GIL the worker shares one core's worth of Python with the caller, and each blocking call it makes
hands the GIL to a CPU-bound caller for up to the switch interval (5 ms). So the worker makes few of them:
a send drains everything queued in one encoding pass and one request (split only at ``max_batch_bytes``),
and it wakes when ``batch_size`` records wait, when the queue passes a quarter of its bound, or every
``flush_interval``, whichever comes first.
"""

from __future__ import annotations

import collections
import gzip
import itertools
import logging
import os
import random
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping

from .. import _aggregates
from .._config import Settings
from .._records import ModelIdentity, SpanRecord
from .._stats import ExporterStats, stats_dict
from .._version import __version__
from ._delivery_log import DeliveryLog, error_message_of
from ._gil_lending import GilLending
from ._metric_encoder import MetricEncoder
from ._span_encoder import SpanEncoder
from ._transport import TIMED_OUT, HttpTransport, Response, TransportError, parse_retry_after
from ._wire import read_partial_success

__all__ = ["BatchExporter", "RETRYABLE_STATUSES", "SendPacer", "parse_retry_after"]

logger = logging.getLogger("aither")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Trace ids of dropped predictions remembered, so that their labels are not sent either.
DROPPED_IDS_REMEMBERED = 65_536
#: The queue's fill (of its record or byte bound) above which fewer spans are kept, and below which more.
_OVERLOAD_FILL = 0.5
_RECOVERED_FILL = 0.125
#: The most spans one kept span may stand for.
_MAX_KEEP_EVERY = 1 << 20

_monotonic = time.monotonic
_getpid = os.getpid
_live_exporters: weakref.WeakSet[BatchExporter] = weakref.WeakSet()
_GZIP = {"Content-Encoding": "gzip"}


class SendPacer:
    """Paces sends after failures that retrying cannot fix (a 500, a 413, a refused key).

    Without it a busy process sends a small batch at every wake-up to a backend that refuses all of them.
    After such a failure the next send waits ``flush_interval``, doubling with each further failure up to
    ``max_backoff``; one success ends the pause. ``clock`` is injectable for tests.
    """

    def __init__(self, flush_interval: float, max_backoff: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._base = flush_interval
        self._max = max(max_backoff, flush_interval)
        self._clock = clock
        self.failures = 0
        self.paused_until = 0.0

    def failed(self) -> None:
        self.failures += 1
        pause = min(self._max, self._base * 2 ** min(self.failures - 1, 32))
        self.paused_until = self._clock() + pause

    def succeeded(self) -> None:
        self.failures = 0
        self.paused_until = 0.0

    def paused(self) -> bool:
        return self._clock() < self.paused_until


class _Endpoint:
    """Where one kind of payload goes: its URL (for messages), the path on the connection, whether it is gzipped."""

    __slots__ = ("gzip", "path", "transport", "url")

    def __init__(self, url: str, transport: HttpTransport, gzip: bool) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.transport = transport
        self.gzip = gzip

    def encode(self, payload: bytes) -> bytes:
        return gzip.compress(payload, compresslevel=1, mtime=0) if self.gzip else payload


class _Chunk:
    """One request's worth of spans: the payload, and who is in it (for the drop counts)."""

    __slots__ = ("count", "generation", "payload", "predictions")

    def __init__(self, payload: bytes, count: int, predictions: list[tuple[ModelIdentity, int]], generation: int):
        self.payload = payload
        self.count = count
        self.predictions = predictions
        self.generation = generation


class BatchExporter:
    """Queues records and delivers them to ``/v1/traces``; reports per-model aggregates to ``/v1/metrics``."""

    def __init__(
        self,
        settings: Settings,
        resource: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        start_worker: bool = True,
    ) -> None:
        """``clock`` paces retries and sends (injectable for tests); with ``start_worker=False`` no thread is
        started and ``flush``/``close`` deliver on the caller's thread (tests that drive the exporter by hand)."""
        self._settings = settings
        self._start_worker_thread = start_worker
        self._base_resource = {k: v for k, v in resource.items() if k != "service.instance.id"}
        self._clock = clock
        traces = urllib.parse.urlsplit(settings.traces_url)
        metrics = urllib.parse.urlsplit(settings.metrics_url)
        self._same_origin = (traces.scheme, traces.netloc) == (metrics.scheme, metrics.netloc)
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
        self._span_encoder = SpanEncoder(resource, settings.max_attribute_bytes)
        self._metric_encoder = MetricEncoder(resource)
        traces = HttpTransport(settings.traces_url, self._headers)
        metrics = traces if self._same_origin else HttpTransport(settings.metrics_url, self._headers)
        self._traces = _Endpoint(settings.traces_url, traces, settings.gzip_for(settings.traces_url))
        self._metrics = _Endpoint(settings.metrics_url, metrics, settings.gzip_for(settings.metrics_url))
        self._lock = threading.Lock()
        self._lending = GilLending()
        self._progress = threading.Condition(threading.Lock())
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._queue: collections.deque[SpanRecord] = collections.deque()
        self._queued_bytes = 0
        self._in_flight = 0
        #: Bumped when ``close`` gives up on the records in flight: their late outcome is then not counted again.
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._close_deadline: float | None = None
        self._close_reason = "shutdown"
        self._flush_requests = 0
        self._flushes_served = 0
        # Wake the worker early: at batch_size records, or at a quarter of the queue's bound.
        self._wake_at = max(1, min(settings.batch_size, settings.max_queue_size // 4))
        self._max_queue_size = settings.max_queue_size
        self._max_queue_bytes = settings.max_queue_bytes
        # The caller keeps fewer spans as the queue passes 3/4 of its bound, then 7/8, 15/16...: a worker stuck
        # in a slow request cannot lower the rate itself, and the queue must not fill meanwhile.
        self._high_water = max(1, int(settings.max_queue_size * 0.75))
        self._high_water_bytes = int(settings.max_queue_bytes * 0.75)
        self._raise_at = self._high_water
        self._raise_at_bytes = self._high_water_bytes
        self.keep_every = 1
        self._admitted = itertools.count()
        self._dropped_ids: dict[int, None] = {}
        self._model_drops: collections.Counter[tuple[ModelIdentity, str]] = collections.Counter()
        self._model_drops_reported: dict[tuple[ModelIdentity, str], int] = {}
        self._next_metrics_at = self._clock() + settings.flush_interval
        self._pacer = SendPacer(settings.flush_interval, settings.max_backoff, self._clock)
        self._log = DeliveryLog(logger)
        self.queued = 0
        self.exported = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self.retries = 0
        self.export_errors = 0
        self.rejected_spans = 0
        self.metric_reports = 0
        self.metric_reports_skipped = 0
        self._metrics_refused = False
        self.last_error: str | None = None

    def _after_fork(self) -> None:
        """In a child process: forget the parent's queue, thread and connections (they are not ours)."""
        self._reset_state()

    def _check_pid(self) -> None:
        if self._pid != os.getpid():  # a fork that skipped os.register_at_fork (uWSGI forks from C)
            self._after_fork()

    # ------------------------------------------------------------------ caller thread

    def admit(self) -> int:
        """Whether to record the next prediction: 0 to skip it, else ``k`` when it stands for ``k`` calls.

        Normally 1. Under overload the worker keeps 1 prediction in ``k``, uniformly, and a skipped one costs the
        caller less than a kept one (no sample is taken).
        """
        keep_every = self.keep_every
        if keep_every == 1:
            return 1
        return keep_every if next(self._admitted) % keep_every == 0 else 0

    def skip(self, trace_id: int, model: ModelIdentity) -> None:
        """Count a prediction that :meth:`admit` left out."""
        with self._lock:
            self.queued += 1
            self.dropped["sampled"] += 1
            self._model_drops[(model, "sampled")] += 1
            self._remember_dropped(trace_id)
        now = _monotonic()
        if now >= self._lending.ready_at:
            self._lending.lend(now)

    def submit(self, record: SpanRecord) -> None:
        """Queue a record without blocking; drop and count it when the queue is full or closed."""
        if self._pid != _getpid():  # a fork that skipped os.register_at_fork (uWSGI forks from C)
            self._after_fork()
        with self._lock:
            self.queued += 1
            if self._closed:
                self._drop_one(record, "shutdown")
                return
            if record.has_label and record.trace_id in self._dropped_ids:
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
                if (held >= self._raise_at or size >= self._raise_at_bytes) and self.keep_every < _MAX_KEEP_EVERY:
                    self._raise_keep_every(held, size)
                wake = len(queue) == self._wake_at
        if full:
            self._log.dropped("queue_full", "aither: export queue is full; dropping new records (see aither.stats())")
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
            self._model_drops[(record.model, reason)] += 1
            self._remember_dropped(record.trace_id)

    def _remember_dropped(self, trace_id: int) -> None:
        ids = self._dropped_ids
        ids[trace_id] = None
        if len(ids) > DROPPED_IDS_REMEMBERED:
            del ids[next(iter(ids))]

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
        wait = self._next_metrics_at - now
        if self._pacer.paused():
            wait = max(wait, self._pacer.paused_until - now)
        return min(max(wait, 0.001), self._settings.flush_interval * 4)

    def _cycle(self, flush_deadline: float | None = None) -> None:
        """Send what is queued (unless paced after failures), then the aggregates when they are due; a flush or
        close forces both. Keeps sending while the queue refills faster than the wake-up threshold."""
        with self._lock:
            served = self._flush_requests
            forced = served != self._flushes_served or self._stop.is_set()
        # One pass takes everything queued so far, so it covers every record a pending flush waits for.
        if forced or not self._pacer.paused():
            self._send_queued(flush_deadline)
        if forced or self._clock() >= self._next_metrics_at:
            self._next_metrics_at = self._clock() + self._settings.flush_interval
            if forced or not self._pacer.paused():
                self._send_metrics(flush_deadline)
        with self._lock:
            self._flushes_served = max(self._flushes_served, served)
        with self._progress:
            self._progress.notify_all()
        while not self._pacer.paused():
            with self._lock:
                if len(self._queue) < self._wake_at:
                    break
            self._send_queued(flush_deadline)
            if self._clock() >= self._next_metrics_at:
                self._next_metrics_at = self._clock() + self._settings.flush_interval
                self._send_metrics(flush_deadline)

    def _send_queued(self, flush_deadline: float | None) -> bool:
        """Encode everything queued (one pass) and send it, split at ``max_batch_bytes``. False if nothing was."""
        with self._lock:
            if not self._queue:
                self._adjust_keep_rate()
                return False
            records = list(self._queue)
            self._queue.clear()
            self._in_flight += len(records)
            generation = self._generation
        encoder = self._span_encoder
        limit = self._settings.max_batch_bytes
        spans: list[bytes] = []
        predictions: list[tuple[ModelIdentity, int]] = []
        size = 0
        released = 0
        for record in records:
            try:
                span = encoder.encode(record)
            except Exception as exc:
                logger.debug("aither: could not encode %r", record, exc_info=True)
                self._settle(generation, 1, "encoding_error", [(record.model, record.trace_id)] if record.model else [])
                self._record_error(f"encoding failed: {type(exc).__name__}")
                released += record.nbytes
                continue
            if spans and size + len(span) + 8 > limit:
                self._release_bytes(released)
                released = 0
                self._deliver(self._chunk(spans, predictions, generation), flush_deadline)
                spans, predictions, size = [], [], 0
            spans.append(span)
            size += len(span) + 8
            released += record.nbytes
            if record.model is not None:
                predictions.append((record.model, record.trace_id))
        del records
        self._release_bytes(released)
        if spans:
            self._deliver(self._chunk(spans, predictions, generation), flush_deadline)
        with self._lock:
            self._adjust_keep_rate()
        return True

    def _chunk(self, spans: list[bytes], predictions: list[tuple[ModelIdentity, int]], generation: int) -> _Chunk:
        payload = self._traces.encode(self._span_encoder.request(spans))
        return _Chunk(payload, len(spans), predictions, generation)

    def _release_bytes(self, count: int) -> None:
        if count:
            with self._lock:
                self._queued_bytes -= count

    def _raise_keep_every(self, held: int, size: int) -> None:
        """(Holding the lock, on the caller's thread.) The queue passed a mark: keep half as many spans, and set
        the next mark halfway between here and the bound."""
        settings = self._settings
        self.keep_every *= 2
        self._raise_at = max(self._high_water, held + max(1, (settings.max_queue_size - held) // 2))
        self._raise_at_bytes = max(self._high_water_bytes, size + max(1, (settings.max_queue_bytes - size) // 2))

    def _adjust_keep_rate(self) -> None:
        """(Holding the lock.) Keep fewer spans while the queue stays past half its bound; more once it drains."""
        settings = self._settings
        held = len(self._queue) + self._in_flight
        fill = max(held / settings.max_queue_size, self._queued_bytes / settings.max_queue_bytes)
        if fill >= _OVERLOAD_FILL and self.keep_every < _MAX_KEEP_EVERY:
            self.keep_every *= 2
        elif fill <= _RECOVERED_FILL and self.keep_every > 1:
            self.keep_every //= 2
        # The caller's marks start again from here.
        self._raise_at = max(self._high_water, held + (settings.max_queue_size - held) // 2)
        self._raise_at_bytes = max(
            self._high_water_bytes, self._queued_bytes + (settings.max_queue_bytes - self._queued_bytes) // 2
        )

    # ------------------------------------------------------------------ delivery

    def _deliver(self, chunk: _Chunk, flush_deadline: float | None) -> None:
        outcome = self._post(self._traces, chunk.payload, flush_deadline, "spans")
        if outcome == "ok":
            self._settle(chunk.generation, chunk.count, None, chunk.predictions)
        else:
            self._settle(chunk.generation, chunk.count, outcome, chunk.predictions)

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
                    self._model_drops[(model, dropped)] += 1
                    self._remember_dropped(trace_id)
        with self._progress:
            self._progress.notify_all()

    def _out_of_time(self, deadline: float) -> str:
        """The drop reason when ``deadline`` ends the retries: the close's reason (``exit`` at interpreter exit)
        when it is the close deadline that cut them short, else ``retry_timeout``."""
        if self._close_deadline is not None and deadline >= self._close_deadline:
            return self._close_reason
        return "retry_timeout"

    def _post(self, endpoint: _Endpoint, payload: bytes, flush_deadline: float | None, what: str) -> str:
        """Deliver one payload with retries. Returns "ok" or the reason it was dropped."""
        settings = self._settings
        deadline = self._clock() + settings.max_retry_time
        attempt = 0
        while True:
            for limit in (self._close_deadline, flush_deadline):
                if limit is not None:
                    deadline = min(deadline, limit)
            remaining = deadline - self._clock()
            if remaining <= 0:
                reason = self._out_of_time(deadline)
                self._log.dropped(reason, "aither: the retry deadline passed; dropping %s", what)
                return reason
            timeout = min(settings.export_timeout, remaining)
            try:
                encoding = _GZIP if endpoint.gzip else {}
                response = endpoint.transport.post(endpoint.path, payload, encoding, timeout)
            except TransportError as exc:
                # A retry the deadline cut short times out for want of time, not because of the server: the
                # error before it (a refused certificate, say) stays the one ``last_error`` shows.
                cut_short = attempt > 0 and timeout < settings.export_timeout and str(exc) == TIMED_OUT
                self._record_error(f"{exc} ({endpoint.url})", keep_last=cut_short)
                cause = str(exc)
                retry_after = None
            except Exception as exc:  # not a network failure (a header http.client refuses...): settle, never lose
                # Only the type: the message of such an error may quote a header value, the API key included.
                self._record_error(f"{type(exc).__name__} sending to {endpoint.url}")
                self._log.refused(endpoint.url, type(exc).__name__, what)
                self._pacer.failed()
                return "export_error"
            else:
                outcome = self._answer(response, endpoint.url, what)
                if outcome == "ok":
                    self._pacer.succeeded()
                    self._log.recovered(endpoint.url)
                    return "ok"
                if outcome != "retry":
                    self._pacer.failed()
                    return outcome
                cause = _cause(response)
                retry_after = parse_retry_after(response.retry_after)
            # The exponent is capped: past 2**1024 the float product overflows (a long run of "Retry-After: 0").
            backoff = min(settings.max_backoff, settings.initial_backoff * (2 ** min(attempt, 64)))
            delay = retry_after if retry_after is not None else backoff * random.uniform(0.5, 1.0)
            attempt += 1
            if self._clock() + delay > deadline:
                reason = self._out_of_time(deadline)
                self._log.dropped(reason, "aither: the retry deadline would pass while backing off; dropping %s", what)
                return reason
            self._log.failing(endpoint.url, cause, delay)
            with self._lock:
                self.retries += 1
            # An Event wait, not time.sleep: close() sets _stop and interrupts the backoff at once; the rest of
            # the backoff is then waited only if it fits before the close deadline.
            wait_until = self._clock() + delay
            self._lending.idle(_monotonic() + delay)
            stopped = self._stop.wait(delay)
            self._lending.busy()
            if stopped:
                if self._close_deadline is not None:
                    deadline = min(deadline, self._close_deadline)
                rest = wait_until - self._clock()
                if rest > 0:
                    if self._clock() + rest > deadline:
                        return self._out_of_time(deadline)
                    time.sleep(rest)

    def _answer(self, response: Response, url: str, what: str) -> str:
        status = response.status
        if 200 <= status < 300:
            rejected, message = read_partial_success(response.body)
            if rejected:
                with self._lock:
                    if what == "spans":
                        self.rejected_spans += rejected
                    self.last_error = f"server rejected {rejected} {what}: {message}"[:500]
                self._log.dropped("partial", f"aither: the server rejected {rejected} {what}: %s", message[:200])
            return "ok"
        cause = _cause(response)
        self._record_error(f"{cause} ({url})")
        if status in RETRYABLE_STATUSES:
            return "retry"
        if what == "metrics" and status in (404, 405):
            return f"http_{status}"  # a backend without OTLP metrics: _send_metrics says so, once
        self._log.refused(url, cause, what)
        if status in (401, 403):
            self._log.once(
                "auth",
                "aither: the server refused the API key (HTTP %d); predictions are not being recorded. "
                "Check AITHER_API_KEY and its scopes.",
                status,
            )
        return f"http_{status}"

    def _record_error(self, message: str, *, keep_last: bool = False) -> None:
        with self._lock:
            self.export_errors += 1
            if not keep_last or self.last_error is None:
                self.last_error = message

    # ------------------------------------------------------------------ aggregates

    def _send_metrics(self, flush_deadline: float | None) -> None:
        collection = _aggregates.collect()
        if collection is None:
            return
        if self._metrics_refused:  # the endpoint has no OTLP metrics: the counts are let go, and counted
            collection.commit(time.time_ns())
            with self._lock:
                self.metric_reports_skipped += 1
            return
        try:
            with self._lock:
                drops = {
                    key: count - self._model_drops_reported.get(key, 0)
                    for key, count in self._model_drops.items()
                    if count != self._model_drops_reported.get(key, 0)
                }
                snapshot = dict(self._model_drops)
            end_ns = time.time_ns()
            body = self._metric_encoder.request(collection.deltas, drops, collection.start_ns, end_ns)
            if body is None:
                collection.commit(end_ns)
                return
            outcome = self._post(self._metrics, self._metrics.encode(body), flush_deadline, "metrics")
            if outcome == "ok":
                collection.commit(end_ns)
                with self._lock:
                    self._model_drops_reported = snapshot
                    self.metric_reports += 1
            elif outcome in ("http_404", "http_405"):
                self._metrics_refused = True
                self._log.once(
                    "metrics",
                    "aither: %s answered %s: this backend takes no OTLP metrics, so no more are sent to it "
                    "(spans still are; stats()['metric_reports_skipped'] counts the reports let go)",
                    self._metrics.url,
                    outcome.replace("http_", "HTTP "),
                )
        finally:
            collection.release()

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
            self._close_reason = reason
            self._close_deadline = deadline
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
                        self._model_drops[(record.model, reason)] += 1
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
                f"; last error: {self.last_error}" if self.last_error else "",
            )
        if thread is None or not thread.is_alive():
            self._traces.transport.close()
            self._metrics.transport.close()
        return delivered

    def stats(self) -> ExporterStats:
        with self._lock:
            stats = stats_dict(
                queued=self.queued,
                exported=self.exported,
                dropped=self.dropped,
                retries=self.retries,
                export_errors=self.export_errors,
                rejected_spans=self.rejected_spans,
                truncated_attributes=self._span_encoder.truncated_attributes,
                last_error=self.last_error,
            )
            stats["keep_every"] = self.keep_every
            stats["metric_reports"] = self.metric_reports
            stats["metric_reports_skipped"] = self.metric_reports_skipped
        return stats


def _cause(response: Response) -> str:
    detail = error_message_of(response.body)
    return f"HTTP {response.status}" + (f": {detail}" if detail else "")


def _reinit_after_fork() -> None:
    for exporter in list(_live_exporters):
        exporter._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
