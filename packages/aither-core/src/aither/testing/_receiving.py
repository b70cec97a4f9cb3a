"""Starting a local OTLP receiver and pointing the SDK at it: written once, for fixtures and tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .. import _client
from ._receiver import OTLPReceiver

__all__ = ["RECEIVING_DEFAULTS", "receiving"]

#: ``aither.init`` options for a test against a local receiver: short flush interval and retry times.
RECEIVING_DEFAULTS: dict[str, object] = {
    "api_key": "aith_test_key",
    "flush_interval": 0.05,
    "initial_backoff": 0.05,
    "max_backoff": 0.5,
    "max_retry_time": 5.0,
}


@contextmanager
def receiving(**init_options: object) -> Iterator[OTLPReceiver]:
    """A running :class:`OTLPReceiver` on 127.0.0.1, with ``aither.init`` pointed at it.

    ``init_options`` override :data:`RECEIVING_DEFAULTS`. The client stays installed after the block, so a test
    can still read ``aither.stats()``; ``aither_local_only`` (or the ``aither_receiver`` fixture) removes it.
    """
    with OTLPReceiver() as receiver:
        _client.init(**{**RECEIVING_DEFAULTS, **init_options, "base_url": receiver.url})
        yield receiver
