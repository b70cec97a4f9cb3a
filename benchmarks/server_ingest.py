"""aither-server ingestion throughput, side by side: decode only, decode + store, and over HTTP, on SQLite and
on PostgreSQL (one and two server processes on one database). Prints a table.

    .venv/bin/python benchmarks/server_ingest.py [--spans 100000] [--shape sdk|one-row] [--engines sqlite,postgresql]
        [--client sdk|httpx]

``--shape sdk`` (the default) is the SDK's default span for a batch predict: a 5x10 feature sample and a 5-row
prediction; ``one-row`` a one-row sklearn predict with a 5-column sample (the shape of the earlier tables).
Gzip'd protobuf in requests of 100 spans (the SDK's default batch_size) and of 1,000 spans, posted with the SDK's
own transport (``--client httpx``: with httpx, as the tables before 2026-11-28 were). One in four
predictions gets a label span. PostgreSQL runs in a throwaway cluster (the tests' ``pg_cluster``) with its
durable defaults (fsync, synchronous commits). Targets (issue 11), 100 spans/request, one client:
SQLite >= 24,000 spans/s, PostgreSQL >= 12,000 spans/s with one server process.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from aither_server import Store
from aither_server.ingest.body import PROTOBUF, decompress
from aither_server.ingest.spans import decode_body

KEY = "aith_benchmark_key_0123456789"
TARGETS = {"sqlite": 24_000, "postgresql": 12_000}


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def make_bodies(n_spans: int, per_request: int, shape: str = "sdk") -> list[tuple[bytes, int]]:
    """Gzip'd requests, each with ``per_request`` spans (predictions, plus a label for every fourth)."""
    rows = 5 if shape == "sdk" else 1
    if shape == "sdk":
        columns = [f"f{i}" for i in range(10)]
        sample = [{c: round(0.37 * r + 0.11 * i, 3) for i, c in enumerate(columns)} for r in range(rows)]
    else:
        columns = list("abcde")
        sample = [{"a": 1.5, "b": 2.25, "c": "x", "d": 4, "e": 0.125}]
    features = json.dumps(
        {
            "sample": sample,
            "_meta": {
                "type": "pandas.DataFrame",
                "shape": [rows, len(columns)],
                "columns": columns,
                "truncated": False,
            },
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
                        _kv("ml.batch_size", rows),
                        _kv("ml.features", features),
                        _kv("ml.prediction", json.dumps([(made + r) % 2 for r in range(rows)])),
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


def postgres_cluster() -> Any:
    """A throwaway, durable PostgreSQL cluster: the tests' ``pg_cluster``, shared with ``server_query``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "packages" / "aither-server" / "tests"))
    from pg_cluster import Cluster

    return Cluster(durable=True)


def bench_decode(bodies: list[tuple[bytes, int]]) -> float:
    start = time.perf_counter()
    for body, _ in bodies:
        decode_body(decompress(body, "gzip", 64 << 20), PROTOBUF)
    return sum(n for _, n in bodies) / (time.perf_counter() - start)


def bench_store(bodies: list[tuple[bytes, int]], db: Path | str, drift: bool = False) -> float:
    """Decode and store; with ``drift``, also the ingest hook that feeds drift's hourly sketches (issue 12)."""
    from aither_server.drift.feeder import DriftFeeder
    from aither_server.drift.store import DriftStore

    store = Store(db)
    feeder = DriftFeeder(DriftStore(store.engine)) if drift else None
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
            feeder.store.engine.dispose()
        store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path | str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(os.environ, AITHER_BOOTSTRAP_KEY=KEY)
    cmd = [sys.executable, "-m", "aither_server", "--port", str(port), "--db", str(db), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                _wait_settled(proc.pid)
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start")


def _cpu_seconds(pid: int) -> float:
    """CPU seconds used by ``pid`` and its children (Linux; 0 elsewhere)."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(child) for child in f.read().split()]
        for one in (pid, *children):
            with open(f"/proc/{one}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return total


def _wait_settled(pid: int, timeout_s: float = 30.0) -> None:
    """Until a started server and its drift process are idle (the drift process imports its modules for about
    a second after the server answers): what they do when starting is not counted as ingestion."""
    deadline = time.monotonic() + timeout_s
    used = _cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = _cpu_seconds(pid)
        if now - used < 0.02:
            return
        used = now


def _sender(url: str, headers: dict[str, str], client: str) -> tuple[Callable[[bytes], int], Callable[[], None]]:
    """(post a body and return its status, close): the SDK's own transport (``http.client`` on a kept-alive
    connection, what the SDK's exporter sends with), or httpx (the tables before 2026-11-28)."""
    if client == "sdk":
        from aither._export._transport import HttpTransport

        transport = HttpTransport(url, headers)
        return (lambda body: transport.post("/v1/traces", body, {}, 60.0).status), transport.close
    http = httpx.Client(base_url=url, headers=headers, timeout=60)
    return (lambda body: http.post("/v1/traces", content=body).status_code), http.close


def bench_http(
    bodies: list[tuple[bytes, int]], db: Path | str, clients: int, processes: int = 1, client: str = "sdk"
) -> float:
    """Real servers, each its own process (`python -m aither_server`) on one database; clients on threads of
    this one, client i sending to server i % processes."""
    servers = [start_server(db) for _ in range(processes)]
    try:
        headers = {
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        }
        shares = [bodies[i::clients] for i in range(clients)]
        failures: list[int] = []

        def send(share: list[tuple[bytes, int]], url: str) -> None:
            post, close = _sender(url, headers, client)
            try:
                for body, _ in share:
                    status = post(body)
                    if status != 200:
                        failures.append(status)
            finally:
                close()

        threads = [
            threading.Thread(target=send, args=(share, servers[i % processes][1])) for i, share in enumerate(shares)
        ]
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
        for proc, _ in servers:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--shape", choices=["sdk", "one-row"], default="sdk")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--per-request", default="100,1000", help="request sizes, comma-separated")
    parser.add_argument(
        "--client",
        choices=["sdk", "httpx"],
        default="sdk",
        help="what posts: the SDK's transport (http.client, kept alive; the default) or httpx",
    )
    args = parser.parse_args()
    engines = args.engines.split(",")
    print(
        f"# aither-server ingestion: {args.spans:,} spans ({args.shape} shape, {args.client} client), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n"
    )
    rows: list[tuple[str, str, float]] = []
    cluster = postgres_cluster() if "postgresql" in engines else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            n = 0

            def database(engine: str) -> Path | str:
                nonlocal n
                n += 1
                return Path(tmp) / f"db{n}.db" if engine == "sqlite" or cluster is None else cluster.create_database()

            for per_request in (int(x) for x in args.per_request.split(",")):
                bodies = make_bodies(args.spans, per_request, args.shape)
                tag = f"{per_request} spans/request"
                rows.append(("-", f"decode only (protobuf + gzip), {tag}", bench_decode(bodies)))
                for engine in engines:
                    rows.append((engine, f"decode + store, in process, {tag}", bench_store(bodies, database(engine))))
                    rows.append(
                        (
                            engine,
                            f"decode + store + drift sketches, in process, {tag}",
                            bench_store(bodies, database(engine), drift=True),
                        )
                    )
                    rows.append(
                        (
                            engine,
                            f"HTTP, 1 server process, 1 client, {tag}",
                            bench_http(bodies, database(engine), 1, client=args.client),
                        )
                    )
                    if engine == "postgresql":
                        rows.append(
                            (
                                engine,
                                f"HTTP, 2 server processes, 2 clients, {tag}",
                                bench_http(bodies, database(engine), 2, 2, client=args.client),
                            )
                        )
    finally:
        if cluster is not None:
            cluster.stop()
    print("| engine | measure | spans/s | target |")
    print("| --- | --- | ---: | --- |")
    for engine, name, rate in rows:
        target = TARGETS.get(engine)
        if target is None or "100 spans" not in name or "1 client" not in name:
            verdict = "-"
        else:
            verdict = f"{target:,}: {'met' if rate >= target else 'MISSED'}"
        print(f"| {engine} | {name} | {rate:,.0f} | {verdict} |")


if __name__ == "__main__":
    main()
