"""W3C trace and span ids, and the context variable behind ``last_trace_id``."""

from __future__ import annotations

import contextvars
import os
import random
import re

__all__ = [
    "LAST_TRACE_ID",
    "new_span_id",
    "format_trace_id",
    "new_trace_id",
    "parse_trace_id",
]

#: Trace id of the last prediction made in this thread or asyncio task, across all models. Ids are kept as
#: 128-bit integers on the prediction path and written as hex only when someone asks (``format_trace_id``).
LAST_TRACE_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar("aither_last_trace_id", default=None)

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_INVALID_TRACE_ID = "0" * 32


# A Mersenne Twister as the OpenTelemetry SDK's id generator: ids must be unique, not secret, and getrandbits is
# several times cheaper than os.urandom on the prediction path. A generator of our own, seeded from os.urandom:
# the module's shared one is what ``random.seed(42)`` (every reproducible training script) rewinds, and every run
# would then send the same trace ids, each one's spans taken for retries of the last run's. A forked child
# reseeds it, so parent and child never share a sequence.
_random = random.Random()
_getrandbits = _random.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)


def _nonzero_bits(bits: int) -> int:
    value = _getrandbits(bits)
    while not value:
        value = _getrandbits(bits)
    return value


def new_trace_id() -> int:
    """A random, valid (non-zero) W3C trace id, as a 128-bit integer."""
    return _nonzero_bits(128)


def format_trace_id(trace_id: int) -> str:
    """The API's form of a trace id: 32 lowercase hex characters."""
    return f"{trace_id:032x}"


def new_span_id() -> int:
    """A random, valid (non-zero) 64-bit span id."""
    return _nonzero_bits(64)


def parse_trace_id(trace_id: object) -> str:
    """Validate a trace id given by the user; return it in canonical lowercase hex.

    Raises ``ValueError`` for anything but 32 hex characters (not all zero), so a label with a corrupted id
    fails at the call site instead of silently joining nothing.
    """
    if not isinstance(trace_id, str):
        raise ValueError(f"trace_id must be a 32-character hex string, got {type(trace_id).__name__}")
    canonical = trace_id.strip().lower()
    if not _TRACE_ID.fullmatch(canonical) or canonical == _INVALID_TRACE_ID:
        shown = trace_id if len(trace_id) <= 64 else trace_id[:64] + "..."
        raise ValueError(f"malformed trace_id {shown!r}: expected 32 hex characters, not all zero")
    return canonical
