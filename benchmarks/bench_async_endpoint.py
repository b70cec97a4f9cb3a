"""An ``async def`` FastAPI endpoint that calls the model on the event loop, under 8 concurrent clients.

    .venv/bin/python benchmarks/bench_async_endpoint.py [seconds per block] [rounds] [clients]

Issue 20's hardest case for the caller: the model runs on the event loop's thread, so any time the exporter's
worker holds the GIL is time no request is served. Three variants, each served by uvicorn in a process of its
own, started afresh for every block and timed in alternating blocks against one OTLP receiver (its own
process, benchmarks/_receiver.py):

- ``bare``: the endpoint calls ``LogisticRegression.predict`` on the request's row;
- ``aither``: the same model wrapped by aither (default settings: lending is never done on an event loop's
  thread);
- ``otel sdk``: a hand-rolled OpenTelemetry span per call (bench_core.py's, same ``ml.*`` attributes) through a
  default ``BatchSpanProcessor`` and the OTLP/HTTP exporter.

The clients are one asyncio process of raw HTTP/1.1 keep-alive connections (no client library: its own cost
would dominate on 2 cores), each sending its next request as soon as its last answer arrived. Prints each
variant's requests/s and the request latency as the client saw it (p50, p99, p99.9, max), and how many of the
served predictions reached the receiver (the server's ``aither.stats()`` says what was dropped, if anything).
Target (issue 20): p99 at most 1.2x bare, every prediction delivered.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from array import array
from typing import Any

VARIANTS = ("bare", "aither", "otel sdk")
WARMUP_SECONDS = 1.0
BODY = json.dumps({"x": [0.1, -0.4, 1.2, 0.0, 0.7, -1.1, 0.3, 0.9, -0.2, 0.5]}).encode()
REQUEST = (
    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    + BODY
)


# -- the served process ----------------------------------------------------------------------------------------


def serve(variant: str, port: int, otlp_url: str) -> None:
    import numpy as np
    import uvicorn
    from fastapi import FastAPI
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    model = LogisticRegression().fit(rng.normal(size=(200, 10)), rng.integers(0, 2, 200))
    provider: Any = None
    if variant == "bare":
        predict = model.predict
    elif variant == "aither":
        import aither

        aither.init(api_key="aith_bench", base_url=otlp_url)
        predict = aither.wrap(model, name="endpoint").predict
    else:
        from bench_caller_latency import _otel

        predict, provider = _otel(otlp_url, model)

    served = 0
    app = FastAPI()

    @app.post("/predict")
    async def predict_endpoint(data: dict[str, list[float]]) -> dict[str, int]:
        nonlocal served
        served += 1
        return {"y": int(predict(np.array([data["x"]]))[0])}

    @app.get("/served")
    async def served_endpoint() -> dict[str, Any]:
        report: dict[str, Any] = {"served": served, "cpu_s": time.process_time()}
        if variant == "aither":
            import aither

            aither.flush(60)
            stats = aither.stats()
            report["dropped"] = stats["dropped"] or None
        elif provider is not None:
            provider.force_flush(60_000)
        return report

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the clients ---------------------------------------------------------------------------------------------


async def _client(port: int, until: int, warm_until: int, latencies: array[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter_ns
    try:
        while True:
            start = clock()
            if start >= until:
                return
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            await reader.readexactly(length)
            stop = clock()
            if start >= warm_until:
                latencies.append(stop - start)
    finally:
        writer.close()


async def _load(port: int, clients: int, seconds: float) -> array[int]:
    latencies: array[int] = array("q")
    now = time.perf_counter_ns()
    warm_until = now + int(WARMUP_SECONDS * 1e9)
    until = warm_until + int(seconds * 1e9)
    await asyncio.gather(*(_client(port, until, warm_until, latencies) for _ in range(clients)))
    return latencies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the served process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the served process never listened")


def _get(port: int, path: str) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    result: dict[str, Any] = json.loads(data.split(b"\r\n\r\n", 1)[1])
    return result


def block(variant: str, receiver: Any, seconds: float, clients: int) -> tuple[array[int], int, int, Any, float]:
    """One timed block: a fresh server process for the variant, warmed, loaded, then asked what it served and
    the process CPU time (every thread: the event loop's and the exporter's) it spent per request."""
    port = _free_port()
    here = os.path.dirname(os.path.abspath(__file__))
    receiver.ask("clear")
    process = subprocess.Popen([sys.executable, __file__, "--serve", variant, str(port), receiver.url], cwd=here)
    try:
        _wait_serving(port, process)
        before = _get(port, "/served")
        latencies = asyncio.run(_load(port, clients, seconds))
        report = _get(port, "/served")
        delivered = int(receiver.ask("count"))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    cpu_us = (report["cpu_s"] - before["cpu_s"]) * 1e6 / max(1, report["served"] - before["served"])
    return latencies, report["served"], delivered, report.get("dropped"), cpu_us


def _percentile(ordered: list[int], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main() -> None:
    from _receiver import ReceiverProcess

    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    receiver = ReceiverProcess()
    calls: dict[str, list[int]] = {name: [] for name in VARIANTS}
    served: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    delivered: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    elapsed: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        for round_ in range(rounds):
            order = VARIANTS[round_ % len(VARIANTS) :] + VARIANTS[: round_ % len(VARIANTS)]
            for variant in order:
                latencies, count, reached, dropped, cpu_us = block(variant, receiver, seconds, clients)
                cpu[variant].append(cpu_us)
                calls[variant] += latencies.tolist()
                served[variant] += count
                delivered[variant] += reached
                elapsed[variant] += seconds
                if dropped:
                    print(f"{variant}: dropped {dropped}")
    finally:
        receiver.close()
    load = os.getloadavg()
    print(
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{clients} clients · {seconds:g} s x {rounds} · load average {load[0]:.1f}"
    )
    print()
    print("| variant | requests/s | CPU µs/request | p50 ms | p99 ms | p99.9 ms | max ms | p99 / bare | delivered |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    bare_p99 = _percentile(sorted(calls["bare"]), 0.99)
    for variant in VARIANTS:
        ordered = sorted(calls[variant])
        p99 = _percentile(ordered, 0.99)
        share = "" if variant == "bare" else f"{delivered[variant] / max(1, served[variant]):.1%}"
        print(
            f"| {variant} | {len(ordered) / elapsed[variant]:,.0f} | {sorted(cpu[variant])[len(cpu[variant]) // 2]:,.0f} "
            f"| {_percentile(ordered, 0.5):.2f} | {p99:.2f} "
            f"| {_percentile(ordered, 0.999):.2f} | {ordered[-1] / 1e6:.1f} | {p99 / bare_p99:.2f} | {share} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
