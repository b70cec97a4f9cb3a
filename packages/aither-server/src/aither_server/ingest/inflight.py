"""A cap on the request bytes the server holds at once (bodies as received, and as decompressed).

Each request is bounded on its own (body and decompression limits), but without a shared cap a few hundred
maximum-size requests in flight would each hold their own bytes and the memory their decoding builds. A
request that would take the total over the cap is answered 503 with Retry-After, which the SDK and the
OpenTelemetry exporters retry later; nothing of it is stored.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["ByteBudget", "Held"]


class Held:
    """The bytes one request holds; given back together when the request ends."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.bytes = 0

    def take(self, n: int) -> bool:
        """Hold ``n`` more bytes; ``False`` (holding nothing more) when the budget has no room for them."""
        if self._budget._take(n):
            self.bytes += n
            return True
        return False


class ByteBudget:
    """Bytes held by all requests in flight, up to ``limit``. Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def _take(self, n: int) -> bool:
        with self._lock:
            if self._used + n > self.limit:
                return False
            self._used += n
            return True

    @contextlib.contextmanager
    def hold(self) -> Iterator[Held]:
        """A request's holding, given back when the block ends (whatever it ends with)."""
        held = Held(self)
        try:
            yield held
        finally:
            with self._lock:
                self._used -= held.bytes
