"""aither-server under the hostile cases of issue 11 (c): one request of 16,000 labels, each for its own trace
and its own row, and reads made while it is stored. Prints a table.

    .venv/bin/python benchmarks/server_hostile.py [--labels 16000] [--rounds 3] [--engines sqlite,postgresql]
        [--no-reads]
    .venv/bin/python benchmarks/server_hostile.py --mixed [--seconds 20] [--engines sqlite]

``--mixed`` (issue 23): legitimate ingestion (100-prediction requests, one client) and dashboard reads (the
models page, signed in) for ``--seconds``, alone and then beside hostile senders: 20 sockets announcing 20 MiB
bodies with an invalid key, sending 9 MiB and stalling, unauthenticated 48 MiB bodies to ``POST /api/v1/monitors``, and
authorised gzip bodies of 4 MB of empty members. Prints the legitimate requests' latency and errors in both
runs and the server's peak resident memory.

16,000 one-row predictions are stored first (one request per 1,000); then each round posts one gzip request of
16,000 row labels for them (row i for trace i: the case a traces-by-rows IN product makes quadratic) while a
second client reads GET /api/v1/models in a loop. Targets: the label request answered in <= 1 s, each read
during it in <= 0.5 s. The server runs in a process of its own (`python -m aither_server`), as deployed. Each engine
gets its own database (PostgreSQL: ``server_ingest``'s throwaway cluster).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import select
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from server_ingest import KEY, postgres_cluster, start_server

LABEL_TARGET_S = 1.0
READ_TARGET_S = 0.5


def _attr(key: str, value: Any) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = value
    return kv


def _body(spans: list[Span]) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.spans.extend(spans)
    return gzip.compress(request.SerializeToString())


def _span(trace_id: bytes, name: str, attrs: dict[str, Any]) -> Span:
    now = time.time_ns()
    span = Span(trace_id=trace_id, span_id=os.urandom(8), name=name, start_time_unix_nano=now)
    span.end_time_unix_nano = now + 1_000_000
    span.attributes.extend(_attr(k, v) for k, v in attrs.items())
    return span


def _prediction(trace_id: bytes) -> Span:
    attrs = {"ml.model.name": "hostile", "ml.method": "predict", "ml.batch_size": 1, "ml.prediction": "[1]"}
    return _span(trace_id, "predict", attrs)


def _label(trace_id: bytes, row: int) -> Span:
    return _span(trace_id, "label", {"ml.label": json.dumps(row % 2), "ml.label.row": row})


def _read_loop(url: str, headers: dict[str, str], done: threading.Event, reads: list[float]) -> None:
    """GET /api/v1/models until ``done``, appending each call's seconds to ``reads``."""
    with httpx.Client(base_url=url, headers=headers, timeout=300) as reader:
        while not done.is_set():
            t0 = time.perf_counter()
            assert reader.get("/api/v1/models").status_code == 200
            reads.append(time.perf_counter() - t0)


def _no_reads(url: str, headers: dict[str, str], done: threading.Event, reads: list[float]) -> None:
    """``--no-reads``: the label request alone (the reads' own share of the server, measured apart)."""
    reads.append(0.0)
    done.wait()


def run(n: int, rounds: int, db: Path | str, reads_on: bool = True) -> list[tuple[float, float, int]]:
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": f"Bearer {KEY}"}
    results = []
    # The server in a process of its own, as deployed: these clients do not share its interpreter.
    server, url = start_server(db)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
            for _ in range(rounds):
                traces = [os.urandom(16) for _ in range(n)]
                for first in range(0, n, 1000):
                    body = _body([_prediction(t) for t in traces[first : first + 1000]])
                    assert http.post("/v1/traces", content=body).status_code == 200
                labels = _body([_label(t, i) for i, t in enumerate(traces)])
                reads: list[float] = []
                done = threading.Event()

                loop = _read_loop if reads_on else _no_reads
                reader = threading.Thread(target=loop, args=(url, headers, done, reads))
                reader.start()
                time.sleep(0.05)  # the reader is going before the label request starts
                t0 = time.perf_counter()
                response = http.post("/v1/traces", content=labels)
                elapsed = time.perf_counter() - t0
                done.set()
                reader.join()
                assert response.status_code == 200, response.text
                results.append((elapsed, max(reads), len(reads)))
    finally:
        server.terminate()
        server.wait(30)
    return results


_STALL_HEAD = (
    "POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aith_not_a_key_of_this_server_0000\r\n"
    "Content-Type: application/x-protobuf\r\nContent-Length: 20971520\r\n\r\n"
)


def _hostile(url: str, done: threading.Event) -> None:
    """Until ``done``: 20 stalled invalid-key ingestion sockets, kept open (reopened once answered), an
    unauthenticated 48 MiB monitor body, and authorised bodies of empty gzip members, in three threads."""
    host, port = url.rsplit("/", 1)[1].split(":")

    def stallers() -> None:
        # Each sends 9 of its 20 MiB and stalls: 20 of them hold 180 MiB, more than the default in-flight
        # budget (168 MiB), were their bodies read before their key.
        part = b"\0" * (9 * 1024 * 1024)
        held: list[socket.socket] = []
        while not done.is_set():
            while len(held) < 20:
                sock = socket.create_connection((host, int(port)))
                try:
                    sock.sendall(_STALL_HEAD.encode() + part)
                    held.append(sock)
                except OSError:  # answered and closed before the part was sent
                    sock.close()
                    time.sleep(0.01)
            readable, _, _ = select.select(held, [], [], 0.2)
            for sock in readable:  # answered (401) and closed by the server: open another
                sock.close()
                held.remove(sock)
        for sock in held:
            sock.close()

    def huge_monitors() -> None:
        chunk = b"0" * 65536
        while not done.is_set():
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(
                    b"POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 50331648\r\n\r\n"
                )
                try:
                    for _ in range(768):
                        sock.sendall(chunk)
                except OSError:
                    pass
                time.sleep(0.1)

    def members() -> None:
        body = gzip.compress(b"") * 200_000
        headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {KEY}",
        }
        with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
            while not done.is_set():
                try:
                    http.post("/v1/traces", content=body)
                except httpx.HTTPError:
                    pass  # the server stopping under it

    threads = [threading.Thread(target=f, daemon=True) for f in (stallers, huge_monitors, members)]
    for thread in threads:
        thread.start()
    done.wait()
    for thread in threads:
        thread.join(60)


def _legitimate(url: str, seconds: float) -> dict[str, list[float] | int]:
    """Ingestion and dashboard reads for ``seconds``: each request's seconds, and the errors."""
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": f"Bearer {KEY}"}
    out: dict[str, Any] = {"ingest": [], "ingest_errors": 0, "page": [], "page_errors": 0}
    end = time.monotonic() + seconds

    def ingest() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while time.monotonic() < end:
                body = _body([_prediction(os.urandom(16)) for _ in range(100)])
                t0 = time.perf_counter()
                try:
                    ok = http.post("/v1/traces", content=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                out["ingest"].append(time.perf_counter() - t0)
                out["ingest_errors"] += not ok

    def pages() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            token = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
            assert token is not None
            http.post("/login", data={"api_key": KEY, "csrf": token.group(1)})
            while time.monotonic() < end:
                t0 = time.perf_counter()
                try:
                    ok = http.get("/").status_code == 200
                except httpx.HTTPError:
                    ok = False
                out["page"].append(time.perf_counter() - t0)
                out["page_errors"] += not ok

    threads = [threading.Thread(target=f) for f in (ingest, pages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _peak_rss_mb(pid: int) -> float:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def mixed(db: Path | str, seconds: float) -> None:
    server, url = start_server(db)
    try:
        rows = []
        for hostile in (False, True):
            done = threading.Event()
            attacker = threading.Thread(target=_hostile, args=(url, done), daemon=True) if hostile else None
            if attacker is not None:
                attacker.start()
                time.sleep(1.0)  # the hostile senders are going first
            found = _legitimate(url, seconds)
            done.set()
            if attacker is not None:
                attacker.join(120)
            rows.append((hostile, found))
        peak = _peak_rss_mb(server.pid)
    finally:
        stopping = time.perf_counter()
        server.terminate()
        try:
            server.wait(30)
            stopped = f"stopped {time.perf_counter() - stopping:.1f} s after SIGTERM"
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            stopped = "still running 30 s after SIGTERM (killed)"
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {seconds:g} s each,"
        f" server peak RSS {peak:.0f} MB, {stopped}"
    )
    print(
        "| hostile senders | ingest requests | ingest p50 / p95 / max s | errors | page reads | page p50 / p95 / max s | errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for hostile, found in rows:
        cells = []
        for kind in ("ingest", "page"):
            times = sorted(found[kind])  # type: ignore[arg-type]
            cells += [
                str(len(times)),
                " / ".join(f"{_quantile(times, q):.3f}" for q in (0.5, 0.95, 1.0)),
                str(found[f"{kind}_errors"]),
            ]
        print(f"| {'yes' if hostile else 'no'} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=16_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--no-reads", action="store_true", help="no second client reading during the labels")
    parser.add_argument("--mixed", action="store_true", help="legitimate load beside the hostile senders of issue 23")
    parser.add_argument("--seconds", type=float, default=20.0, help="--mixed: seconds of load, with and without")
    args = parser.parse_args()
    if args.mixed:
        for engine in args.engines.split(","):
            if engine == "postgresql":
                cluster = postgres_cluster()
                try:
                    mixed(cluster.create_database(), args.seconds)
                finally:
                    cluster.stop()
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    mixed(Path(tmp) / "aither.db", args.seconds)
        return
    for engine in args.engines.split(","):
        if engine == "postgresql":
            cluster = postgres_cluster()
            try:
                results = run(args.labels, args.rounds, cluster.create_database(), not args.no_reads)
            finally:
                cluster.stop()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                results = run(args.labels, args.rounds, Path(tmp) / "aither.db", not args.no_reads)
        print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {engine}")
        print(
            f"| {args.labels:,} labels in one request | seconds (target <= {LABEL_TARGET_S}) |"
            f" slowest read during it (target <= {READ_TARGET_S}) | reads during it |"
        )
        print("|---|---|---|---|")
        for i, (elapsed, slowest, count) in enumerate(results, 1):
            print(f"| round {i} | {elapsed:.2f} | {slowest:.3f} | {count} |")
        print(
            f"| median | {statistics.median(r[0] for r in results):.2f} |"
            f" {statistics.median(r[1] for r in results):.3f} | |\n"
        )


if __name__ == "__main__":
    main()
