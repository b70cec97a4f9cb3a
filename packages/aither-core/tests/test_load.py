"""Delivery under load: the overload policy, per-model aggregates, the byte bound, exit and pacing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import aither
from aither import _client
from aither._config import load_settings
from aither._export._admission import DROPPED_IDS_REMEMBERED
from aither._export._delivery import SendPacer
from aither._export._resource import resource_attributes
from aither._export._worker import BatchExporter
from aither.testing import Fault, OTLPReceiver


def _settings(url: str, **options: object) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "api_key": "aith_load",
        "base_url": url,
        "flush_interval": 0.05,
        "initial_backoff": 0.05,
        "max_backoff": 0.2,
        "max_retry_time": 5.0,
        "export_timeout": 2.0,
    }
    settings.update(options)
    return settings


@pytest.fixture
def manual_exporter() -> Iterator[BatchExporter]:
    """An exporter with no worker thread, installed as the client's: the test decides when it sends."""
    settings = load_settings(**_settings("http://127.0.0.1:9", max_queue_size=100_000, batch_size=100_000))
    exporter = BatchExporter(settings, resource_attributes(None), start_worker=False)
    previous = _client.replace_exporter(exporter)
    try:
        yield exporter
    finally:
        _client.restore(previous)


class Echo:
    def predict(self, X: np.ndarray) -> np.ndarray:
        return X[:, 0]


def test_under_overload_one_call_in_k_is_kept_uniformly_and_says_so(manual_exporter: BatchExporter) -> None:
    tracked = aither.wrap(Echo(), name="uniform")
    manual_exporter.keep_every = 4  # what the worker sets when it falls behind
    for _ in range(1000):
        tracked.predict(np.ones((2, 3)))
    queued = list(manual_exporter._queue)
    assert len(queued) == 250
    assert {record.sample_rate for record in queued} == {0.25}
    # Uniform: every fourth call, not the first quarter of them.
    calls = tracked.trace_ids
    kept = {f"{record.trace_id:032x}" for record in queued}
    assert [i for i, trace_id in enumerate(calls) if trace_id in kept] == list(range(0, 1000, 4))
    stats = aither.stats()
    assert stats["dropped"] == {"sampled": 750}
    assert stats["models"]["uniform"] == {"calls": 1000, "rows": 2000, "errors": 0}


def test_the_keep_rate_follows_the_queue_fill() -> None:
    settings = load_settings(**_settings("http://127.0.0.1:9", max_queue_size=100, batch_size=100_000))
    exporter = BatchExporter(settings, resource_attributes(None), start_worker=False)
    previous = _client.replace_exporter(exporter)
    try:
        tracked = aither.wrap(Echo(), name="fill")
        # Past three quarters of the bound the caller halves the keep rate as the queue crosses the mark.
        for _ in range(75):
            tracked.predict(np.ones((1, 3)))
        assert exporter.keep_every == 2
        admission = exporter._admission
        admission.sent(len(exporter._queue), exporter._queued_bytes)  # still past half after a send: keep fewer
        assert exporter.keep_every == 4
        admission.sent(0, 0)  # caught up: keep more again, one step at a time
        assert exporter.keep_every == 2
        admission.sent(0, 0)
        assert exporter.keep_every == 1
    finally:
        _client.restore(previous)


def test_a_stalled_worker_fills_the_queue_ever_more_slowly_not_at_once() -> None:
    # No worker runs: as the queue passes 3/4, 7/8, 15/16... of its bound the caller halves the keep rate, so
    # hundreds of calls later the queue still has room, and what was kept is spread over all of them.
    settings = load_settings(**_settings("http://127.0.0.1:9", max_queue_size=100, batch_size=100_000))
    exporter = BatchExporter(settings, resource_attributes(None), start_worker=False)
    previous = _client.replace_exporter(exporter)
    try:
        tracked = aither.wrap(Echo(), name="stalled")
        for _ in range(250):
            tracked.predict(np.ones((1, 3)))
        stats = aither.stats()
        assert "queue_full" not in stats["dropped"]
        assert len(exporter._queue) < 100
        assert exporter.keep_every >= 16
        assert len(exporter._queue) + stats["dropped"]["sampled"] == 250
        rates = [record.sample_rate or 1.0 for record in exporter._queue]
        assert rates == sorted(rates, reverse=True)  # each kept span says how many calls it stood for
        # Weighted by 1/ml.sample_rate the kept spans stand for the calls made (up to the calls of the last period,
        # whose kept span has not come yet).
        assert round(sum(1 / rate for rate in rates)) == pytest.approx(250, rel=0.2)
    finally:
        _client.restore(previous)


def test_a_sampled_out_call_takes_no_sample(manual_exporter: BatchExporter) -> None:
    seen: list[object] = []

    def features(X: object) -> object:
        seen.append(X)
        return {"n": 1}

    tracked = aither.wrap(Echo(), name="cheap", features_fn=features)
    manual_exporter.keep_every = 10
    for _ in range(100):
        tracked.predict(np.ones((1, 3)))
    assert len(seen) == 10


def test_labels_of_predictions_that_were_not_sent_are_not_sent(manual_exporter: BatchExporter) -> None:
    tracked = aither.wrap(Echo(), name="labels")
    manual_exporter.keep_every = 2
    tracked.predict(np.ones((1, 3)))  # kept
    tracked.predict(np.ones((1, 3)))  # sampled out
    kept_id, dropped_id = tracked.trace_ids
    aither.log_label(kept_id, 1)
    aither.log_label(dropped_id, 1)
    labels = [record for record in manual_exporter._queue if record.has_label]
    assert [f"{record.trace_id:032x}" for record in labels] == [kept_id]
    assert aither.stats()["dropped"] == {"sampled": 1, "prediction_not_sent": 1}


def test_the_memory_of_dropped_predictions_is_bounded(manual_exporter: BatchExporter) -> None:
    admission = manual_exporter._admission
    for trace_id in range(1, DROPPED_IDS_REMEMBERED + 100):
        admission.remember_dropped(trace_id)
    assert admission.remembered() == DROPPED_IDS_REMEMBERED
    assert not admission.was_dropped(1)  # the oldest are forgotten first
    assert admission.was_dropped(DROPPED_IDS_REMEMBERED + 99)


def test_string_outputs_count_by_their_size_against_the_byte_bound() -> None:
    settings = load_settings(**_settings("http://127.0.0.1:9", max_queue_bytes=2_000_000, batch_size=100_000))
    exporter = BatchExporter(settings, resource_attributes(None), start_worker=False)
    previous = _client.replace_exporter(exporter)
    try:
        tracked = aither.wrap(lambda x: ["x" * 100_000], name="texts")
        for _ in range(100):
            tracked("prompt")
        held = len(exporter._queue)
        assert 5 <= held <= 20  # about 100 KB each against a 2 MB bound
        assert exporter._queued_bytes <= 2_000_000
        dropped = aither.stats()["dropped"]
        assert dropped["queue_full"] > 0  # sampling (past 3/4 of the bytes) slowed the filling, did not stop it
        assert held + dropped["queue_full"] + dropped.get("sampled", 0) == 100
    finally:
        _client.restore(previous)


def test_aggregates_stay_exact_when_every_span_is_dropped() -> None:
    with OTLPReceiver() as receiver:
        aither.init(**_settings(receiver.url))
        receiver.fail(*[Fault(500)] * 1000)  # every span request fails; metrics requests are answered

        class Flaky:
            def predict(self, X: np.ndarray) -> np.ndarray:
                if X[0, 0] < 0:
                    raise ValueError("negative")
                return X[:, 0]

        tracked = aither.wrap(Flaky(), name="exact", version="2", environment="prod")

        def work() -> None:
            for i in range(200):
                try:
                    tracked.predict(np.full((3, 2), -1.0 if i % 10 == 0 else 1.0))
                except ValueError:
                    pass

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        aither.flush(timeout=20)
        assert receiver.spans == []
        assert receiver.metric_total("aither.prediction.calls", "exact") == 1600
        assert receiver.metric_total("aither.prediction.rows", "exact") == 4320  # rows of the calls that returned
        assert receiver.metric_total("aither.prediction.errors", "exact") == 160
        assert receiver.metric_total("aither.prediction.duration", "exact") == 1600
        assert receiver.metric_total("aither.spans.dropped", "exact", reason="http_500") == 1600
        point = next(
            p
            for p in receiver.metrics
            if p.metric == "aither.prediction.calls" and p.attributes["ml.model.name"] == "exact"
        )
        assert point.attributes == {"ml.model.name": "exact", "ml.model.version": "2", "ml.environment": "prod"}
        assert point.temporality == 1  # delta
        assert point.resource["service.instance.id"] == receiver.requests[0].spans[0].resource["service.instance.id"]


def test_metric_intervals_follow_each_other_and_a_failed_report_is_covered_by_the_next() -> None:
    with OTLPReceiver() as receiver:
        aither.init(**_settings(receiver.url, flush_interval=3600.0))
        tracked = aither.wrap(Echo(), name="intervals")
        tracked.predict(np.ones((1, 3)))
        assert aither.flush(timeout=10)
        receiver.fail(Fault(500, path="/v1/metrics"))
        tracked.predict(np.ones((1, 3)))
        aither.flush(timeout=10)  # this report is refused: its counts stay for the next one
        tracked.predict(np.ones((1, 3)))
        assert aither.flush(timeout=10)
        points = [p for p in receiver.metrics if p.metric == "aither.prediction.calls"]
        assert [p.value for p in points] == [1, 2]
        assert points[0].end_ns == points[1].start_ns
        assert all(p.start_ns < p.end_ns for p in points)


def test_histogram_bounds_are_the_documented_ones() -> None:
    with OTLPReceiver() as receiver:
        aither.init(**_settings(receiver.url))
        tracked = aither.wrap(Echo(), name="latency")
        tracked.predict(np.ones((1, 3)))
        assert aither.flush(timeout=10)
        (point,) = [p for p in receiver.metrics if p.metric == "aither.prediction.duration"]
        assert point.unit == "ms"
        assert point.bounds == pytest.approx([0.01 * 2 ** (i / 4) for i in range(93)])
        assert len(point.bucket_counts) == 94 and sum(point.bucket_counts) == point.count == 1
        assert point.sum is not None and point.sum > 0


def test_the_pacer_waits_longer_after_each_failure_and_resets_on_success() -> None:
    now = [100.0]
    pacer = SendPacer(flush_interval=1.0, max_backoff=8.0, clock=lambda: now[0])
    assert not pacer.paused()
    pauses = []
    for _ in range(6):
        pacer.failed()
        pauses.append(pacer.paused_until - now[0])
    assert pauses == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    now[0] += 7.9
    assert pacer.paused()
    now[0] += 0.2
    assert not pacer.paused()
    pacer.failed()
    pacer.succeeded()
    assert not pacer.paused() and pacer.failures == 0


def test_after_a_refused_batch_the_next_send_waits_and_carries_a_normal_batch() -> None:
    now = [1000.0]
    with OTLPReceiver() as receiver:
        settings = load_settings(**_settings(receiver.url, flush_interval=1.0, batch_size=10))
        exporter = BatchExporter(settings, resource_attributes(None), clock=lambda: now[0], start_worker=False)
        previous = _client.replace_exporter(exporter)
        try:
            receiver.fail(*[Fault(500)] * 100)
            tracked = aither.wrap(Echo(), name="paced")
            tracked.predict(np.ones((1, 3)))
            exporter._cycle()  # the first send is refused: the pacer pauses sends for flush_interval
            assert len(receiver.requests) == 1
            for _ in range(50):
                tracked.predict(np.ones((1, 3)))
            exporter._cycle()  # paused: nothing is sent, however many records wait
            assert len(receiver.requests) == 1
            now[0] += 1.01
            exporter._cycle()  # the pause is over: one request with everything that waited
            assert len(receiver.requests) == 2
            assert len(receiver.requests[1].spans) == 50
        finally:
            _client.restore(previous)
            exporter.close(timeout=1)


_EXIT_SCRIPT = r"""
import socket, sys
import aither
hole = socket.socket()
hole.bind(("127.0.0.1", 0))
hole.listen(100)  # accepts connections (the kernel does) and never answers: a black hole
aither.init(api_key="aith_exit", base_url=f"http://127.0.0.1:{hole.getsockname()[1]}", exit_timeout=1.0,
            export_timeout=30.0, flush_interval=0.05)
for i in range(10):
    aither.log_prediction("m", {"x": i}, i)
"""


def test_records_left_at_exit_are_counted_and_reported_once() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "exit deadline" in line]
    assert len(lines) == 1, result.stderr
    assert "10 record(s) were not delivered" in lines[0]


def test_the_worker_needs_no_import_of_its_own() -> None:
    # Whatever the worker uses is imported by init(): a worker importing on its first run waits for the GIL
    # at every step while a busy caller holds it.
    code = (
        "import sys, aither\n"
        # A refused port and a short retry budget: the cycle gives up at once instead of retrying for a minute.
        "aither.init(api_key='k', base_url='http://127.0.0.1:9', max_retry_time=0.5)\n"
        "before = set(sys.modules)\n"
        "aither.log_prediction('m', {'x': 1}, 1)\n"
        "aither._client.get_client().exporter._cycle()\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]", result.stdout
