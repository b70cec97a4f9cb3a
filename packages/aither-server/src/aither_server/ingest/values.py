"""OTLP attribute values -> the values the server stores, whichever type the sender chose.

The aither SDK sends ``ml.prediction`` and ``ml.label`` as JSON text and ``ml.batch_size`` as an int; people
instrumenting by hand with OpenTelemetry write ``span.set_attribute("ml.prediction", 0.87)``, a bool, a list
(an OTLP ``ArrayValue``) or ``"1"``. Each is taken for what it means; what cannot be is refused with a reason
that names the attribute and what was wrong (:class:`BadValue`).
"""

from __future__ import annotations

import json
import math
import re

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from aither_server.model.json_value import JsonValue

__all__ = ["BadValue", "json_text", "non_negative_int", "without_lone_surrogates"]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_SHOWN = 40


# A JSON ``\\uXXXX`` escape of a UTF-16 surrogate with no partner: the escape is preceded by an even number of
# backslashes (so it is an escape, not escaped text), and a high one is not followed by a low one (or a low one
# not preceded by a high one). JSON reads such an escape into a str that has no UTF-8 form.
_LONE_SURROGATE = re.compile(
    r"(?<!\\)((?:\\\\)*)"
    r"(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)


def without_lone_surrogates(text: str) -> str:
    """JSON text with each lone surrogate escape (the SDK writes one for a cut emoji, as JSON allows) replaced by
    ``\\ufffd``, the replacement character: stored as it came, such a value could not be written as UTF-8 by any
    page that reads it back. A paired escape (a whole emoji) is kept."""
    if "\\ud" not in text and "\\uD" not in text:  # the common case: two scans in C
        return text
    return _LONE_SURROGATE.sub(lambda match: match.group(1) + "\\ufffd", text)


class BadValue(ValueError):
    """An attribute value the server cannot use; the message is the rejection reason."""


def _native(value: AnyValue) -> JsonValue:
    """A non-string OTLP value as plain data (strings inside arrays and maps are strings, not JSON)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        number = value.double_value
        if math.isfinite(number):
            return number
        # The wire contract's JSON encoding of non-finite numbers.
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if which == "array_value":
        return [_native(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _native(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return {"_type": "bytes", "size": len(value.bytes_value)}
    return None


def json_text(value: AnyValue, name: str) -> str:
    """``ml.prediction`` / ``ml.label`` as JSON text: a string is taken as the JSON the SDK sends; a number,
    bool, array or map is encoded. Raises :class:`BadValue` for bytes or an empty value."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which is None:
        raise BadValue(f"{name} has no value")
    if which == "bytes_value":
        raise BadValue(f"{name} is bytes: send JSON text, a number, a bool or an array")
    return _dumps(_native(value))


def non_negative_int(value: AnyValue, name: str) -> int:
    """An integer attribute (``ml.batch_size``, ``ml.label.row``) sent as an int, an integral double or a
    numeric string such as ``"3"``. Raises :class:`BadValue` otherwise."""
    which = value.WhichOneof("value")
    number: int | None = None
    if which == "int_value":
        number = value.int_value
    elif which == "double_value" and value.double_value.is_integer():
        number = int(value.double_value)
    elif which == "string_value":
        text = value.string_value.strip()
        if text.isdigit() and len(text) < 19:
            number = int(text)
    if number is None or number < 0:
        shown = repr(_native(value))
        shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "..."
        raise BadValue(f"{name} must be a non-negative integer, got {which or 'no value'} {shown}")
    return number
