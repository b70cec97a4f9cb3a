"""Protobuf wire-format primitives for the OTLP messages aither writes and the two responses it reads.

The exporter frames its requests by hand instead of building ``opentelemetry-proto`` message objects: on the
worker thread, which shares the GIL with a busy caller, that is several times cheaper per span, and it keeps
protobuf out of the process entirely. Every message written here is decoded with ``opentelemetry-proto`` by the
tests (``aither.testing`` decodes with it too), so the framing is checked against the real schema.
"""

from __future__ import annotations

import struct

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "attribute",
    "bool_attribute",
    "double_attribute",
    "field",
    "fixed64",
    "int_attribute",
    "read_partial_success",
    "read_string_field",
    "string_array_attribute",
    "string_attribute",
    "string_field",
    "varint",
]

_varints: dict[int, bytes] = {}


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer; small values (lengths, mostly) are cached."""
    cached = _varints.get(value)
    if cached is not None:
        return cached
    out = bytearray()
    number = value
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    encoded = bytes(out)
    if value < 1 << 16:
        _varints[value] = encoded
    return encoded


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _signed(value: int) -> bytes:
    """An ``int64`` as protobuf writes it: negatives as their 64-bit two's complement (10 bytes).

    A value outside int64 raises ``ValueError``: its varint would be longer than 10 bytes (a body every parser
    refuses) or read back as a negative number; the worker drops that span alone, never its request."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{value} does not fit an int64 attribute")
    return varint(value if value >= 0 else value + (1 << 64))


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): a string, bytes or an embedded message."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def string_field(number: int, text: str) -> bytes:
    return field(number, text.encode("utf-8", "backslashreplace"))


_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")


def fixed64(number: int, value: int) -> bytes:
    return varint(number << 3 | 1) + _FIXED64.pack(value)


def double(number: int, value: float) -> bytes:
    return varint(number << 3 | 1) + _DOUBLE.pack(value)


# KeyValue { string key = 1; AnyValue value = 2; }
# AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
#            ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; }


def attribute(key: str, any_value: bytes) -> bytes:
    """A ``KeyValue`` message (not wrapped in the field of its parent)."""
    return string_field(1, key) + field(2, any_value)


def string_attribute(key: str, value: str | bytes) -> bytes:
    encoded = value if isinstance(value, bytes) else value.encode("utf-8", "backslashreplace")
    return attribute(key, field(1, encoded))


def bool_attribute(key: str, value: bool) -> bytes:
    return attribute(key, b"\x10" + (b"\x01" if value else b"\x00"))


def int_attribute(key: str, value: int) -> bytes:
    return attribute(key, b"\x18" + _signed(value))


def double_attribute(key: str, value: float) -> bytes:
    return attribute(key, double(4, value))


def string_array_attribute(key: str, values: list[str]) -> bytes:
    array = b"".join(field(1, field(1, value.encode("utf-8", "backslashreplace"))) for value in values)
    return attribute(key, field(5, array))


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The top-level fields of a message: (number, value) with varints as ints and lengths as bytes."""
    out: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _read_varint(data, position)
            out.append((number, value))
        elif wire_type == 2:
            length, position = _read_varint(data, position)
            if position + length > len(data):
                raise ValueError("truncated field")
            out.append((number, data[position : position + length]))
            position += length
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return out


def read_string_field(message: bytes, number: int) -> str:
    """The string field ``number`` of a serialised message; "" when absent or when ``message`` is not one."""
    try:
        for found, value in _fields(message):
            if found == number and isinstance(value, bytes):
                return value.decode("utf-8", "replace")
    except ValueError:
        pass
    return ""


def read_partial_success(body: bytes) -> tuple[int, str]:
    """``(rejected count, error message)`` of an ``Export{Trace,Metrics}ServiceResponse``.

    Both responses have the same shape: ``partial_success = 1`` holding ``rejected_spans`` (or
    ``rejected_data_points``) ``= 1`` and ``error_message = 2``. A body that is not such a message reads as
    ``(0, "")``: a 2xx means delivered whatever its body says.
    """
    try:
        rejected, message = 0, ""
        for number, value in _fields(body):
            if number == 1 and isinstance(value, bytes):
                for inner_number, inner in _fields(value):
                    if inner_number == 1 and isinstance(inner, int):
                        rejected = inner if inner < 1 << 63 else inner - (1 << 64)
                    elif inner_number == 2 and isinstance(inner, bytes):
                        message = inner.decode("utf-8", "replace")
        return max(rejected, 0), message
    except ValueError:
        return 0, ""
