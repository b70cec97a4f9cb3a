"""OTLP/HTTP request bodies before decoding: media types, Content-Encoding undone within a byte limit, and the
protobuf or JSON request message parsed. Failures that make the whole request unusable raise
:class:`BodyError` subclasses (the HTTP layer maps them to 400, 413, 415 and 503)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

__all__ = [
    "JSON",
    "PROTOBUF",
    "BodyError",
    "BodyTooLarge",
    "MalformedBody",
    "Overloaded",
    "UnsupportedMediaType",
    "decompress",
    "media_type",
    "parse_request",
]

PROTOBUF = "protobuf"
JSON = "json"

_MEDIA_TYPES = {
    "application/x-protobuf": PROTOBUF,
    "application/protobuf": PROTOBUF,
    "application/json": JSON,
}


class BodyError(Exception):
    """The request body cannot be used at all; nothing from it is stored."""


class MalformedBody(BodyError):
    """Not a valid OTLP ExportTraceServiceRequest (or not valid gzip)."""


class BodyTooLarge(BodyError):
    """The body, compressed or decompressed, is above the server's limit."""


class Overloaded(BodyError):
    """The server holds too many request bytes already; the request may be retried later."""


class UnsupportedMediaType(BodyError):
    """A Content-Type or Content-Encoding the server does not speak."""


def media_type(content_type: str | None) -> str:
    """``protobuf`` or ``json`` for a Content-Type header; raises :class:`UnsupportedMediaType` otherwise."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        return _MEDIA_TYPES[base]
    except KeyError:
        shown = base[:100] or "none"
        raise UnsupportedMediaType(
            f"unsupported Content-Type {shown!r}: send application/x-protobuf or application/json"
        ) from None


#: Decompressed bytes produced (and charged to the in-flight budget) per step.
_DECOMPRESS_STEP = 1024 * 1024


def decompress(body: bytes, encoding: str | None, limit: int, reserve: Callable[[int], bool] | None = None) -> bytes:
    """Undo Content-Encoding, never producing more than ``limit`` bytes (a gzip bomb stops at the cap).

    ``reserve(n)`` is asked before each step's ``n`` decompressed bytes are kept; when it answers ``False``,
    :class:`Overloaded` is raised.
    """
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity", "none"):
        if len(body) > limit:
            raise BodyTooLarge(f"body is {len(body)} bytes; the limit is {limit}")
        return body
    if enc == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise UnsupportedMediaType(f"unsupported Content-Encoding {enc[:50]!r}: send gzip or identity")
    return _inflate(memoryview(body), wbits, enc, limit, reserve)


#: Compressed bytes handed to zlib at once, at first for each member: its leftover (``unused_data``) is copied,
#: so each member costs at most this over its own size and a body of many tiny members stays linear.
_FIRST_INPUT_STEP = 256
_MAX_INPUT_STEP = 64 * 1024


def _inflate(view: memoryview, wbits: int, enc: str, limit: int, reserve: Callable[[int], bool] | None) -> bytes:
    out = bytearray()
    pos = 0
    # A gzip stream may hold several members; each gets a fresh decompressor sharing the one output budget.
    while pos < len(view):
        engine = zlib.decompressobj(wbits)
        pending: bytes | memoryview = b""
        take = _FIRST_INPUT_STEP
        while not engine.eof:
            if not pending and pos < len(view):
                # The input in growing slices of the view (no copy): a long member soon takes big ones.
                pending = view[pos : pos + take]
                pos += len(pending)
                take = min(take * 2, _MAX_INPUT_STEP)
            step = min(limit - len(out) + 1, _DECOMPRESS_STEP)
            try:
                chunk = engine.decompress(pending, step)
            except zlib.error as exc:
                raise MalformedBody(f"body is not valid {enc}: {exc}") from None
            if reserve is not None and not reserve(len(chunk)):
                raise Overloaded("the server holds too many request bytes; retry later")
            out += chunk
            if len(out) > limit:
                raise BodyTooLarge(f"decompressed body is over the limit of {limit} bytes")
            pending = engine.unconsumed_tail
            # A full step may leave output inside zlib with no input left: only a short step with nothing
            # left to read means the input ran out.
            if not pending and pos >= len(view) and len(chunk) < step and not engine.eof:
                raise MalformedBody(f"body is truncated {enc}")
        # The next member starts where this one's input ended: its leftover is the end of the last slice.
        pos -= len(engine.unused_data)
    return bytes(out)


_Request = TypeVar("_Request", bound=Message)


def parse_request(body: bytes, kind: str, request: _Request, fix: Callable[[object], None] | None = None) -> _Request:
    """Fill ``request`` (an empty OTLP request message) from a protobuf or OTLP/JSON body; ``fix`` rewrites the
    JSON document first. Raises :class:`MalformedBody`."""
    what = type(request).__name__
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
            return request
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise MalformedBody(f"body is not an OTLP {what}: {exc}") from None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise MalformedBody(f"an OTLP/JSON {what} is a JSON object")
    if fix is not None:
        fix(doc)
    try:
        # Receivers must ignore unknown fields (OTLP specification), so newer senders keep working.
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise MalformedBody(f"body is not an OTLP/JSON {what}: {str(exc)[:200]}") from None
    return request
