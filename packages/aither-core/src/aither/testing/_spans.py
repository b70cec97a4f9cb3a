"""Decoding what the SDK sends (OTLP protobuf) back into plain Python, for assertions."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["CapturedSpan", "attributes_of", "decode_request", "parsed"]


class _Protobuf(Protocol):
    def ParseFromString(self, serialized: bytes, /) -> int | None: ...


_Message = TypeVar("_Message", bound=_Protobuf)


@dataclasses.dataclass(frozen=True)
class CapturedSpan:
    """One exported span, decoded. JSON attributes are available decoded as ``features``/``prediction``/``label``."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    #: Decoded OTLP attribute values (text, numbers, lists...): a test reads each as it knows it was sent.
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    links: list[tuple[str, str]]
    resource: dict[str, Any]
    scope: tuple[str, str]

    def _json(self, key: str) -> Any:  # the decoded JSON a test reads as it knows it was sent
        raw = self.attributes.get(key)
        return None if raw is None else json.loads(str(raw))

    @property
    def features(self) -> Any:
        return self._json("ml.features")

    @property
    def prediction(self) -> Any:
        return self._json("ml.prediction")

    @property
    def label(self) -> Any:
        return self._json("ml.label")

    @property
    def model_name(self) -> str | None:
        value = self.attributes.get("ml.model.name")
        return None if value is None else str(value)

    @property
    def is_error(self) -> bool:
        return self.status_code == 2

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def _any_value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def attributes_of(items: Iterable[KeyValue]) -> dict[str, object]:
    return {kv.key: _any_value(kv.value) for kv in items}


def parsed(message: _Message, body: bytes, content_encoding: str | None) -> _Message:
    """``message`` read from an OTLP/HTTP protobuf request body, gzipped or not."""
    if content_encoding == "gzip" or body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    message.ParseFromString(body)
    return message


def decode_request(body: bytes, content_encoding: str | None = None) -> list[CapturedSpan]:
    """Decode an OTLP/HTTP protobuf request body (gzip or not) into spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = parsed(ExportTraceServiceRequest(), body, content_encoding)
    spans: list[CapturedSpan] = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = (scope_spans.scope.name, scope_spans.scope.version)
            for span in scope_spans.spans:
                spans.append(
                    CapturedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=attributes_of(span.attributes),
                        status_code=span.status.code,
                        status_message=span.status.message,
                        events=[(event.name, attributes_of(event.attributes)) for event in span.events],
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        resource=resource,
                        scope=scope,
                    )
                )
    return spans
