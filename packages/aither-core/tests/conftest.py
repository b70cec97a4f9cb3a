from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from aither import _client


@pytest.fixture(autouse=True)
def _fresh_client() -> Iterator[None]:
    """Each test starts from the environment's settings and leaves no client behind."""
    previous = _client._client
    yield
    current = _client._client
    if current is not None and current is not previous:
        current.exporter.close(timeout=1.0)
    _client._client = previous


@pytest.fixture
def aither_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
