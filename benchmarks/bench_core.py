"""Core benchmarks, each side by side with its baseline in the same run. Prints a Markdown table.

    .venv/bin/python benchmarks/bench_core.py            # all
    .venv/bin/python benchmarks/bench_core.py overhead   # one: overhead, pandas, throughput, import, memory

Measures (issue 2, point 8):
  a. caller-thread cost added per wrapped predict (1-row numpy, LogisticRegression) vs bare predict and vs a
     hand-rolled OpenTelemetry SDK span (BatchSpanProcessor + OTLP/HTTP exporter) with the same ml.* attributes
  b. the same for pandas input of 10, 1,000 and 50,000 rows x 100 columns
  c. exporter throughput, queue to a local receiver, vs opentelemetry-exporter-otlp-proto-http on the same spans
  d. ``python -X importtime -c "import aither"``
  e. RSS after 1,000,000 predictions with the backend down
"""

from __future__ import annotations

import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _receiver import ReceiverProcess

import aither
from aither.testing import OTLPReceiver

ROWS: list[tuple[str, str, str, str]] = []
#: Settings that keep the worker asleep during timed loops (it exports when flushed afterwards).
QUIET: dict[str, Any] = {
    "max_queue_size": 1_000_000,
    "max_queue_bytes": 2**31,
    "batch_size": 1_000_000,
    "flush_interval": 3600.0,
}


def row(measure: str, result: str, baseline: str, verdict: str) -> None:
    ROWS.append((measure, result, baseline, verdict))
    print(f"  {measure}: {result} | {baseline} | {verdict}", flush=True)


def interleaved_us(functions: dict[str, Callable[[], Any]], block: int = 300, rounds: int = 30) -> dict[str, float]:
    """Best mean time per call of each function, measured in alternating blocks.

    Alternating keeps slow drifts of a shared machine (other processes, frequency changes) from landing on one
    side only; the best block is the least disturbed one, for every function alike.
    """
    for function in functions.values():
        for _ in range(block):
            function()
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            gc.collect()
            start = time.perf_counter_ns()
            for _ in range(block):
                function()
            best[name] = min(best[name], (time.perf_counter_ns() - start) / block / 1000)
    return best


def per_call_us(function: Callable[[], Any], calls: int, repeats: int = 7) -> float:
    """Best over repeats of the mean time per call, in microseconds.

    The best run is the one least disturbed by other processes on this shared 2-core machine; the same rule
    applies to the baseline measured beside it.
    """
    for _ in range(min(calls, 2000)):  # warm up caches, JIT-free but allocator and branch predictors
        function()
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter_ns() - start) / calls / 1000)
    return min(samples)


def _otel_tracer(endpoint: str) -> tuple[Any, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    # Export after the timed loops (as aither's settings below do): this measures the calling thread only,
    # not the GIL contention of a background exporter encoding at the same time.
    processor = BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint + "/v1/traces"),
        max_queue_size=1_000_000,
        max_export_batch_size=1_000_000,
        schedule_delay_millis=3_600_000,
    )
    provider.add_span_processor(processor)
    return provider.get_tracer("bench"), provider


def _otel_predict(tracer: Any, model: Any, X: Any, name: str = "clf") -> Any:
    """A hand-rolled OpenTelemetry integration on the calling thread: one span with the same ml.* attributes
    and, as issue 2 defines this baseline, a JSON-encoded 5x10 sample."""
    with tracer.start_as_current_span("predict") as span:
        output = model.predict(X)
        head = np.resize(np.asarray(X), (5, 10))
        sample = {
            "sample": [{str(j): v for j, v in enumerate(r)} for r in head.tolist()],
            "_meta": {"type": "numpy.ndarray", "shape": list(np.shape(X)), "truncated": False},
        }
        span.set_attributes(
            {
                "ml.model.name": name,
                "ml.framework": "sklearn",
                "ml.method": "predict",
                "ml.batch_size": len(X),
                "ml.features": json.dumps(sample),
                "ml.prediction": json.dumps(output.tolist()),
            }
        )
    return output


def bench_overhead(receiver: OTLPReceiver) -> None:
    from sklearn.linear_model import LogisticRegression

    print("a. caller-thread cost per predict, 1-row numpy, LogisticRegression", flush=True)
    rng = np.random.default_rng(0)
    X_train, y_train = rng.normal(size=(500, 10)), rng.integers(0, 2, 500)
    model = LogisticRegression().fit(X_train, y_train)
    x = X_train[:1]
    aither.init(**QUIET, api_key="aith_bench", base_url=receiver.url)
    tracked = aither.wrap(model, name="clf")
    tracer, provider = _otel_tracer(receiver.url)
    times = interleaved_us(
        {
            "bare": lambda: model.predict(x),
            "aither": lambda: tracked.predict(x),
            "otel": lambda: _otel_predict(tracer, model, x),
        }
    )
    bare, wrapped, otel = times["bare"], times["aither"], times["otel"]
    aither.flush(30)
    provider.shutdown()
    added, otel_added = wrapped - bare, otel - bare
    ratio = added / otel_added if otel_added > 0 else float("inf")
    row("bare `model.predict` (1 row)", f"{bare:.1f} µs", "", "")
    row(
        "aither added per predict (1 row)",
        f"{added:.1f} µs",
        f"OTel span adds {otel_added:.1f} µs",
        f"{ratio:.2f} of OTel (target <= 0.20): {'met' if ratio <= 0.2 else 'NOT met'}",
    )


def bench_pandas(receiver: OTLPReceiver) -> None:
    import pandas as pd

    print("b. caller-thread cost per predict, pandas input x 100 columns", flush=True)

    class FrameModel:
        """A model whose own cost is negligible and constant, so the difference is aither's."""

        def predict(self, frame: Any) -> Any:
            return 0

    aither.init(**QUIET, api_key="aith_bench", base_url=receiver.url)
    model = FrameModel()
    tracked = aither.wrap(model, name="frame")
    costs = {}
    for rows in (10, 1_000, 50_000):
        frame = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, 100)), columns=[f"f{i}" for i in range(100)])
        bare = per_call_us(lambda frame=frame: model.predict(frame), 2000)
        wrapped = per_call_us(lambda frame=frame: tracked.predict(frame), 2000)
        costs[rows] = wrapped - bare
        row(f"aither added per predict, pandas {rows:,} x 100", f"{costs[rows]:.1f} µs", f"bare {bare:.2f} µs", "")
        aither.flush(30)
    ratio = costs[50_000] / costs[10]
    row("50,000-row cost / 10-row cost", f"{ratio:.2f}x", "", f"target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}")


def bench_throughput() -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aither._capture import capture_features, capture_prediction, render
    from aither._export._worker import BatchExporter
    from aither._ids import new_span_id, new_trace_id
    from aither._json import dumps
    from aither._records import ModelIdentity, SpanRecord

    print("c. exporter throughput, queue -> local receiver (in its own process)", flush=True)
    count = 20_000
    # The same spans for both: a prediction on a 5 x 10 input. OpenTelemetry gets the exact JSON aither would
    # send, already encoded (a hand-rolled integration encodes on the caller's thread); aither gets the captured
    # sample and renders it on its worker, which is part of what is timed here.
    head = np.full((5, 10), 0.5)
    features_json = dumps(render(capture_features(head, 5, 10)))
    receiver = ReceiverProcess()
    try:
        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("bench")
        for i in range(count):
            with tracer.start_as_current_span("predict") as span:
                span.set_attributes(
                    {
                        "ml.model.name": "clf",
                        "ml.framework": "sklearn",
                        "ml.method": "predict",
                        "ml.batch_size": 5,
                        "ml.features": features_json,
                        "ml.prediction": json.dumps([i % 2] * 5),
                    }
                )
        otel_spans = memory.get_finished_spans()
        exporter = OTLPSpanExporter(endpoint=receiver.url + "/v1/traces", compression=Compression.Gzip)
        processor = BatchSpanProcessor(
            exporter, max_queue_size=count, max_export_batch_size=512, schedule_delay_millis=50
        )
        start = time.perf_counter()
        for span in otel_spans:
            processor.on_end(span)
        processor.force_flush(120_000)
        otel_elapsed = time.perf_counter() - start
        processor.shutdown()
        otel_received = int(receiver.ask("count"))
        receiver.ask("clear")

        aither.init(
            api_key="aith_bench",
            base_url=receiver.url,
            batch_size=512,
            flush_interval=0.05,
            max_queue_size=count,
            max_queue_bytes=2**31,
        )
        exporter_obj = aither._client.get_client().exporter
        assert isinstance(exporter_obj, BatchExporter)
        identity = ModelIdentity("clf", None, None, "sklearn")
        records = [
            SpanRecord(
                new_trace_id(),
                new_span_id(),
                "predict",
                1,
                2,
                identity,
                "predict",
                capture_features(head, 5, 10),
                capture_prediction(np.array([i % 2] * 5), 1000),
                5,
            )
            for i in range(count + 1)
        ]
        exporter_obj.submit(records.pop())
        assert aither.flush(30)
        receiver.ask("clear")
        start = time.perf_counter()
        for record in records:
            exporter_obj.submit(record)
        assert aither.flush(120)
        aither_elapsed = time.perf_counter() - start
        aither_received = int(receiver.ask("count"))
    finally:
        receiver.close()
    assert aither_received == count, aither_received
    assert otel_received == count, otel_received
    ours, theirs = count / aither_elapsed, count / otel_elapsed
    row(
        "exporter throughput, 5x10 sample, gzip, 512/batch",
        f"{ours:,.0f} spans/s",
        f"opentelemetry-exporter-otlp-proto-http {theirs:,.0f} spans/s",
        f"{ours / theirs:.1f}x (target >= 2x): {'met' if ours / theirs >= 2 else 'NOT met'}",
    )


def bench_import() -> None:
    print("d. import time", flush=True)
    totals = []
    for _ in range(7):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import aither"], capture_output=True, text=True, check=True
        ).stderr
        totals.append(int(re.findall(r"\|\s+(\d+) \| aither$", out, flags=re.MULTILINE)[-1]) / 1000)
    baseline = []
    for _ in range(7):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import json"], capture_output=True, text=True, check=True
        ).stderr
        baseline.append(int(re.findall(r"\|\s+(\d+) \| json$", out, flags=re.MULTILINE)[-1]) / 1000)
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, aither; print(sorted(m for m in ('numpy','pandas','polars','torch',"
            "'tensorflow','sklearn','transformers','tinygrad') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ms = statistics.median(totals)
    row(
        "`import aither` (cumulative, -X importtime)",
        f"{ms:.1f} ms",
        f"`import json` {statistics.median(baseline):.1f} ms",
        f"target <= 50 ms: {'met' if ms <= 50 else 'NOT met'}; frameworks imported: {check}",
    )


def bench_memory() -> None:
    print("e. RSS after 1,000,000 predictions, backend down", flush=True)
    code = r"""
import gc, os, resource, socket, time
import numpy as np
import aither

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
queue_bytes = 32 * 2**20
aither.init(api_key="aith_bench", base_url=f"http://127.0.0.1:{port}", max_queue_bytes=queue_bytes,
            max_retry_time=3600, initial_backoff=0.05, max_backoff=0.5)

class Model:
    def predict(self, X):
        return X[:, 0]

tracked = aither.wrap(Model(), name="mem")
x = np.ones((1, 10))
for _ in range(1000):
    tracked.predict(x)
gc.collect()
before = rss_mb()
for _ in range(1_000_000):
    tracked.predict(x)
gc.collect()
after = rss_mb()
stats = aither.stats()
print(before, after, queue_bytes / 2**20, stats["queued"], stats["dropped"].get("queue_full", 0))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=900)
    before, after, queue_mb, queued, dropped = out.stdout.split()
    growth = float(after) - float(before)
    limit = float(queue_mb) + 20
    row(
        "RSS growth after 1,000,000 predictions, backend down",
        f"{growth:.1f} MB",
        f"queue bound {float(queue_mb):.0f} MB + 20 MB = {limit:.0f} MB",
        f"{'met' if growth <= limit else 'NOT met'} ({int(float(dropped)):,} of {int(float(queued)):,} dropped as queue_full)",
    )


def main() -> None:
    which = set(sys.argv[1:]) or {"overhead", "pandas", "throughput", "import", "memory"}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with OTLPReceiver() as receiver:
        if "overhead" in which:
            bench_overhead(receiver)
        if "pandas" in which:
            bench_pandas(receiver)
    if "throughput" in which:
        bench_throughput()
    if "import" in which:
        bench_import()
    if "memory" in which:
        bench_memory()
    print("\n| measure | aither | baseline (same run) | target |\n| --- | --- | --- | --- |")
    for measure, result, baseline, verdict in ROWS:
        print(f"| {measure} | {result} | {baseline} | {verdict} |")


if __name__ == "__main__":
    main()
