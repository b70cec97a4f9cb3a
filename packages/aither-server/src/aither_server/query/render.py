"""Stored values rendered for an answer: JSON text back to data within a nesting limit, non-finite floats out."""

from __future__ import annotations

import json
import math

__all__ = ["MAX_RENDERED_DEPTH", "finite", "stored_json"]

#: Nesting rendered as is. Deeper values (legal JSON, stored as received) would break the response's
#: serialisation, so they are answered as the SDK's truncation marker, with a preview of their text.
MAX_RENDERED_DEPTH = 64
_PREVIEW_CHARS = 1000


def _depth_over(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def stored_json(text: str | None) -> object:
    """Stored JSON back to data. NaN/Infinity stay strings, as the wire contract writes them."""
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=str)
    except (ValueError, RecursionError):
        return text
    if _depth_over(value, MAX_RENDERED_DEPTH):
        size = len(text.encode("utf-8", errors="surrogatepass"))
        return {"_meta": {"truncated": True, "original_bytes": size}, "preview": text[:_PREVIEW_CHARS]}
    return value


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
