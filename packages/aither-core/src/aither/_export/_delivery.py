"""Delivery: one payload to one endpoint, with retries, backoff, pacing after failures, and the error counters.

Retries follow the OTLP specification: connection errors, timeouts, 429, 502, 503 and 504 are retried with
exponential backoff and jitter, honouring ``Retry-After``, within ``max_retry_time`` (and within a flush's or
close's deadline); any other status drops the payload. After a failure retrying cannot fix, :class:`SendPacer`
spaces the next sends. Runs on the worker thread, or on the thread of a ``flush``/``close`` when no worker runs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping

from .._config import Settings
from ._delivery_log import DeliveryLog, error_message_of
from ._gil_lending import GilLending
from ._transport import TIMED_OUT, HttpTransport, Response, TransportError, parse_retry_after
from ._wire import read_partial_success

__all__ = ["OK", "RETRYABLE_STATUSES", "Delivery", "Endpoint", "SendPacer"]

logger = logging.getLogger("aither")

#: The outcome of a delivered payload; any other outcome is the reason it was dropped (``http_500``...).
OK = "ok"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_GZIP = {"Content-Encoding": "gzip"}
_PLAIN: dict[str, str] = {}
#: Bytes compressed between two chances for a waiting caller to take the GIL.
_COMPRESS_SLICE = 16 * 1024


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


class Endpoint:
    """Where one kind of payload goes: its URL (for messages), the path on the connection, whether it is gzipped."""

    __slots__ = ("default_remote", "gzip", "path", "transport", "url")

    def __init__(self, url: str, transport: HttpTransport, gzip: bool, *, default_remote: bool = False) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.transport = transport
        self.gzip = gzip
        #: The built-in default endpoint, not chosen by the user: warned about as the first request leaves.
        self.default_remote = default_remote

    def encode(self, payload: bytes, pause: Callable[[], None]) -> bytes:
        """The request body: ``payload``, gzipped (level 1) when the endpoint wants it. A large payload is
        compressed in slices with ``pause()`` between them, so the worker never holds the GIL for long."""
        if not self.gzip:
            return payload
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer, mtime 0
        parts = []
        view = memoryview(payload)
        for start in range(0, len(payload), _COMPRESS_SLICE):
            if start:
                pause()
            parts.append(compressor.compress(view[start : start + _COMPRESS_SLICE]))
        parts.append(compressor.flush())
        return b"".join(parts)


class Delivery:
    """Posts payloads to the traces and metrics endpoints; counts retries and errors for ``aither.stats()``."""

    def __init__(
        self,
        settings: Settings,
        headers: Mapping[str, str],
        *,
        clock: Callable[[], float],
        stop: threading.Event,
        lending: GilLending,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._stop = stop
        self._lending = lending
        traces = HttpTransport(settings.traces_url, headers)
        traces_at = urllib.parse.urlsplit(settings.traces_url)
        metrics_at = urllib.parse.urlsplit(settings.metrics_url)
        same_origin = (traces_at.scheme, traces_at.netloc) == (metrics_at.scheme, metrics_at.netloc)
        metrics = traces if same_origin else HttpTransport(settings.metrics_url, headers)
        self.traces = self._endpoint(settings, settings.traces_url, traces)
        self.metrics = self._endpoint(settings, settings.metrics_url, metrics)
        self.pacer = SendPacer(settings.flush_interval, settings.max_backoff, clock)
        self.log = DeliveryLog(logger)
        #: Set by ``close``: retries end at this deadline, and what they drop then is counted under this reason.
        self._close_deadline: float | None = None
        self._close_reason = "shutdown"
        self._lock = threading.Lock()
        self.retries = 0
        self.export_errors = 0
        self.rejected_spans = 0
        self.last_error: str | None = None

    @staticmethod
    def _endpoint(settings: Settings, url: str, transport: HttpTransport) -> Endpoint:
        return Endpoint(url, transport, settings.gzip_for(url), default_remote=settings.is_default_remote(url))

    def closing(self, deadline: float | None, reason: str) -> None:
        self._close_deadline = deadline
        self._close_reason = reason

    def close(self) -> None:
        self.traces.transport.close()
        self.metrics.transport.close()

    def counters(self) -> tuple[int, int, int, str | None]:
        """``retries``, ``export_errors``, ``rejected_spans`` and ``last_error``, read together."""
        with self._lock:
            return self.retries, self.export_errors, self.rejected_spans, self.last_error

    def record_error(self, message: str, *, keep_last: bool = False) -> None:
        with self._lock:
            self.export_errors += 1
            if not keep_last or self.last_error is None:
                self.last_error = message

    def _out_of_time(self, deadline: float) -> str:
        """The drop reason when ``deadline`` ends the retries: the close's reason (``exit`` at interpreter exit)
        when it is the close deadline that cut them short, else ``retry_timeout``."""
        if self._close_deadline is not None and deadline >= self._close_deadline:
            return self._close_reason
        return "retry_timeout"

    def post(self, endpoint: Endpoint, payload: bytes, flush_deadline: float | None, what: str) -> str:
        """Deliver one payload with retries. Returns :data:`OK` or the reason it was dropped."""
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
                self.log.dropped(reason, "aither: the retry deadline passed; dropping %s", what)
                return reason
            timeout = min(settings.export_timeout, remaining)
            if endpoint.default_remote:
                endpoint.default_remote = False
                _warn_default_remote(settings.base_url)
            try:
                response = endpoint.transport.post(endpoint.path, payload, _GZIP if endpoint.gzip else _PLAIN, timeout)
            except TransportError as exc:
                self._lending.resumed()
                # A retry the deadline cut short times out for want of time, not because of the server: the
                # error before it (a refused certificate, say) stays the one ``last_error`` shows.
                timed_out = attempt > 0 and timeout < settings.export_timeout and str(exc) == TIMED_OUT
                self.record_error(f"{exc} ({endpoint.url})", keep_last=timed_out)
                cause = str(exc)
                retry_after = None
            except Exception as exc:  # not a network failure (a header http.client refuses...): settle, never lose
                # Only the type: the message of such an error may quote a header value, the API key included.
                self.record_error(f"{type(exc).__name__} sending to {endpoint.url}")
                self.log.refused(endpoint.url, type(exc).__name__, what)
                self.pacer.failed()
                return "export_error"
            else:
                self._lending.resumed()
                outcome = self._answer(response, endpoint.url, what)
                if outcome == OK:
                    self.pacer.succeeded()
                    self.log.recovered(endpoint.url)
                    return OK
                if outcome != "retry":
                    self.pacer.failed()
                    return outcome
                cause = _cause(response)
                retry_after = parse_retry_after(response.retry_after)
            # The exponent is capped: past 2**1024 the float product overflows (a long run of "Retry-After: 0").
            backoff = min(settings.max_backoff, settings.initial_backoff * (2 ** min(attempt, 64)))
            delay = retry_after if retry_after is not None else backoff * random.uniform(0.5, 1.0)
            attempt += 1
            if self._clock() + delay > deadline:
                reason = self._out_of_time(deadline)
                self.log.dropped(reason, "aither: the retry deadline would pass while backing off; dropping %s", what)
                return reason
            self.log.failing(endpoint.url, cause, delay)
            with self._lock:
                self.retries += 1
            dropped = self._back_off(delay, deadline)
            if dropped is not None:
                return dropped

    def _back_off(self, delay: float, deadline: float) -> str | None:
        """Wait ``delay`` seconds before a retry; the drop reason when ``close`` cut the wait short and the rest of
        it does not fit before the close deadline.

        An Event wait, not time.sleep: close() sets the stop event and interrupts the backoff at once; the rest
        of the backoff is then waited only if it fits before the close deadline."""
        wait_until = self._clock() + delay
        self._lending.idle(time.monotonic() + delay)
        stopped = self._stop.wait(delay)
        self._lending.busy()
        if not stopped:
            return None
        if self._close_deadline is not None:
            deadline = min(deadline, self._close_deadline)
        rest = wait_until - self._clock()
        if rest > 0:
            if self._clock() + rest > deadline:
                return self._out_of_time(deadline)
            time.sleep(rest)
        return None

    def _answer(self, response: Response, url: str, what: str) -> str:
        status = response.status
        if 200 <= status < 300:
            rejected, message = read_partial_success(response.body)
            if rejected:
                with self._lock:
                    if what == "spans":
                        self.rejected_spans += rejected
                    self.last_error = f"server rejected {rejected} {what}: {message}"[:500]
                self.log.dropped("partial", f"aither: the server rejected {rejected} {what}: %s", message[:200])
            return OK
        cause = _cause(response)
        self.record_error(f"{cause} ({url})")
        if status in RETRYABLE_STATUSES:
            return "retry"
        if what == "metrics" and status in (404, 405):
            return f"http_{status}"  # a backend without OTLP metrics: the metrics report says so, once
        self.log.refused(url, cause, what)
        if status in (401, 403):
            self.log.once(
                "auth",
                "aither: the server refused the API key (HTTP %d); predictions are not being recorded. "
                "Check AITHER_API_KEY and its scopes.",
                status,
            )
        return f"http_{status}"


_warned_default_remote = False


def _warn_default_remote(base_url: str) -> None:
    """Once per process, as the first request leaves for the built-in default endpoint: samples of inputs are
    about to leave this machine though nothing chose where they go. A client that never sends never warns."""
    global _warned_default_remote
    if _warned_default_remote:
        return
    _warned_default_remote = True
    logger.warning(
        "aither: sending prediction spans with samples of their inputs to %s, the built-in default; set "
        "AITHER_BASE_URL (http://127.0.0.1:4318 for a local aither server) or aither.init(base_url=...) to "
        "choose where they go (docs/privacy.md)",
        base_url,
    )


def _cause(response: Response) -> str:
    """``HTTP 400: <the server's explanation>``, as the log and ``last_error`` show an answer."""
    detail = error_message_of(response.body)
    return f"HTTP {response.status}" + (f": {detail}" if detail else "")
