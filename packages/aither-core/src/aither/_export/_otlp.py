"""Records -> OTLP protobuf (``ExportTraceServiceRequest``), following docs/wire-contract.md.

Runs on the worker thread only; this is where samples become JSON and attribute sizes are capped.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from .. import _json
from .._records import ModelIdentity, SpanRecord
from .._sampling import render
from .._version import __version__

__all__ = ["SpanEncoder"]

_PREVIEW_CHARS = 1000
_KIND_INTERNAL = Span.SpanKind.SPAN_KIND_INTERNAL
_STATUS_ERROR = Status.StatusCode.STATUS_CODE_ERROR


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _int(key: str, value: int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value))


class SpanEncoder:
    """Encodes records to spans; counts the attribute values it had to truncate."""

    def __init__(self, resource: Mapping[str, str], max_attribute_bytes: int) -> None:
        self._resource = Resource(attributes=[_string(k, v) for k, v in resource.items()])
        self._scope = InstrumentationScope(name="aither", version=__version__)
        resource_bytes: bytes = self._resource.SerializeToString()
        scope_bytes: bytes = self._scope.SerializeToString()
        self._resource_field = _RESOURCE_TAG + _varint(len(resource_bytes)) + resource_bytes
        self._scope_field = _SCOPE_TAG + _varint(len(scope_bytes)) + scope_bytes
        self._max_attribute_bytes = max_attribute_bytes
        self._identity_cache: dict[tuple[ModelIdentity | None, str | None], bytes] = {}
        self.truncated_attributes = 0

    def _identity_attributes(self, model: ModelIdentity | None, method: str | None) -> bytes:
        """The attributes every span of one model and method shares, serialised once and reused."""
        key = (model, method)
        cached = self._identity_cache.get(key)
        if cached is not None:
            return cached
        attributes: list[KeyValue] = []
        if model is not None:
            attributes.append(_string("ml.model.name", model.name))
            if model.version is not None:
                attributes.append(_string("ml.model.version", model.version))
            if model.environment is not None:
                attributes.append(_string("ml.environment", model.environment))
            attributes.append(_string("ml.framework", model.framework))
        if method is not None:
            attributes.append(_string("ml.method", method))
        encoded: bytes = Span(attributes=attributes).SerializeToString()
        if len(self._identity_cache) >= 4096:  # models are few; a runaway set of names must not grow memory
            self._identity_cache.clear()
        self._identity_cache[key] = encoded
        return encoded

    def encode(self, record: SpanRecord) -> Span:
        span = Span(
            trace_id=record.trace_id.to_bytes(16, "big"),
            span_id=record.span_id.to_bytes(8, "big"),
            name=record.name,
            kind=_KIND_INTERNAL,
            start_time_unix_nano=record.start_ns,
            end_time_unix_nano=record.end_ns,
        )
        # Parsing the cached identity attributes in C is several times cheaper than building them again.
        span.MergeFromString(self._identity_attributes(record.model, record.method))
        attributes = span.attributes
        truncated: list[str] = []
        if record.batch_size is not None:
            attributes.add(key="ml.batch_size").value.int_value = record.batch_size
        if record.features is not None:
            self._json(attributes, "ml.features", render(record.features), truncated)
        if record.prediction is not None:
            self._json(attributes, "ml.prediction", render(record.prediction), truncated)
        if record.has_label:
            self._json(attributes, "ml.label", record.label, truncated)
            if record.label_row is not None:
                attributes.add(key="ml.label.row").value.int_value = record.label_row
        if truncated:
            array = ArrayValue(values=[AnyValue(string_value=name) for name in truncated])
            attributes.append(KeyValue(key="aither.truncated", value=AnyValue(array_value=array)))
        if record.link is not None:
            link_trace, link_span = record.link
            link = span.links.add()
            link.trace_id = link_trace.to_bytes(16, "big")
            link.span_id = link_span.to_bytes(8, "big")
        if record.error is not None:
            self._add_error(span, record.error, record.end_ns)
        return span

    def _json(self, attributes: Any, key: str, value: Any, truncated: list[str]) -> None:
        # UTF-8 bytes straight into the string field (protobuf checks the encoding): no decode and re-encode.
        text = _json.dumps_bytes(value)
        size = len(text)
        if size > self._max_attribute_bytes:
            preview = text[: min(_PREVIEW_CHARS, self._max_attribute_bytes // 8)].decode("utf-8", errors="ignore")
            text = _json.dumps_bytes({"_meta": {"truncated": True, "original_bytes": size}, "preview": preview})
            truncated.append(key)
            self.truncated_attributes += 1
        attributes.add(key=key).value.string_value = text

    def _add_error(self, span: Span, error: BaseException, time_ns: int) -> None:
        type_name = type(error).__qualname__
        module = type(error).__module__
        if module not in ("builtins", "__main__"):
            type_name = f"{module}.{type_name}"
        message = _utf8(_truncate(str(_safe_str(error)), 4096))
        span.status.code = _STATUS_ERROR
        span.status.message = f"{type(error).__name__}: {message}"
        event = span.events.add()
        event.name = "exception"
        event.time_unix_nano = time_ns
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        event.attributes.extend(
            [
                _string("exception.type", type_name),
                _string("exception.message", message),
                _string("exception.stacktrace", _utf8(_truncate(stack, self._max_attribute_bytes))),
            ]
        )

    def request(self, spans: Iterable[Span]) -> ExportTraceServiceRequest:
        return ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(resource=self._resource, scope_spans=[ScopeSpans(scope=self._scope, spans=spans)])
            ]
        )

    def request_bytes(self, encoded_spans: list[bytes]) -> bytes:
        """A serialised ``ExportTraceServiceRequest`` around spans serialised one by one.

        Equivalent to ``request(spans).SerializeToString()``, without copying every span message into a new
        request: only the envelope (three length-delimited fields) is framed here.
        """
        parts: list[bytes] = []
        for span in encoded_spans:  # one copy of each span, in the final join
            parts += (_SPANS_TAG, _varint(len(span)), span)
        spans = b"".join(parts)
        scope_spans = self._scope_field + spans
        resource_spans = self._resource_field + _SCOPE_SPANS_TAG + _varint(len(scope_spans)) + scope_spans
        return _RESOURCE_SPANS_TAG + _varint(len(resource_spans)) + resource_spans


# Protobuf tags (field number << 3 | wire type 2, length-delimited) of the envelope around the spans:
# ExportTraceServiceRequest.resource_spans = 1; ResourceSpans.resource = 1, .scope_spans = 2;
# ScopeSpans.scope = 1, .spans = 2.
_RESOURCE_SPANS_TAG = b"\x0a"
_RESOURCE_TAG = b"\x0a"
_SCOPE_SPANS_TAG = b"\x12"
_SCOPE_TAG = b"\x0a"
_SPANS_TAG = b"\x12"


_varints: dict[int, bytes] = {}


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint; span sizes repeat, so small ones are cached."""
    cached = _varints.get(value)
    if cached is not None:
        return cached
    encoded = _encode_varint(value)
    if value < 1 << 16:
        _varints[value] = encoded
    return encoded


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return f"<unprintable {type(error).__name__}>"


def _utf8(text: str) -> str:
    """``text`` as protobuf accepts it: a lone surrogate (no UTF-8 form) becomes its escape, ``\\ud83d``."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
