"""pytest fixtures, registered through aither-core's ``pytest11`` entry point wherever aither is installed.

* ``aither_capture``: an in-memory capture of what the code under test logs (no network).
* ``aither_receiver``: a real OTLP/HTTP receiver on 127.0.0.1 with aither initialised to send to it.
* ``aither_server``: a real aither server (``aither-server`` must be installed) with aither initialised to
  send to it, for end-to-end tests of drift and quality.
* ``aither_local_only``: a fresh client per test, pointed at a closed port on 127.0.0.1 unless the test says
  otherwise, so nothing a test logs leaves the machine. Not autouse (this plugin loads wherever aither is
  installed); a suite enables it for all its tests with an autouse fixture in its ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .. import _client
from ._capture import SpanCapture, capture
from ._network import closed_local_url
from ._receiver import OTLPReceiver
from ._receiving import receiving
from ._server import LiveServer, live_server


@pytest.fixture
def aither_local_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test starts with no client, its SDK points at a closed local port, and it leaves no client behind.

    A client created lazily (the first ``aither.wrap`` call) reads ``AITHER_BASE_URL``, so it never reaches the
    hosted default; a test that sends somewhere (``aither_receiver``, ``aither.init(base_url=...)``) says so.
    """
    monkeypatch.setenv("AITHER_BASE_URL", closed_local_url())
    previous = _client._client
    _client._client = None
    try:
        yield
    finally:
        current = _client._client
        if current is not None and current is not previous:
            current.exporter.close(timeout=0.0)  # its backend is a closed port: nothing is waiting to be delivered
        _client._client = previous


@pytest.fixture
def aither_capture() -> Iterator[SpanCapture]:
    """Capture aither's spans for the duration of one test; nothing is sent over the network."""
    with capture() as captured:
        yield captured


@pytest.fixture
def aither_receiver() -> Iterator[OTLPReceiver]:
    """A local OTLP receiver, with ``aither.init`` pointed at it (short flush interval and retry times)."""
    previous = _client.get_client()
    try:
        with receiving() as receiver:
            yield receiver
    finally:
        current = _client.get_client()
        if current is not previous:
            current.exporter.close(timeout=2.0)
        _client.restore(previous)


@pytest.fixture
def aither_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real aither server on 127.0.0.1 (a SQLite file in ``tmp_path``), with ``aither.init`` pointed at it."""
    with live_server(tmp_path) as server:
        yield server
