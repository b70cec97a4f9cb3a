"""A page whose client has gone stops its work, and a stopping server stops the pages still being built (issue
23): the work runs step by step (a slice, a column, a feature's segments) and stops at the next step once nobody
waits for it, instead of finishing a page no one will read (500 columns: 11 s of a core) and holding the process
open after SIGTERM.

The model page is held inside its first drift column (a gate on ``_drift_entry``) until its work is told to
stop, so the tests depend on no timing: before the change nothing told it, and the gate ran to its deadline."""

from __future__ import annotations

import logging
import re
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import Server, start_server
from otlp_builders import KEY

import aither
from aither_server.drift import query as drift_query
from aither_server.model.cancellation import current

_COLUMNS = 40
_GATE_S = 60.0


class _Model:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame), dtype=int)


def _wide_model(url: str, name: str) -> None:
    aither.init(api_key=KEY, base_url=url, flush_interval=0.2)
    try:
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({f"c{i}": rng.normal(size=100) for i in range(_COLUMNS)})
        aither.log_reference(name, frame)
        aither.wrap(_Model(), name=name, sample_rows=10).predict(frame)
        assert aither.flush(30)
    finally:
        aither.close()


def _session_cookie(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        assert client.post("/login", data={"api_key": KEY, "csrf": token.group(1)}).status_code == 303
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


class _Gate:
    """Holds the page in its first drift column until its work's token is set (or ``_GATE_S`` passes)."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.calls = 0
        self.told_to_stop: bool | None = None
        self._entry = drift_query._drift_entry

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            token = current()
            self.reached.set()
            deadline = threading.Event()
            for _ in range(int(_GATE_S / 0.01)):
                if token is not None and token.cancelled:
                    break
                deadline.wait(0.01)
            self.told_to_stop = token is not None and token.cancelled
        return self._entry(*args, **kwargs)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if "stopped after" in line:
            self.seen.set()


@pytest.fixture
def records() -> Any:
    handler = _Records()
    logger = logging.getLogger("aither_server")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _open_page(url: str, cookie: str, path: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    client = socket.create_connection((host, int(port)))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
    return client


def test_a_model_page_whose_client_disconnects_stops_at_its_next_step(
    server: Server, records: _Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    _wide_model(server.url, "wide")
    cookie = _session_cookie(server.url)
    gate = _Gate()
    monkeypatch.setattr(drift_query, "_drift_entry", gate)
    client = _open_page(server.url, cookie, "/models/wide?range=24h")
    try:
        assert gate.reached.wait(_GATE_S)
    finally:
        client.close()  # the user closed the tab
    assert records.seen.wait(_GATE_S), records.lines
    assert gate.told_to_stop is True
    assert gate.calls == 1  # the other 39 columns, their sparklines and the diagnostics never ran
    assert any("page /models/wide stopped after" in line and "client disconnected" in line for line in records.lines)
    # The server still answers the same page to a client that waits for it.
    monkeypatch.setattr(drift_query, "_drift_entry", gate._entry)
    with httpx.Client(base_url=server.url, timeout=60, headers={"Cookie": cookie}) as http:
        page = http.get("/models/wide?range=24h")
    assert page.status_code == 200
    assert "c39" in page.text


def test_a_stopping_server_stops_the_pages_still_being_built(
    database: Path | str, records: _Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = start_server(database)
    client = None
    try:
        _wide_model(thread.url, "wide")
        cookie = _session_cookie(thread.url)
        gate = _Gate()
        monkeypatch.setattr(drift_query, "_drift_entry", gate)
        client = _open_page(thread.url, cookie, "/models/wide?range=24h")  # a client that waits on
        assert gate.reached.wait(_GATE_S)
        thread.stop(timeout=_GATE_S)  # as on SIGTERM: uvicorn's grace, then the request is cancelled
        assert records.seen.wait(_GATE_S), records.lines
        assert gate.told_to_stop is True
        assert gate.calls == 1
        assert any("server is stopping" in line for line in records.lines)
    finally:
        if client is not None:
            client.close()
        thread.stop()
