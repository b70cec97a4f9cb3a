"""Hostile traffic without a valid key (issue 23): no such request costs the server memory or takes from the
in-flight budget authenticated ingestion shares, no head or body is read past its cap, and no slow sender holds
a request open past the head or body deadline.

The server runs in this process, so its memory is this process's: the peak resident size is reset before each
hostile request (``/proc/self/clear_refs``) and read after it; the client streams its body from one small
buffer, so what grows is the server's."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PeakGrowth, Server, serve_at
from otlp_builders import KEY, prediction_span, protobuf_body

from aither_server import http_head

#: A body far over every cap below, which a server that buffers it cannot hide in its peak memory.
_HUGE = 48 * 1024 * 1024
#: What the server may grow by while refusing it (allocator noise, a thread's stack, the answer).
_GROWTH_BOUND = 16 * 1024 * 1024
_CHUNK = b"0" * 65536
_NOT_A_KEY = "aith_not_a_key_of_this_server_0123456789"


def _connect(server: Server) -> socket.socket:
    return socket.create_connection((server.thread.host, server.thread.port), timeout=60)


def _head(method: str, path: str, length: int, key: str | None, content_type: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
    ]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(sock: socket.socket) -> int:
    """The status code of the answer on ``sock`` (waiting up to its timeout)."""
    data = b""
    while b"\r\n" not in data:
        got = sock.recv(4096)
        if not got:
            break
        data += got
    return int(data.split(b" ", 2)[1])


def _post_huge(server: Server, path: str, key: str | None, content_type: str = "application/json") -> int:
    """POST a ``_HUGE`` body the way a hostile client does: the head, then, unless the server has answered
    within a few seconds, the whole body. Returns the answer's status."""
    sock = _connect(server)
    try:
        sock.sendall(_head("POST", path, _HUGE, key, content_type))
        answered, _, _ = select.select([sock], [], [], 10)
        if not answered:
            sent = 0
            try:
                while sent < _HUGE:
                    sock.sendall(_CHUNK)
                    sent += len(_CHUNK)
            except OSError:
                pass  # the server answered and closed mid-body
        return _status(sock)
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("path", "key"),
    [("/api/v1/monitors", None), ("/api/v1/api-keys", None), ("/api/v1/api-keys", _NOT_A_KEY)],
    ids=["monitors-no-key", "api-keys-no-key", "api-keys-wrong-key"],
)
def test_api_bodies_without_a_valid_key_are_refused_unread(server: Server, path: str, key: str | None) -> None:
    with PeakGrowth() as growth:
        status = _post_huge(server, path, key)
    assert growth.bytes < _GROWTH_BOUND, growth.bytes
    assert status == 401


@pytest.mark.parametrize("path", ["/login", "/logout"])
def test_dashboard_forms_over_their_cap_are_refused_unread(server: Server, path: str) -> None:
    with PeakGrowth() as growth:
        status = _post_huge(server, path, None, "application/x-www-form-urlencoded")
    assert growth.bytes < _GROWTH_BOUND, growth.bytes
    assert status == 413


@pytest.fixture
def guarded_server(database: Path | str) -> Iterator[Server]:
    """Small caps (the in-flight budget holds five 60 KiB bodies) and a one-second body deadline."""
    yield from serve_at(
        database,
        max_body_bytes=64 * 1024,
        max_decompressed_bytes=256 * 1024,
        max_inflight_bytes=320 * 1024,
        body_timeout_s=1.0,
    )


def test_api_body_over_the_cap_is_refused_unread_even_with_a_key(guarded_server: Server) -> None:
    with PeakGrowth() as growth:
        status = _post_huge(guarded_server, "/api/v1/monitors", KEY)
    assert growth.bytes < _GROWTH_BOUND, growth.bytes
    assert status == 413


def test_chunked_body_is_cut_off_at_the_cap(guarded_server: Server) -> None:
    sock = _connect(guarded_server)
    try:
        head = (
            "POST /api/v1/monitors HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        try:
            for _ in range(4):  # 256 KiB in 64 KiB chunks, past the 64 KiB cap
                sock.sendall(b"10000\r\n" + _CHUNK + b"\r\n")
        except OSError:
            pass
        assert _status(sock) == 413
    finally:
        sock.close()


def _stalled_ingest(server: Server, key: str, sent: int) -> socket.socket:
    """A /v1/traces request announcing more body than it sends."""
    sock = _connect(server)
    sock.sendall(_head("POST", "/v1/traces", sent + 1000, key, "application/x-protobuf") + b"\0" * sent)
    return sock


def test_stalled_ingestion_with_an_invalid_key_locks_nobody_out(guarded_server: Server) -> None:
    # Five stalled bodies of 60 KiB would hold 300 of the budget's 320 KiB, were they read before the key.
    stalled = [_stalled_ingest(guarded_server, _NOT_A_KEY, 60 * 1024) for _ in range(5)]
    try:
        for sock in stalled:
            sock.settimeout(30)
            assert _status(sock) == 401
        # 30 KB more would not fit beside the stalled 300 KiB, had they been read.
        response = guarded_server.ingest([prediction_span("clf", [1], features={"x": "y" * 30_000})])
        assert response.status_code == 200, response.text
    finally:
        for sock in stalled:
            sock.close()


def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_frees_its_bytes(guarded_server: Server) -> None:
    # Five authorised senders stall mid-body: each is answered 408 at the deadline, their bytes given back.
    stalled = [_stalled_ingest(guarded_server, KEY, 60 * 1024) for _ in range(5)]
    try:
        for sock in stalled:
            sock.settimeout(30)
            assert _status(sock) == 408
        # 30 KB more would not fit beside the stalled 300 KiB, had they kept them.
        big = [prediction_span("clf", [1], features={"x": "y" * 30_000})]
        assert guarded_server.ingest(big).status_code == 200
    finally:
        for sock in stalled:
            sock.close()


def test_a_huge_request_head_is_refused_431_without_being_kept(server: Server) -> None:
    sock = _connect(server)
    try:
        with PeakGrowth() as growth:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            try:
                for _ in range(768):  # 48 MiB of one header
                    sock.sendall(_CHUNK)
            except OSError:
                pass  # refused and closed mid-head
            status = _status(sock)
        assert growth.bytes < _GROWTH_BOUND, growth.bytes
        assert status == 431
    finally:
        sock.close()


def test_a_request_head_that_does_not_arrive_in_time_loses_its_connection(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_head, "HEAD_TIMEOUT_S", 1.0)
    sock = _connect(server)
    try:
        sock.settimeout(30)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        for _ in range(300):  # a byte every 0.05 s would go on for 15 s; the server closes it after 1
            try:
                sock.sendall(b"X")
                if select.select([sock], [], [], 0.05)[0]:
                    closed = sock.recv(100) == b""
                    break
            except OSError:
                closed = True
                break
        assert closed
    finally:
        sock.close()


def test_a_head_and_a_large_body_in_one_write_are_served(server: Server) -> None:
    # The head's cap counts the head only, not the body's first bytes read with it.
    body = protobuf_body([prediction_span("clf", [1], features={"x": "y" * 200_000})], compress=False)
    sock = _connect(server)
    try:
        sock.sendall(_head("POST", "/v1/traces", len(body), KEY, "application/x-protobuf") + body)
        assert _status(sock) == 200
    finally:
        sock.close()
