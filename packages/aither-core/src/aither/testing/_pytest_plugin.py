"""pytest fixture ``aither_capture``: an in-memory capture of what the code under test logs.

Registered through the ``pytest11`` entry point of aither-core, so it is available wherever aither is installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._capture import SpanCapture, capture


@pytest.fixture
def aither_capture() -> Iterator[SpanCapture]:
    """Capture aither's spans for the duration of one test; nothing is sent over the network."""
    with capture() as captured:
        yield captured
