"""aither-server under the hostile cases of issue 11 (c): one request of 16,000 labels, each for its own trace
and its own row, and reads made while it is stored. Prints a table.

    .venv/bin/python benchmarks/server_hostile.py [--labels 16000] [--rounds 3] [--engines sqlite,postgresql]
        [--no-reads]

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
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=16_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--no-reads", action="store_true", help="no second client reading during the labels")
    args = parser.parse_args()
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
