"""Delivery against a real OTLP/HTTP receiver on 127.0.0.1: retries, backoff, drops and their counters."""

from __future__ import annotations

import email.utils
import gzip
import random
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

import aither
from aither._export._delivery import _COMPRESS_SLICE as COMPRESS_SLICE
from aither._export._delivery import Endpoint
from aither._export._transport import HttpTransport, parse_retry_after
from aither.testing import RECEIVING_DEFAULTS, Fault, OTLPReceiver, receiving

#: What these tests change in ``receiving``'s defaults: a key to look for in reprs, quicker retries and sends.
_DELIVERY = {"api_key": "aith_secret_key_123", "max_backoff": 0.2, "export_timeout": 2.0}


def _receiving(**options: object) -> AbstractContextManager[OTLPReceiver]:
    return receiving(**{**_DELIVERY, **options})


def _init(receiver_url: str, **options: object) -> None:
    aither.init(**{**RECEIVING_DEFAULTS, **_DELIVERY, **options, "base_url": receiver_url})  # type: ignore[arg-type]


def _predict(count: int) -> list[str]:
    return [aither.log_prediction("m", {"x": i}, i) for i in range(count)]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_are_retried_until_delivered(status: int) -> None:
    with _receiving() as receiver:
        receiver.fail(Fault(status), Fault(status))
        ids = _predict(3)
        assert aither.flush(timeout=10)
        assert sorted(s.trace_id for s in receiver.spans) == sorted(ids)
        stats = aither.stats()
        assert stats["retries"] == 2
        assert stats["exported"] == 3
        assert stats["dropped_total"] == 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
def test_other_statuses_drop_the_batch_and_count_it(status: int) -> None:
    with _receiving() as receiver:
        receiver.fail(Fault(status))
        _predict(3)
        assert aither.flush(timeout=10) is False
        stats = aither.stats()
        assert stats["dropped"] == {f"http_{status}": 3}
        assert stats["retries"] == 0
        assert len(receiver.requests) == 1
        assert stats["queued"] == stats["exported"] + stats["dropped_total"]


def test_connection_refused_is_retried_and_delivered_once_the_backend_is_up() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    _init(f"http://127.0.0.1:{port}", max_retry_time=10.0)
    ids = _predict(5)
    _wait_until(lambda: aither.stats()["export_errors"] >= 1)  # a refused attempt happens first
    with OTLPReceiver(port=port) as receiver:
        assert aither.flush(timeout=10)
        assert sorted(s.trace_id for s in receiver.spans) == sorted(ids)
    stats = aither.stats()
    assert stats["retries"] >= 1
    assert stats["export_errors"] >= 1
    assert stats["exported"] == 5


def test_503_burst_then_recovery_delivers_every_record_exactly_once() -> None:
    with _receiving(batch_size=10) as receiver:
        receiver.fail(*[Fault(503)] * 4)
        ids = _predict(50)
        assert aither.flush(timeout=15)
        received = [s.trace_id for s in receiver.spans]
        assert sorted(received) == sorted(ids)
        assert len(set(received)) == 50


@pytest.mark.parametrize(
    ("header", "expected_min_wait"),
    [("1", 0.9), ("date+3", 0.9), ("date-3600", 0.0), ("soon, please", 0.0)],
    ids=["seconds", "http-date", "date-in-the-past", "malformed"],
)
def test_retry_after_is_honoured(header: str, expected_min_wait: float) -> None:
    if header.startswith("date"):
        # HTTP dates have one-second resolution: +3 s leaves more than 0.9 s after rounding down.
        header = email.utils.formatdate(time.time() + int(header[4:]), usegmt=True)
    with _receiving() as receiver:
        receiver.fail(Fault(429, headers={"Retry-After": header}))
        _predict(1)
        assert aither.flush(timeout=10)
        _, second = receiver.requests
        assert second.answered == 200
        assert len(receiver.spans) == 1
    # The gap between the two attempts is at least what the server asked for (no upper bound: machines are noisy).
    assert _gap(receiver) >= expected_min_wait


def _gap(receiver: OTLPReceiver) -> float:
    first, second = receiver.requests[:2]
    return second.received_at - first.received_at


def test_retry_after_longer_than_the_retry_deadline_drops_at_once() -> None:
    with _receiving(max_retry_time=1.0) as receiver:
        receiver.fail(Fault(503, headers={"Retry-After": "3600"}))
        _predict(2)
        started = time.monotonic()
        assert aither.flush(timeout=10) is False
        assert time.monotonic() - started < 5  # dropped, not slept on (a bound, not a timing assertion)
        assert aither.stats()["dropped"] == {"retry_timeout": 2}
        assert len(receiver.requests) == 1


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("later") is None
    assert parse_retry_after("-5") is None
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_a_receiver_slower_than_the_timeout_is_retried() -> None:
    with _receiving(export_timeout=0.3) as receiver:
        receiver.fail(Fault(200, delay=1.0))
        ids = _predict(2)
        assert aither.flush(timeout=10)
        stats = aither.stats()
        assert stats["retries"] >= 1
        assert stats["last_error"] is not None and "timed out" in stats["last_error"]
        # The slow request was answered 200 after we gave up, so the receiver may hold the spans twice;
        # what matters is that nothing is lost and the timed-out attempt was retried.
        assert set(ids) <= {s.trace_id for s in receiver.spans}


def test_a_connection_reset_is_retried() -> None:
    with _receiving() as receiver:
        receiver.fail(Fault(reset=True))
        ids = _predict(3)
        assert aither.flush(timeout=10)
        assert sorted(s.trace_id for s in receiver.spans) == sorted(ids)
        assert aither.stats()["retries"] == 1


def test_partial_success_is_recorded_and_not_retried() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    body = ExportTraceServiceResponse()
    body.partial_success.rejected_spans = 2
    body.partial_success.error_message = "missing ml.model.name"
    with _receiving() as receiver:
        receiver.fail(Fault(200, body=body.SerializeToString()))
        _predict(3)
        assert aither.flush(timeout=10)
        stats = aither.stats()
        assert stats["rejected_spans"] == 2
        assert "missing ml.model.name" in (stats["last_error"] or "")
        assert stats["retries"] == 0
        assert len(receiver.requests) == 1


def test_a_full_queue_drops_new_records_and_the_counts_stay_exact() -> None:
    with _receiving(max_queue_size=10, batch_size=5, flush_interval=5.0) as receiver:
        receiver.fail(Fault(200, delay=0.5))  # hold the worker while the queue fills
        _predict(200)
        aither.flush(timeout=15)
        stats = aither.stats()
        assert stats["queued"] == 200
        assert stats["dropped"].get("queue_full", 0) > 0
        assert stats["queued"] == stats["exported"] + stats["dropped_total"]
        assert len({s.trace_id for s in receiver.spans}) == stats["exported"]


def test_a_queue_bounded_in_bytes_drops_records_over_the_bound() -> None:
    import numpy as np

    with _receiving(max_queue_bytes=20_000, flush_interval=5.0, batch_size=1000):
        wide = np.ones((5, 10))
        tracked = aither.wrap(lambda x: x, name="echo")
        for _ in range(500):
            tracked(wide)
        stats = aither.stats()
        assert stats["dropped"].get("queue_full", 0) > 0
        aither.flush(timeout=10)
        stats = aither.stats()
        assert stats["queued"] == stats["exported"] + stats["dropped_total"]


def test_requests_are_gzipped_protobuf_with_the_bearer_key() -> None:
    with _receiving(compression="gzip") as receiver:
        _predict(1)
        assert aither.flush(timeout=10)
        (request,) = receiver.requests
        assert request.path == "/v1/traces"
        assert request.headers["content-type"] == "application/x-protobuf"
        assert request.headers["content-encoding"] == "gzip"
        assert request.headers["authorization"] == "Bearer aith_secret_key_123"
        assert request.body[:2] == b"\x1f\x8b"
        (metrics,) = receiver.metrics_requests
        assert metrics.headers["content-encoding"] == "gzip"


def test_by_default_only_requests_off_this_machine_are_gzipped() -> None:
    # Compressing for a loopback address only costs CPU: compression="auto" (the default) skips it there.
    with _receiving() as receiver:
        _predict(1)
        assert aither.flush(timeout=10)
        (request,) = receiver.requests
        assert "content-encoding" not in request.headers
        assert len(receiver.spans) == 1
    settings = aither._client.get_client().settings
    assert settings.gzip_for("http://localhost:4318/v1/traces") is False
    assert settings.gzip_for("http://[::1]:4318/v1/traces") is False
    assert settings.gzip_for("https://aither.computer/v1/traces") is True
    assert settings.gzip_for("http://10.0.0.5:4318/v1/traces") is True


def test_requests_stay_under_the_byte_cap_and_carry_what_was_queued() -> None:
    # batch_size is the count that triggers a send; a send takes everything queued, split at max_batch_bytes.
    with _receiving(batch_size=10, max_batch_bytes=4000, compression="none", flush_interval=5.0) as receiver:
        ids = _predict(25)
        assert aither.flush(timeout=10)
        sizes = [len(r.body) for r in receiver.requests]
        assert sorted(s.trace_id for s in receiver.spans) == sorted(ids)
        assert len(sizes) >= 2
        assert max(sizes) <= 4000 + 512  # resource and envelope around the spans


def test_batch_size_records_wake_the_worker_before_the_interval() -> None:
    with _receiving(batch_size=5, flush_interval=3600.0) as receiver:
        ids = _predict(5)
        spans = receiver.wait_for_spans(5, timeout=30)  # no flush: the fifth record woke the worker
        assert sorted(s.trace_id for s in spans) == sorted(ids)


def test_a_huge_attribute_is_truncated_marked_and_counted() -> None:
    with _receiving(max_attribute_bytes=2000) as receiver:
        aither.log_prediction("m", {"text": "x" * 900}, ["y" * 100] * 100)
        assert aither.flush(timeout=10)
        (span,) = receiver.spans
        assert span.attributes["aither.truncated"] == ["ml.prediction"]
        assert span.prediction["_meta"]["truncated"] is True
        assert span.prediction["_meta"]["original_bytes"] > 2000
        assert len(span.attributes["ml.prediction"]) <= 2000
        assert aither.stats()["truncated_attributes"] == 1


def test_the_api_key_never_reaches_the_logs_even_at_debug(aither_logs: pytest.LogCaptureFixture) -> None:
    with _receiving() as receiver:
        receiver.fail(Fault(401), Fault(503), Fault(reset=True))
        _predict(1)
        aither.flush(timeout=5)
        _predict(1)
        aither.flush(timeout=5)
        assert "aith_secret_key_123" not in repr(aither._client.get_client().settings)
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in aither_logs.records)
    assert aither_logs.records, "debug logging was captured"
    assert "aith_secret_key_123" not in text
    assert any("refused the API key" in r.getMessage() for r in aither_logs.records)


def test_no_telemetry_loop_with_httpx_instrumented() -> None:
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with _receiving() as receiver:
            _predict(3)
            assert aither.flush(timeout=10)
            import httpx

            httpx.get(receiver.url + "/not-ours")  # the user's own request is still traced
        http_spans = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.CLIENT]
        assert len(http_spans) == 1
        assert "POST" not in http_spans[0].name
    finally:
        instrumentor.uninstrument()


def test_many_threads_predicting_lose_nothing() -> None:
    with _receiving(batch_size=50) as receiver:
        ids: list[str] = []
        lock = threading.Lock()

        def work() -> None:
            mine = _predict(50)
            with lock:
                ids.extend(mine)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert aither.flush(timeout=20)
        assert sorted(s.trace_id for s in receiver.spans) == sorted(ids)
        assert aither.stats()["exported"] == 800


def test_a_flush_deadline_bounds_that_flush_only_not_later_deliveries() -> None:
    with _receiving() as receiver:
        assert aither.flush(timeout=0.1)  # nothing queued yet: no worker, the flush runs on this thread
        time.sleep(0.3)  # well past that flush's deadline
        trace_id = aither.log_prediction("m", {"x": 1}, 1)
        assert aither.flush(timeout=10)
        assert [s.trace_id for s in receiver.spans] == [trace_id]
        assert aither.stats()["dropped_total"] == 0


def test_a_delivery_that_fails_unexpectedly_is_dropped_and_counted_not_lost() -> None:
    # A key that cannot be put in a header (no latin-1 form) makes every send raise something that is not a
    # network error.
    with _receiving(api_key="aith_ключ"):
        _predict(3)
        assert aither.flush(timeout=10) is False
        stats = aither.stats()
        assert stats["pending"] == 0  # settled: a flush() without a timeout would not wait forever
        assert stats["dropped"] == {"export_error": 3}
        assert stats["queued"] == stats["exported"] + stats["dropped_total"]


def test_a_long_run_of_immediate_retries_still_delivers() -> None:
    # "Retry-After: 0" asks for at once: past 1024 attempts the exponential backoff overflowed a float.
    with _receiving(max_retry_time=120.0) as receiver:
        receiver.fail(*[Fault(429, headers={"Retry-After": "0"})] * 1030)
        ids = _predict(1)
        assert aither.flush(timeout=120)
        assert [s.trace_id for s in receiver.spans] == ids
        stats = aither.stats()
        assert stats["retries"] == 1030
        assert stats["dropped_total"] == 0


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a bound, not a timing assumption)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.01)


def test_a_large_gzipped_request_is_compressed_in_slices_with_the_gil_given_back_between_them() -> None:
    endpoint = Endpoint("http://127.0.0.1:9/v1/traces", HttpTransport("http://127.0.0.1:9", {}), gzip=True)
    payload = random.Random(0).randbytes(1_000_000)
    pauses: list[None] = []
    body = endpoint.encode(payload, lambda: pauses.append(None))
    assert gzip.decompress(body) == payload
    slices = -(-len(payload) // COMPRESS_SLICE)
    assert slices > 1 and len(pauses) == slices - 1  # a pause between two slices, none before the first
    assert body[:2] == b"\x1f\x8b" and body[4:8] == b"\0\0\0\0"  # a gzip member, mtime 0 as before
