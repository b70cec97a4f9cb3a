"""Records -> an OTLP ``ExportTraceServiceRequest``, framed by hand, following docs/wire-contract.md.

Runs on the worker thread only: this is where samples become JSON and attribute sizes are capped. The
identity attributes of a model, span names and the envelope are encoded once and reused; each span costs a
render of its sample, one JSON encoding per attribute and a few byte joins.
"""

from __future__ import annotations

import struct
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import _json
from .._capture import render
from .._privacy import WITHHELD
from .._records import ModelIdentity, SpanRecord
from .._sketches import is_profile_capture
from .._version import __version__
from ._wire import (
    double_attribute,
    field,
    fixed64,
    int_attribute,
    string_array_attribute,
    string_attribute,
    string_field,
    varint,
)

if TYPE_CHECKING:
    from .._privacy import Privacy
    from .._sketches import ProfileSketches

__all__ = ["SpanEncoder"]

_PREVIEW_CHARS = 1000
_STATUS_CODE_ERROR = 2

# Span: trace_id = 1, span_id = 2 (bytes); kind = 6 (SPAN_KIND_INTERNAL = 1); start = 7, end = 8 (fixed64);
# name = 5; attributes = 9; events = 11; links = 13; status = 15. Fields may come in any order, so the fixed
# ones are packed in one call.
_FIXED = struct.Struct("<2s16s2s8s2sBQBQ")
_IDS_TAG, _SPAN_ID_TAG, _KIND_INTERNAL = b"\x0a\x10", b"\x12\x08", b"\x30\x01"
_ATTRIBUTE_TAG = b"\x4a"
_LINK_TAG = 13
_EVENT_TAG = 11
_STATUS_TAG = 15
# The envelope: ExportTraceServiceRequest.resource_spans = 1; ResourceSpans.resource = 1, .scope_spans = 2;
# ScopeSpans.scope = 1, .spans = 2.
_SPANS_TAG = b"\x12"

_FEATURES = string_field(1, "ml.features")
_PREDICTION = string_field(1, "ml.prediction")
_LABEL = string_field(1, "ml.label")
#: Varints of the lengths most spans have, looked up without a call.
_SMALL_VARINTS = {n: varint(n) for n in range(1 << 14)}
#: ``ml.batch_size`` attributes of the common small batch sizes, encoded once.
_BATCH_SIZES = [field(9, int_attribute("ml.batch_size", size)) for size in range(1025)]


class SpanEncoder:
    """Encodes records into spans and spans into requests; counts the attribute values it had to truncate."""

    def __init__(
        self,
        resource: Mapping[str, str],
        max_attribute_bytes: int,
        privacy: Privacy | None = None,
        sketches: ProfileSketches | None = None,
    ) -> None:
        resource_message = b"".join(field(1, string_attribute(k, v)) for k, v in resource.items())
        scope_message = string_field(1, "aither") + string_field(2, __version__)
        self._resource_field = field(1, resource_message)
        self._scope_field = field(1, scope_message)
        self._max_attribute_bytes = max_attribute_bytes
        self._identity_cache: dict[tuple[ModelIdentity | None, str | None, str], bytes] = {}
        self.truncated_attributes = 0
        #: Asked for every span: a model wrapped later may bring rules of its own (``Privacy.features`` is a no-op
        #: while nothing is configured).
        self._privacy = privacy
        #: Where a profile-only model's input goes instead of the span (docs/privacy.md, "Profile-only mode").
        self._sketches = sketches

    def _identity(self, model: ModelIdentity | None, method: str | None, name: str) -> bytes:
        """The span name and the attributes every span of one model and method shares, encoded once."""
        key = (model, method, name)
        cached = self._identity_cache.get(key)
        if cached is not None:
            return cached
        attributes: list[bytes] = []
        if model is not None:
            attributes.append(string_attribute("ml.model.name", model.name))
            if model.version is not None:
                attributes.append(string_attribute("ml.model.version", model.version))
            if model.environment is not None:
                attributes.append(string_attribute("ml.environment", model.environment))
            attributes.append(string_attribute("ml.framework", model.framework))
        if method is not None:
            attributes.append(string_attribute("ml.method", method))
        encoded = string_field(5, name) + b"".join(field(9, kv) for kv in attributes)
        if len(self._identity_cache) >= 4096:  # models are few; a runaway set of names must not grow memory
            self._identity_cache.clear()
        self._identity_cache[key] = encoded
        return encoded

    def encode(self, record: SpanRecord) -> bytes:
        """One ``Span`` message, framed as a ``ScopeSpans.spans`` field (ready for :meth:`request`)."""
        identity = self._identity_cache.get((record.model, record.method, record.name))
        if identity is None:
            identity = self._identity(record.model, record.method, record.name)
        parts = [
            _FIXED.pack(
                _IDS_TAG,
                record.trace_id.to_bytes(16, "big"),
                _SPAN_ID_TAG,
                record.span_id.to_bytes(8, "big"),
                _KIND_INTERNAL,
                0x39,
                record.start_ns,
                0x41,
                record.end_ns,
            ),
            identity,
        ]
        truncated: list[str] = []
        batch_size = record.batch_size
        if batch_size is not None:
            parts.append(
                _BATCH_SIZES[batch_size]
                if 0 <= batch_size <= 1024
                else field(9, int_attribute("ml.batch_size", batch_size))
            )
        if record.sample_rate is not None:
            parts.append(field(9, double_attribute("ml.sample_rate", record.sample_rate)))
        if record.entity is not None:
            parts.append(field(9, string_attribute("ml.entity", record.entity)))
        profiled = False
        if record.features is not None and is_profile_capture(record.features):
            profiled = self._sketches is not None and record.model is not None
            if self._sketches is not None and record.model is not None:
                self._sketches.add(record.model, record.features)
        elif record.features is not None:
            features = render(record.features)
            if self._privacy is not None and record.model is not None:
                features = self._privacy.features(record.model.name, features)
            if features is not WITHHELD:
                self._json(parts, _FEATURES, "ml.features", features, truncated)
        if record.prediction is not None:
            prediction = render(record.prediction)
            if profiled:  # a profile-only model's outputs are sketched too: its spans carry no sampled rows
                assert self._sketches is not None and record.model is not None
                self._sketches.add_prediction(record.model, prediction)
            self._json(parts, _PREDICTION, "ml.prediction", prediction, truncated)
        if record.has_label:
            self._json(parts, _LABEL, "ml.label", record.label, truncated)
            if record.label_row is not None:
                parts.append(field(9, int_attribute("ml.label.row", record.label_row)))
        if truncated:
            parts.append(field(9, string_array_attribute("aither.truncated", truncated)))
        if record.link is not None:
            link_trace, link_span = record.link
            link = field(1, link_trace.to_bytes(16, "big")) + field(2, link_span.to_bytes(8, "big"))
            parts.append(field(_LINK_TAG, link))
        if record.error is not None:
            parts.append(self._error(record.error, record.end_ns))
        body = b"".join(parts)
        return _SPANS_TAG + (_SMALL_VARINTS.get(len(body)) or varint(len(body))) + body

    def _json(self, parts: list[bytes], key: bytes, name: str, value: object, truncated: list[str]) -> None:
        text = _json.dumps_bytes(value)
        size = len(text)
        if size > self._max_attribute_bytes:
            preview = text[: min(_PREVIEW_CHARS, self._max_attribute_bytes // 8)].decode("utf-8", errors="ignore")
            text = _json.dumps_bytes({"_meta": {"truncated": True, "original_bytes": size}, "preview": preview})
            size = len(text)
            truncated.append(name)
            self.truncated_attributes += 1
        # KeyValue{key, value: AnyValue{string_value: text}}, lengths computed instead of joined twice.
        size_prefix = _SMALL_VARINTS.get(size) or varint(size)
        any_value_length = 1 + len(size_prefix) + size
        any_value_prefix = _SMALL_VARINTS.get(any_value_length) or varint(any_value_length)
        kv_length = len(key) + 1 + len(any_value_prefix) + any_value_length
        kv_prefix = _SMALL_VARINTS.get(kv_length) or varint(kv_length)
        parts += (_ATTRIBUTE_TAG, kv_prefix, key, b"\x12", any_value_prefix, b"\x0a", size_prefix, text)

    def _error(self, error: BaseException, time_ns: int) -> bytes:
        type_name = type(error).__qualname__
        module = type(error).__module__
        if module not in ("builtins", "__main__"):
            type_name = f"{module}.{type_name}"
        message = _truncate(_safe_str(error), 4096)
        status = string_field(2, f"{type(error).__name__}: {message}") + varint(3 << 3) + varint(_STATUS_CODE_ERROR)
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        event = (
            fixed64(1, time_ns)
            + string_field(2, "exception")
            + field(3, string_attribute("exception.type", type_name))
            + field(3, string_attribute("exception.message", message))
            + field(3, string_attribute("exception.stacktrace", _truncate(stack, self._max_attribute_bytes)))
        )
        return field(_EVENT_TAG, event) + field(_STATUS_TAG, status)

    def request(self, spans: list[bytes]) -> bytes:
        """A serialised ``ExportTraceServiceRequest`` around spans from :meth:`encode`."""
        scope_spans = self._scope_field + b"".join(spans)
        resource_spans = self._resource_field + field(2, scope_spans)
        return field(1, resource_spans)


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return f"<unprintable {type(error).__name__}>"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
