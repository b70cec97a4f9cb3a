"""The caller's per-call latency of a tight 1-row ``predict`` loop, with its telemetry delivered as it runs.

    .venv/bin/python benchmarks/bench_caller_latency.py [seconds per block] [rounds]

Four variants, each in its own process (so that one's background worker never runs during another's block),
timed in alternating blocks against one OTLP receiver in a process of its own (benchmarks/_receiver.py):

- ``bare``: ``LogisticRegression.predict`` on one row;
- ``aither lending``: the same model wrapped by aither, default settings (``gil_lending`` on);
- ``aither no lending``: the same with ``gil_lending=False``;
- ``otel sdk``: a hand-rolled OpenTelemetry span per call (bench_core.py's, with the same ``ml.*`` attributes)
  through a default ``BatchSpanProcessor`` and the OTLP/HTTP exporter.

Prints p50, p99, p99.9 and max of every call of every block of a variant, in µs, and the fraction of the calls
whose span reached the receiver; then, with lending on, how many calls lent and the worker's slices: its CPU
time from taking the GIL to giving it back at a pause (CPU time, which the machine's load does not stretch). Targets (issue 20): every prediction delivered, with the caller's p99 at most
0.3 ms and p99.9 at most 1 ms above bare.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from array import array
from typing import Any

VARIANTS = ("bare", "aither lending", "aither no lending", "otel sdk")
WARMUP_CALLS = 200


def _model() -> tuple[Any, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 10)), rng.integers(0, 2, 200)
    return LogisticRegression().fit(X, y), X[:1]


def _otel(url: str, model: Any) -> tuple[Any, Any]:
    from bench_core import _otel_predict
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces")))
    tracer = provider.get_tracer("bench")
    return (lambda X: _otel_predict(tracer, model, X)), provider


def _measure_slices() -> array[int]:
    """Record the worker's CPU time (ns) of each slice that ended in a pause: what a caller waiting for the GIL
    waited for, at most, as CPU time."""
    from aither._export import _gil_lending

    measured = array("q")
    pause = _gil_lending.GilLending.pause

    def timed_pause(self: Any) -> None:
        pauses = self.pauses
        ran = time.thread_time_ns() - int(self._slice_start * 1e9)
        pause(self)
        if self.pauses != pauses:
            measured.append(ran)

    _gil_lending.GilLending.pause = timed_pause  # type: ignore[method-assign]
    return measured


def block(variant: str, url: str, seconds: float) -> None:
    """One timed block in this process: prints the call count, then writes the latencies (ns) to stdout's file."""
    model, x = _model()
    provider = None
    if variant == "bare":
        predict = model.predict
    elif variant.startswith("aither"):
        import aither

        aither.init(api_key="aith_bench", base_url=url, gil_lending=variant == "aither lending")
        predict = aither.wrap(model, name="latency").predict
        slices = _measure_slices()
    else:
        predict, provider = _otel(url, model)
    for _ in range(WARMUP_CALLS):
        predict(x)
    if variant.startswith("aither"):
        import aither

        aither.flush(30)
    elif provider is not None:
        provider.force_flush()
    latencies = array("q")
    clock = time.perf_counter_ns
    end = clock() + int(seconds * 1e9)
    while True:
        start = clock()
        predict(x)
        stop = clock()
        latencies.append(stop - start)
        if stop >= end:
            break
    if variant.startswith("aither"):
        import aither

        lending = aither._client.get_client().exporter._lending  # type: ignore[attr-defined]
        report = {"lends": lending.lends, "misses": lending.misses, "pauses": lending.pauses, "calls": len(latencies)}
        print(json.dumps({**report, "slices_ns": slices.tolist()}), file=sys.stderr)
        aither.flush(60)
    elif provider is not None:
        provider.force_flush(60_000)
    sys.stdout.buffer.write(latencies.tobytes())
    sys.stdout.flush()


def _percentile(ordered: list[int], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def main() -> None:
    from _receiver import ReceiverProcess

    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    receiver = ReceiverProcess()
    here = os.path.dirname(os.path.abspath(__file__))
    calls: dict[str, list[int]] = {name: [] for name in VARIANTS}
    delivered: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    lends: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    slices: list[int] = []
    try:
        for round_ in range(rounds):
            order = VARIANTS[round_ % len(VARIANTS) :] + VARIANTS[: round_ % len(VARIANTS)]
            for variant in order:
                receiver.ask("clear")
                done = subprocess.run(
                    [sys.executable, __file__, "--block", variant, receiver.url, str(seconds)],
                    capture_output=True,
                    cwd=here,
                    check=True,
                )
                for line in done.stderr.decode().splitlines():
                    if line.startswith('{"lends"'):
                        report = json.loads(line)
                        lends[variant] += report["lends"]
                        if variant == "aither lending":
                            slices += report.pop("slices_ns")
                        print(f"{variant}: {json.dumps({k: v for k, v in report.items() if k != 'slices_ns'})}")
                    else:
                        print(f"{variant}: {line}", file=sys.stderr)
                latencies = array("q")
                latencies.frombytes(done.stdout)
                calls[variant] += latencies.tolist()
                # The receiver was cleared before the block's process started: its warm-up spans are counted out.
                delivered[variant] += int(receiver.ask("count")) - (WARMUP_CALLS if variant != "bare" else 0)
    finally:
        receiver.close()
    print(f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · {seconds:g} s x {rounds}")
    print()
    print("| variant | calls | p50 µs | p99 µs | p99.9 µs | max µs | delivered |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for variant in VARIANTS:
        ordered = sorted(calls[variant])
        share = "" if variant == "bare" else f"{min(delivered[variant], len(ordered)) / len(ordered):.1%}"
        print(
            f"| {variant} | {len(ordered):,} | {_percentile(ordered, 0.5):.0f} | {_percentile(ordered, 0.99):.0f} "
            f"| {_percentile(ordered, 0.999):.0f} | {ordered[-1] / 1000:.0f} | {share} |"
        )
    print()
    lent = lends["aither lending"]
    print(f"lending on: {lent:,} calls lent ({lent / max(1, len(calls['aither lending'])):.1%})", end="")
    if slices:
        ordered = sorted(slices)
        print(
            f"; worker slices ended by a pause: {len(ordered):,}, CPU p50 {_percentile(ordered, 0.5):.0f} µs, "
            f"p99 {_percentile(ordered, 0.99):.0f} µs, max {ordered[-1] / 1000:.0f} µs"
        )
    else:
        print()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--block":
        block(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        main()
