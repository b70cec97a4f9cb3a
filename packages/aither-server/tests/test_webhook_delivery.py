"""Webhook deliveries against hostile receivers and addresses (issue 23): an answer is read only up to its status
line, an attempt ends at one deadline however slowly a receiver drips, a slow receiver delays no other target,
the connection goes to the address the check accepted, and every address form that reaches a private one is
refused. Receivers listen on 127.0.0.x; the address table is checked, never connected to."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import PeakGrowth, Server
from webhook_receiver import Receiver

from aither_server.monitors import targets
from aither_server.monitors.store import Delivery, MonitorStore
from aither_server.monitors.targets import UnsafeTarget, check_target
from aither_server.monitors.webhooks import Event, SeenEvents, Sender, sign, verify

_HUGE_ANSWER = 96 * 1024 * 1024
_CHUNK = b"x" * 65536


class _RawReceiver:
    """A TCP server on ``host`` whose every connection is handed, request read, to ``answer(conn)``."""

    def __init__(self, answer: Callable[[socket.socket], None], host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[bytes] = []
        self._answer = answer
        self._sock = socket.create_server((host, port))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/hook"
        self._closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = next(
                int(v)
                for k, v in (line.split(b":", 1) for line in head.split(b"\r\n")[1:])
                if k.lower() == b"content-length"
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            try:
                self._answer(conn)
            except OSError:
                pass  # the sender hung up: what these receivers are for

    def close(self) -> None:
        self._closed.set()
        self._sock.close()


def _huge(conn: socket.socket) -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {_HUGE_ANSWER}\r\n\r\n".encode())
    for _ in range(_HUGE_ANSWER // len(_CHUNK)):
        conn.sendall(_CHUNK)


def _drip(conn: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\n" * 20:  # a byte every 0.2 s: about a minute for a status line
        conn.sendall(bytes([byte]))
        time.sleep(0.2)


@pytest.fixture
def monitors(server: Server) -> tuple[MonitorStore, str]:
    """The server's monitor store, and a monitor of it to log deliveries for."""
    created = server.http.post(
        "/api/v1/monitors",
        json={"name": "m", "model": "clf", "metric": "accuracy", "op": "<", "threshold": 0.8, "window": "1h"},
    )
    assert created.status_code == 201, created.text
    return MonitorStore(server.thread.store.engine), created.json()["id"]


def _event(monitor_id: str, url: str, event_id: str = "evt_1") -> Event:
    return Event(monitor_id, event_id, url, "whsec_test", {"event_id": event_id})


def _delivered(store: MonitorStore, monitor_id: str, count: int = 1, timeout: float = 30.0) -> list[Delivery]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = store.deliveries(monitor_id)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} deliveries, got {store.deliveries(monitor_id)}")


def test_a_huge_answer_is_read_only_to_its_status_line(monitors: tuple[MonitorStore, str]) -> None:
    store, monitor_id = monitors
    receiver = _RawReceiver(_huge)
    sender = Sender(store, allow_private=True, backoff_s=())
    try:
        with PeakGrowth() as growth:
            sender.send(_event(monitor_id, receiver.url))
            (delivery,) = _delivered(store, monitor_id)
        assert growth.bytes < 16 * 1024 * 1024, growth.bytes
        assert (delivery.ok, delivery.status_code) == (True, 200)
    finally:
        sender.stop()
        receiver.close()


def test_a_dripping_receiver_fails_at_the_deadline_and_delays_no_other_target(
    monitors: tuple[MonitorStore, str],
) -> None:
    store, monitor_id = monitors
    slow = _RawReceiver(_drip)
    sender = Sender(store, allow_private=True, backoff_s=(), timeout_s=1.0)
    try:
        with Receiver() as other:
            sender.send(_event(monitor_id, slow.url, "evt_slow"))
            sender.send(_event(monitor_id, other.url, "evt_other"))
            # The other target's delivery does not wait for the slow one's (a minute of dripping).
            other.wait_for(1)
            deliveries = {d.event_id: d for d in _delivered(store, monitor_id, 2, timeout=20)}
        assert deliveries["evt_other"].ok
        assert not deliveries["evt_slow"].ok
        assert deliveries["evt_slow"].error == "no answer within 1 s"
    finally:
        sender.stop()
        slow.close()


def test_the_connection_goes_to_the_address_the_check_accepted(
    monitors: tuple[MonitorStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding, on loopback: the name first resolves to 127.0.0.2 (taken as public here), then to
    # 127.0.0.1 (private). The check sees the first answer; a second lookup to connect would reach the second.
    store, monitor_id = monitors
    checked = _RawReceiver(lambda conn: conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n"), "127.0.0.2")
    victim = _RawReceiver(lambda conn: conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n"), "127.0.0.1", checked.port)
    answers = iter(["127.0.0.2"])
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            return real_getaddrinfo(next(answers, "127.0.0.1"), port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(targets, "_public", lambda address: address == "127.0.0.2")
    sender = Sender(store, allow_private=False, backoff_s=())
    try:
        sender.send(_event(monitor_id, f"http://rebind.test:{checked.port}/hook"))
        (delivery,) = _delivered(store, monitor_id)
        assert (delivery.ok, delivery.status_code) == (True, 204)
        assert len(checked.requests) == 1 and victim.requests == []
        assert b"\r\nHost: rebind.test:" in checked.requests[0]
    finally:
        sender.stop()
        checked.close()
        victim.close()


#: Every form of a loopback, private, link-local, metadata or reserved address, IPv4 and IPv6, and how it
#: reaches one: each refused by the check itself (nothing is ever sent to them).
_REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.1", "loopback, short form"),
    ("2130706433", "loopback, decimal"),
    ("0x7f000001", "loopback, hex"),
    ("0177.0.0.1", "loopback, octal"),
    ("0.0.0.0", "this host"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("169.254.169.254", "link-local: cloud metadata"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("[::1]", "IPv6 loopback"),
    ("[::]", "IPv6 unspecified"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped loopback"),
    ("[::ffff:169.254.169.254]", "IPv4-mapped metadata"),
    ("[::ffff:7f00:1]", "IPv4-mapped loopback, hex"),
    ("[::127.0.0.1]", "IPv4-compatible loopback"),
    ("[::8.8.8.8]", "IPv4-compatible (deprecated, any)"),
    ("[::ffff:0:127.0.0.1]", "IPv4-translated (SIIT) loopback"),
    ("[64:ff9b::a9fe:a9fe]", "NAT64 of the metadata address"),
    ("[64:ff9b::127.0.0.1]", "NAT64 of loopback"),
    ("[64:ff9b::10.0.0.1]", "NAT64 of a private address"),
    ("[64:ff9b:1::a9fe:a9fe]", "local-use NAT64"),
    ("[2002:a9fe:a9fe::1]", "6to4 of the metadata address"),
    ("[2002:7f00:1::1]", "6to4 of loopback"),
    ("[2002:c0a8:101::1]", "6to4 of a private address"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "Teredo"),
    ("[fec0::1]", "site-local (deprecated)"),
    ("[fc00::1]", "unique local"),
    ("[fd12:3456::1]", "unique local"),
    ("[fe80::1]", "link-local"),
    ("[fe80::1%25lo]", "link-local with a zone"),
    ("[ff02::1]", "multicast"),
    ("[100::1]", "discard-only"),
    ("[2001:db8::1]", "documentation"),
    ("localhost", "a name for loopback"),
]


@pytest.mark.parametrize(("host", "form"), _REFUSED, ids=[h for h, _ in _REFUSED])
def test_every_form_of_a_private_address_is_refused(host: str, form: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target(f"http://{host}/hook", allow_private=False)


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]", "[64:ff9b::808:808]"])
def test_public_addresses_and_their_forms_pass_the_check(host: str) -> None:
    check_target(f"http://{host}/hook", allow_private=False)


def test_seen_events_accepts_each_verified_event_once() -> None:
    body, now = b'{"event_id":"evt_1"}', time.time()
    header = sign("whsec_x", int(now), body)
    seen = SeenEvents()
    accepted = [verify("whsec_x", header, body, now=now) and seen.first("evt_1", now=now) for _ in range(3)]
    assert accepted == [True, False, False]
    assert seen.first("evt_2", now=now)
    # Past twice the window an id is forgotten; its signature is refused by verify() by then.
    assert seen.first("evt_1", now=now + 601)
    assert not verify("whsec_x", header, body, now=now + 601)
