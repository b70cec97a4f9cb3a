"""Samplers of scalars: strings (cut to ``MAX_STRING_CHARS``), numbers, dates, bytes (their size only)."""

from __future__ import annotations

from ._captured import Captured, render_as_is

__all__ = ["MAX_STRING_CHARS", "capture_bytes", "capture_scalar", "capture_string", "cut_string", "render_string"]

MAX_STRING_CHARS = 1000


def cut_string(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_STRING_CHARS:
        return text, False
    return text[:MAX_STRING_CHARS], True


def render_string(data: tuple[str, bool]) -> object:
    text, truncated = data
    if not truncated:
        return text
    return {"sample": text, "_meta": {"type": "str", "truncated": True}}


def capture_string(value: str, rows: int, columns: int) -> Captured:
    cut = cut_string(value)
    return Captured(render_string, cut, 1, len(cut[0]))


def capture_scalar(value: object, rows: int, columns: int) -> Captured:
    return Captured(render_as_is, value, 1, 16)


def capture_bytes(value: bytes | bytearray | memoryview, rows: int, columns: int) -> Captured:
    return Captured(render_as_is, {"_type": "bytes", "size": len(value)}, 1, 16)
