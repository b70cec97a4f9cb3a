from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _local_only(aither_local_only: None) -> None:
    """Each test starts with no client and leaves none behind; nothing it logs leaves 127.0.0.1."""


@pytest.fixture
def aither_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
