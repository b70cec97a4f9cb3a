"""Hostile-but-authorised traffic (issue 11): requests that are legal on the wire must neither stall the
server, lose other spans, answer 500 nor store what cannot be read back."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, serve_at
from otlp_builders import KEY, headers, label_span, new_trace_id, parse_response, parse_status, prediction_span

_HUGE_INT = "1" + "0" * 399


def _rejections(response: httpx.Response) -> tuple[int, str]:
    assert response.status_code == 200, response.text
    partial = parse_response(response.content).partial_success
    return partial.rejected_spans, partial.error_message


def _vm_steps(server: Server, spans: list[object]) -> int:
    """The work the database does to store one request, not its time: SQLite's virtual-machine steps (in units
    of 100), or the rows PostgreSQL's scans returned and fetched (``pg_stat_database``)."""
    if server.thread.store.dialect == "postgresql":
        return _rows_scanned(server, spans)
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    writer = server.thread.store._writer
    writer.set_progress_handler(tick, 100)  # type: ignore[attr-defined]
    try:
        assert server.ingest(spans).status_code == 200
    finally:
        writer.set_progress_handler(None, 0)  # type: ignore[attr-defined]
    return steps[0]


def _rows_scanned(server: Server, spans: list[object]) -> int:
    store = server.thread.store

    def scanned() -> int:
        with store._write_lock:  # the writer's statistics reach the shared counters when it says so
            store._writer.execute("SELECT pg_stat_force_next_flush()").fetchall()
            store._writer.execute("SELECT 1").fetchall()
        found = server.sql("SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = current_database()")
        return int(found[0][0])

    # The plans PostgreSQL picks at scale (index probes): on these small tables a full scan is cheaper, and
    # would make the count follow the table's size instead of the request's.
    plans = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")
    with store._write_lock:
        for setting in plans:
            store._writer.execute(f"SET {setting} = off")
    try:
        before = scanned()
        assert server.ingest(spans).status_code == 200
        return scanned() - before
    finally:
        with store._write_lock:
            for setting in plans:
                store._writer.execute(f"RESET {setting}")


def test_label_joins_cost_grows_linearly_with_the_request(server: Server) -> None:
    # Each label is for its own trace and its own row: the case an IN (traces) x IN (rows) product makes
    # quadratic. Rows past the prediction's end are kept as unjoined labels; the join work is what counts.
    def round_steps(n: int) -> int:
        traces = [new_trace_id() for _ in range(n)]
        server.ingest([prediction_span("clf", [1], trace_id=t) for t in traces])
        return _vm_steps(server, [label_span(t, 1, row=i) for i, t in enumerate(traces)])

    small, large = round_steps(400), round_steps(1600)
    # Linear work gives a ratio near 4; the cross-product gave 16.
    assert large < 7 * small, (small, large)


def test_reads_never_wait_for_the_writer(server: Server) -> None:
    store = server.thread.store
    holding, release = threading.Event(), threading.Event()

    def hold_writer() -> None:
        with store.write():
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold_writer)
    holder.start()
    try:
        assert holding.wait(30)
        # A read (it counts an API call) answers while a write transaction is open.
        assert server.http.get("/api/v1/models", timeout=20).status_code == 200
        assert server.http.get("/api/v1/org/usage", timeout=20).status_code == 200
    finally:
        release.set()
        holder.join()
    # The calls were counted all the same.
    assert server.get("/api/v1/org/usage")["api_calls"] >= 3


def test_poison_numbers_are_rejected_per_span_with_a_reason(server: Server) -> None:
    trace = new_trace_id()
    good = prediction_span("clf", [1, 0], trace_id=trace)
    spans = [
        good,
        prediction_span("clf", None, raw_prediction=f"[{_HUGE_INT}]"),
        prediction_span("reg", None, raw_prediction="[1e200]"),
        label_span(trace, json.loads(_HUGE_INT), row=0),
        label_span(trace, 1e200, row=1),
    ]
    rejected, message = _rejections(server.ingest(spans))
    assert rejected == 4
    assert "number" in message
    assert server.metrics("clf")["predictions"] == 2


def test_large_regression_errors_relabel_without_breaking_the_rollups(server: Server) -> None:
    trace = new_trace_id()
    server.ingest([prediction_span("reg", [1e90, 0.5], trace_id=trace, method="predict")])
    for value in (0.5, -1e90, 2.5, 1e90):
        assert _rejections(server.ingest([label_span(trace, value, row=0)]))[0] == 0
    metrics = server.metrics("reg")
    assert metrics["labels"] == 1 and metrics["mae"] == 0.0


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def test_deeply_nested_values_stay_readable(server: Server) -> None:
    trace = new_trace_id()
    response = server.ingest(
        [prediction_span("deep", None, trace_id=trace, features=json.loads(_nested(900)), raw_prediction=_nested(300))]
    )
    assert response.status_code == 200
    found = server.get(f"/api/v1/predictions/{trace.hex()}")
    assert found["features"]["_meta"]["truncated"] is True
    assert found["prediction"]["_meta"]["truncated"] is True
    assert server.get("/api/v1/models/deep/predictions")["data"][0]["features"]["_meta"]["truncated"] is True


def test_claimed_rows_are_bounded_by_what_the_span_carries(server: Server) -> None:
    claim = json.dumps({"values": [1, 0], "_meta": {"truncated": True, "total_rows": 10**9}})
    traces = [new_trace_id() for _ in range(20)]
    server.ingest([prediction_span("claims", None, trace_id=t, raw_prediction=claim) for t in traces])
    # Rows are written when labelled: every claimed row labelled, and rows past a thousand times the claim.
    server.ingest([label_span(t, [1] * 50) for t in traces])
    server.ingest([label_span(t, 1, row=row) for t in traces for row in (2, 500, 10**9)])
    stored = server.sql("SELECT count(*) FROM prediction_rows")[0][0]
    assert stored == 40  # the two rows each span carries, nothing for the rows it only claims
    assert server.metrics("claims")["labels"] == 40
    assert server.get("/api/v1/org/usage")["predictions"] <= 20 * 1_000_000


@pytest.fixture
def capped_server(database: Path | str) -> Iterator[Server]:
    yield from serve_at(
        database,
        max_body_bytes=64 * 1024,
        max_decompressed_bytes=256 * 1024,
        max_inflight_bytes=320 * 1024,
        max_attribute_bytes=16 * 1024,
    )


def test_attributes_over_the_cap_are_stored_truncated_as_the_sdk_marks_them(capped_server: Server) -> None:
    trace = new_trace_id()
    features = {"sample": ["x" * 40_000]}
    spans = [prediction_span("big", [1], trace_id=trace, features=features), label_span(trace, "y" * 40_000)]
    assert _rejections(capped_server.ingest(spans))[0] == 0
    found = capped_server.get(f"/api/v1/predictions/{trace.hex()}")
    meta = found["features"]["_meta"]
    assert meta == {"truncated": True, "original_bytes": len(json.dumps(features))}
    assert json.dumps(features).startswith(found["features"]["preview"])
    assert found["labels"]["0"]["_meta"]["truncated"] is True


def _hang(server: Server, sent: int) -> socket.socket:
    """A request whose body stops short of its Content-Length: the server holds ``sent`` bytes of it."""
    host, port = server.thread.host, int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection((host, port))
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/x-protobuf\r\nContent-Length: {sent + 1000}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"\0" * sent)
    return sock


def test_in_flight_bytes_over_the_cap_answer_503_with_retry_after(capped_server: Server) -> None:
    hung = [_hang(capped_server, 60 * 1024) for _ in range(2)]
    try:
        body = gzip.compress(b"\0" * (250 * 1024))
        status = 0
        for _ in range(100):  # until the server has read the hanging bodies (it reads them as they come)
            response = capped_server.raw.post("/v1/traces", content=body, headers=headers())
            status = response.status_code
            if status == 503:
                break
            threading.Event().wait(0.05)
        assert status == 503
        assert response.headers["Retry-After"].isdigit()
        assert parse_status(response.content).code == 14  # UNAVAILABLE
    finally:
        for sock in hung:
            sock.close()
    # Once they are gone, the same request is answered (a 400: zeros are not a valid OTLP request).
    for _ in range(100):
        status = capped_server.raw.post("/v1/traces", content=body, headers=headers()).status_code
        if status != 503:
            break
        threading.Event().wait(0.05)
    assert status == 400
