from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from aither import _client
from aither.testing import closed_local_url


@pytest.fixture(autouse=True)
def _fresh_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from the environment's settings and leaves no client behind.

    Unless a test says otherwise, the SDK points at a closed port on 127.0.0.1: no test reaches the hosted
    default URL, even through a client created lazily.
    """
    monkeypatch.setenv("AITHER_BASE_URL", closed_local_url())
    previous = _client._client
    _client._client = None
    yield
    current = _client._client
    if current is not None and current is not previous:
        current.exporter.close(timeout=1.0)
    _client._client = previous


@pytest.fixture
def aither_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
