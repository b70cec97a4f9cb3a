"""aither-server ingestion throughput, side by side: decode only, decode + SQLite, and over HTTP. Prints a table.

    .venv/bin/python benchmarks/server_ingest.py [--spans 100000]

Spans look like what the SDK sends for a one-row sklearn predict: ml.* attributes, a 5-column feature sample,
gzip'd protobuf in requests of 100 spans (the SDK's default batch_size) and of 1,000 spans. One in four
predictions gets a label span. Target (issue 3): >= 20,000 spans/s into SQLite on a 2-core machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from aither_server import Store
from aither_server._otlp import PROTOBUF, decode_body, decompress

KEY = "aith_benchmark_key_0123456789"
TARGET = 20_000


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def make_bodies(n_spans: int, per_request: int) -> list[tuple[bytes, int]]:
    """Gzip'd requests, each with ``per_request`` spans (predictions, plus a label for every fourth)."""
    features = json.dumps(
        {
            "sample": [{"a": 1.5, "b": 2.25, "c": "x", "d": 4, "e": 0.125}],
            "_meta": {"type": "pandas.DataFrame", "shape": [1, 5], "columns": list("abcde"), "truncated": False},
        }
    )
    now = time.time_ns()
    bodies = []
    made = 0
    while made < n_spans:
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(_kv("service.name", "bench"))
        spans = rs.scope_spans.add().spans
        count = 0
        while count < per_request and made < n_spans:
            trace_id = os.urandom(16)
            start = now + made * 1000
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=os.urandom(8),
                    name="predict",
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + 250_000 + (made % 1000) * 1000,
                    attributes=[
                        _kv("ml.model.name", "bench-model"),
                        _kv("ml.model.version", "1"),
                        _kv("ml.environment", "bench"),
                        _kv("ml.framework", "sklearn"),
                        _kv("ml.method", "predict"),
                        _kv("ml.batch_size", 1),
                        _kv("ml.features", features),
                        _kv("ml.prediction", f"[{made % 2}]"),
                    ],
                )
            )
            count += 1
            made += 1
            if made % 4 == 0 and count < per_request and made < n_spans:
                spans.append(
                    Span(
                        trace_id=trace_id,
                        span_id=os.urandom(8),
                        name="label",
                        start_time_unix_nano=start,
                        end_time_unix_nano=start,
                        attributes=[_kv("ml.label", str(made % 3 % 2))],
                    )
                )
                count += 1
                made += 1
        bodies.append((gzip.compress(req.SerializeToString()), count))
    return bodies


def bench_decode(bodies: list[tuple[bytes, int]]) -> float:
    start = time.perf_counter()
    for body, _ in bodies:
        decode_body(decompress(body, "gzip", 64 << 20), PROTOBUF)
    return sum(n for _, n in bodies) / (time.perf_counter() - start)


def bench_store(bodies: list[tuple[bytes, int]], db: Path, drift: bool = False) -> float:
    """Decode and store; with ``drift``, also the ingest hook that feeds drift's hourly sketches (issue 12)."""
    from aither_server._drift_feeder import DriftFeeder
    from aither_server._drift_store import DriftStore, drift_engine

    store = Store(db)
    feeder = DriftFeeder(DriftStore(drift_engine(db))) if drift else None
    try:
        start = time.perf_counter()
        for body, _ in bodies:
            batch = decode_body(decompress(body, "gzip", 64 << 20), PROTOBUF)
            store.ingest(batch.predictions, batch.labels)
            if feeder is not None:
                feeder.observe(batch.predictions)
        if feeder is not None:
            feeder.close()  # the sketches' work counts: the last merge is inside the time
        return sum(n for _, n in bodies) / (time.perf_counter() - start)
    finally:
        if feeder is not None:
            feeder.store.dispose()
        store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_http(bodies: list[tuple[bytes, int]], db: Path, clients: int) -> float:
    """The real server in its own process (`python -m aither_server`), clients on threads of this one."""
    port = _free_port()
    env = dict(os.environ, AITHER_BOOTSTRAP_KEY=KEY)
    cmd = [sys.executable, "-m", "aither_server", "--port", str(port), "--db", str(db), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
        headers = {
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        }
        shares = [bodies[i::clients] for i in range(clients)]
        failures: list[int] = []

        def send(share: list[tuple[bytes, int]]) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                for body, _ in share:
                    status = http.post("/v1/traces", content=body).status_code
                    if status != 200:
                        failures.append(status)

        threads = [threading.Thread(target=send, args=(share,)) for share in shares]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        if failures:
            raise RuntimeError(f"{len(failures)} requests failed: {failures[:5]}")
        return sum(n for _, n in bodies) / elapsed
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    args = parser.parse_args()
    print(
        f"# aither-server ingestion: {args.spans:,} spans, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for per_request in (100, 1000):
            bodies = make_bodies(args.spans, per_request)
            tag = f"{per_request} spans/request"
            rows.append((f"decode only (protobuf + gzip), {tag}", bench_decode(bodies)))
            rows.append((f"decode + SQLite, in process, {tag}", bench_store(bodies, Path(tmp) / f"s{per_request}.db")))
            rows.append(
                (
                    f"decode + SQLite + drift sketches, in process, {tag}",
                    bench_store(bodies, Path(tmp) / f"d{per_request}.db", drift=True),
                )
            )
            rows.append(
                (f"HTTP, server process, 2 clients, {tag}", bench_http(bodies, Path(tmp) / f"h{per_request}.db", 2))
            )
    print(f"| measure | spans/s | target {TARGET:,} |")
    print("| --- | ---: | --- |")
    for name, rate in rows:
        verdict = "n/a (baseline)" if name.startswith("decode only") else ("met" if rate >= TARGET else "MISSED")
        print(f"| {name} | {rate:,.0f} | {verdict} |")


if __name__ == "__main__":
    main()
