"""The background worker: a bounded queue, batching, OTLP/HTTP delivery with retries, and the counters.

The calling thread only ever runs :meth:`BatchExporter.submit`: a lock, a few integer updates and a deque append.
Everything else (rendering samples, JSON, protobuf, gzip, HTTP, backoff) runs on the worker thread, or on the
thread that calls ``flush``/``close`` when no worker is running (interpreter exit must not start a thread).
"""

from __future__ import annotations

import collections
import email.utils
import gzip
import logging
import os
import random
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._config import Settings
from .._records import SpanRecord
from .._stats import stats_dict
from .._version import __version__

if TYPE_CHECKING:
    import httpx

    from ._otlp import SpanEncoder

__all__ = ["BatchExporter", "RETRYABLE_STATUSES", "parse_retry_after"]

logger = logging.getLogger("aither")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Bytes of a response body we are willing to read (a partial_success message is tiny).
MAX_RESPONSE_BYTES = 64 * 1024
_WARN_EVERY_S = 60.0

_live_exporters: weakref.WeakSet[BatchExporter] = weakref.WeakSet()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class _RateLimitedLog:
    """Logs a warning at most once per interval per key, so a flood of drops cannot flood the log."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is None or now - last >= _WARN_EVERY_S:
            self._last[key] = now
            logger.warning(message, *args)


class _Batch:
    __slots__ = ("count", "payload")

    def __init__(self, payload: bytes, count: int) -> None:
        self.payload = payload
        self.count = count


class BatchExporter:
    """Queues records and delivers them in batches to ``{base_url}/v1/traces``.

    ``transport`` replaces the HTTP client (an ``httpx.BaseTransport``), for tests and benchmarks.
    """

    def __init__(
        self,
        settings: Settings,
        resource: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._resource = dict(resource)
        self._transport = transport
        self._encoder: SpanEncoder | None = None
        self._warn = _RateLimitedLog()
        self._auth_warned = False
        self._reset_state()
        _live_exporters.add(self)

    # ------------------------------------------------------------------ state (also rebuilt after fork)

    def _reset_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._progress = threading.Condition(threading.Lock())
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._queue: collections.deque[SpanRecord] = collections.deque()
        self._queued_bytes = 0
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._closed = False
        self._close_deadline: float | None = None
        self._flush_requested = 0
        self.queued = 0
        self.exported = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self.retries = 0
        self.export_errors = 0
        self.rejected_spans = 0
        self.last_error: str | None = None

    def _after_fork(self) -> None:
        """In a child process: forget the parent's queue, thread and connections (they are not ours)."""
        self._reset_state()

    # ------------------------------------------------------------------ caller thread

    def submit(self, record: SpanRecord) -> None:
        """Queue a record without blocking; drop and count it when the queue is full or closed."""
        if self._pid != os.getpid():  # a fork that skipped os.register_at_fork (uWSGI forks from C)
            self._after_fork()
        settings = self._settings
        wake = False
        with self._lock:
            self.queued += 1
            if self._closed:
                self.dropped["shutdown"] += 1
                return
            if len(self._queue) >= settings.max_queue_size or (
                self._queued_bytes + record.nbytes > settings.max_queue_bytes
            ):
                self.dropped["queue_full"] += 1
                full = True
            else:
                self._queue.append(record)
                self._queued_bytes += record.nbytes
                full = False
                wake = len(self._queue) >= settings.batch_size
        if full:
            self._warn.warning(
                "queue_full",
                "aither: export queue is full (%d records); dropping new records",
                len(self._queue),
            )
            return
        if self._thread is None:
            self._start_worker()
        elif wake:
            self._wakeup.set()

    def _start_worker(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="aither-exporter", daemon=True)
            self._thread = thread
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down: flush()/close() will export on their own thread
            with self._lock:
                self._thread = None

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        interval = self._settings.flush_interval
        while True:
            self._wakeup.wait(interval)
            self._wakeup.clear()
            try:
                self._drain()
            except Exception:  # never let the worker die: a dead worker would silently drop everything
                logger.exception("aither: export worker error")
            if self._stop.is_set():
                with self._lock:
                    if not self._queue:
                        return

    def _take_batch(self) -> list[SpanRecord]:
        with self._lock:
            count = min(len(self._queue), self._settings.batch_size)
            batch = [self._queue.popleft() for _ in range(count)]
            self._queued_bytes -= sum(record.nbytes for record in batch)
        return batch

    def _drain(self, deadline: float | None = None) -> None:
        """Send everything queued. ``deadline``: a flush's own limit on retries (``close`` has its own)."""
        while True:
            records = self._take_batch()
            if not records:
                return
            for batch in self._encode(records):
                self._deliver(batch, deadline)
            with self._progress:
                self._progress.notify_all()

    def _encode(self, records: list[SpanRecord]) -> Iterator[_Batch]:
        """Encode records into one or more requests, each under ``max_batch_bytes`` before compression."""
        try:
            encoder = self._get_encoder()
        except Exception as exc:  # e.g. a protobuf runtime that cannot load opentelemetry-proto
            logger.debug("aither: the span encoder could not be created", exc_info=True)
            self._record_drop("encoding_error", len(records), f"no encoder: {type(exc).__name__}")
            return
        limit = self._settings.max_batch_bytes
        spans: list[bytes] = []
        size = 0
        for record in records:
            try:
                span = encoder.encode(record).SerializeToString()
            except Exception as exc:
                logger.debug("aither: could not encode %r", record, exc_info=True)
                self._record_drop("encoding_error", 1, f"encoding failed: {type(exc).__name__}")
                continue
            span_size = len(span) + 8  # its tag and length prefix
            if spans and size + span_size > limit:
                yield self._serialize(encoder, spans)
                spans, size = [], 0
            spans.append(span)
            size += span_size
        if spans:
            yield self._serialize(encoder, spans)

    def _serialize(self, encoder: SpanEncoder, spans: list[bytes]) -> _Batch:
        payload = encoder.request_bytes(spans)
        if self._settings.compression == "gzip":
            payload = gzip.compress(payload, compresslevel=1, mtime=0)
        return _Batch(payload, len(spans))

    def _get_encoder(self) -> SpanEncoder:
        if self._encoder is None:
            from ._otlp import SpanEncoder  # protobuf is imported on the worker, never by ``import aither``

            self._encoder = SpanEncoder(self._resource, self._settings.max_attribute_bytes)
        return self._encoder

    # ------------------------------------------------------------------ delivery

    def _deadline_for_batch(self, flush_deadline: float | None) -> float:
        deadline = time.monotonic() + self._settings.max_retry_time
        for limit in (self._close_deadline, flush_deadline):
            if limit is not None:
                deadline = min(deadline, limit)
        return deadline

    def _deliver(self, batch: _Batch, flush_deadline: float | None = None) -> None:
        deadline = self._deadline_for_batch(flush_deadline)
        attempt = 0
        while True:
            if self._close_deadline is not None:
                deadline = min(deadline, self._close_deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._record_drop("retry_timeout", batch.count, "retry deadline passed before delivery")
                return
            try:
                outcome, retry_after = self._post(batch, timeout=min(self._settings.export_timeout, remaining))
            except Exception as exc:  # not an HTTP failure (a header httpx cannot encode...): settle, never lose
                # Only the type: the message of such an error may quote a header value, the API key included.
                self._record_error(f"{type(exc).__name__} sending to {self._settings.traces_url}")
                self._record_drop("export_error", batch.count, f"{type(exc).__name__} while sending")
                return
            if outcome == "ok":
                with self._lock:
                    self.exported += batch.count
                return
            if outcome != "retry":
                return
            # The exponent is capped: past 2**1024 the float product overflows (a long run of "Retry-After: 0").
            backoff = min(self._settings.max_backoff, self._settings.initial_backoff * (2 ** min(attempt, 64)))
            delay = retry_after if retry_after is not None else backoff * random.uniform(0.5, 1.0)
            attempt += 1
            if time.monotonic() + delay > deadline:
                self._record_drop("retry_timeout", batch.count, "retry deadline would pass while backing off")
                return
            with self._lock:
                self.retries += 1
            # An Event wait, not time.sleep: close() sets _stop and interrupts the backoff at once; the rest of
            # the backoff is then waited only if it fits before the close deadline.
            wait_until = time.monotonic() + delay
            if self._stop.wait(delay):
                if self._close_deadline is not None:
                    deadline = min(deadline, self._close_deadline)
                rest = wait_until - time.monotonic()
                if rest > 0:
                    if time.monotonic() + rest > deadline:
                        self._record_drop("retry_timeout", batch.count, "closed while backing off")
                        return
                    time.sleep(rest)

    def _post(self, batch: _Batch, timeout: float) -> tuple[str, float | None]:
        """One HTTP attempt. Returns ("ok" | "retry" | "drop", retry_after seconds)."""
        import httpx

        client = self._get_client()
        headers = {"Content-Type": "application/x-protobuf"}
        if self._settings.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
        try:
            with (
                _suppress_instrumentation(),
                client.stream(
                    "POST", self._settings.traces_url, content=batch.payload, headers=headers, timeout=timeout
                ) as response,
            ):
                status = response.status_code
                body = _read_bounded(response) if status < 300 else b""
                retry_after_header = response.headers.get("retry-after")
        except httpx.HTTPError as exc:
            self._record_error(f"{type(exc).__name__} sending to {self._settings.traces_url}")
            return "retry", None

        if 200 <= status < 300:
            self._record_partial_success(body)
            return "ok", None
        self._record_error(f"HTTP {status} from {self._settings.traces_url}")
        if status in RETRYABLE_STATUSES:
            return "retry", parse_retry_after(retry_after_header)
        if status in (401, 403) and not self._auth_warned:
            self._auth_warned = True
            logger.warning(
                "aither: the server refused the API key (HTTP %d); predictions are not being recorded. "
                "Check AITHER_API_KEY and its scopes.",
                status,
            )
        self._record_drop(f"http_{status}", batch.count, f"HTTP {status}")
        return "drop", None

    def _record_partial_success(self, body: bytes) -> None:
        if not body:
            return
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        response = ExportTraceServiceResponse()
        try:
            response.ParseFromString(body)
        except Exception:
            return  # a 2xx whose body is not OTLP still means delivered
        rejected = response.partial_success.rejected_spans
        if rejected:
            with self._lock:
                self.rejected_spans += rejected
                self.last_error = f"server rejected {rejected} span(s): {response.partial_success.error_message}"[:500]
            self._warn.warning("partial", "aither: server rejected %d span(s)", rejected)

    def _record_error(self, message: str) -> None:
        with self._lock:
            self.export_errors += 1
            self.last_error = message

    def _record_drop(self, reason: str, count: int, message: str) -> None:
        with self._lock:
            self.dropped[reason] += count
        self._warn.warning(reason, "aither: dropped %d record(s): %s", count, message)

    def _get_client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            headers = {"User-Agent": f"aither-python/{__version__}"}
            if self._settings.api_key:
                headers["Authorization"] = f"Bearer {self._settings.api_key}"
            self._client = httpx.Client(headers=headers, transport=self._transport, follow_redirects=False)
        return self._client

    # ------------------------------------------------------------------ flush / close / stats

    def pending(self) -> int:
        with self._lock:
            return self.queued - self.exported - sum(self.dropped.values())

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is delivered or dropped. True when it was all delivered."""
        if self._pid != os.getpid():
            self._after_fork()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self.queued
            dropped_before = sum(self.dropped.values())
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._drain_here(deadline)
        else:
            self._wakeup.set()
            with self._progress:
                while self._done_up_to() < target:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._progress.wait(0.05 if remaining is None else min(remaining, 0.05))
                    self._wakeup.set()
        with self._lock:
            done = self.exported + sum(self.dropped.values()) >= target
            return done and sum(self.dropped.values()) == dropped_before

    def _done_up_to(self) -> int:
        with self._lock:
            return self.exported + sum(self.dropped.values())

    def _drain_here(self, deadline: float | None) -> None:
        """Export on the calling thread (no worker is running, e.g. at interpreter exit)."""
        try:
            self._drain(deadline)
        except Exception:
            logger.exception("aither: export error during flush")

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush within ``timeout`` seconds, then stop the worker; whatever is left is dropped and counted."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            if self._closed:
                return self.queued == self.exported + sum(self.dropped.values())
        deadline = None if timeout is None else time.monotonic() + timeout
        self._close_deadline = deadline
        with self._lock:
            target = self.queued
            dropped_before = sum(self.dropped.values())
            self._closed = True
        self._stop.set()
        self._wakeup.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if thread is None or not thread.is_alive():
            self._drain_here(deadline)
        with self._lock:
            left = len(self._queue)
            if left and (thread is None or not thread.is_alive()):
                self._queue.clear()
                self._queued_bytes = 0
                self.dropped["shutdown"] += left
            delivered = self.exported + sum(self.dropped.values()) >= target and (
                sum(self.dropped.values()) == dropped_before
            )
        if self._client is not None and (thread is None or not thread.is_alive()):
            self._client.close()
        return delivered

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return stats_dict(
                queued=self.queued,
                exported=self.exported,
                dropped=self.dropped,
                retries=self.retries,
                export_errors=self.export_errors,
                rejected_spans=self.rejected_spans,
                truncated_attributes=self._encoder.truncated_attributes if self._encoder else 0,
                last_error=self.last_error,
            )


def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]


@contextmanager
def _suppress_instrumentation() -> Iterator[None]:
    """Keep OpenTelemetry instrumentation of httpx from tracing our own export requests (no telemetry loop)."""
    context = sys.modules.get("opentelemetry.context")
    if context is None:
        yield
        return
    ctx = context.get_current()
    for name in ("_SUPPRESS_INSTRUMENTATION_KEY", "_SUPPRESS_HTTP_INSTRUMENTATION_KEY"):
        key = getattr(context, name, None)
        if key is not None:
            ctx = context.set_value(key, True, ctx)
    instrumentation_utils = sys.modules.get("opentelemetry.instrumentation.utils")
    http_key = getattr(instrumentation_utils, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)
    if http_key is not None:
        ctx = context.set_value(http_key, True, ctx)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def _reinit_after_fork() -> None:
    for exporter in list(_live_exporters):
        exporter._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
