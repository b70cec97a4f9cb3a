from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow loads: keep test output readable

import pytest


@pytest.fixture(autouse=True)
def _local_only(aither_local_only: None) -> None:
    """Each test starts with no client and leaves none behind; nothing it logs leaves 127.0.0.1."""
