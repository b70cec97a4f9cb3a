"""Build real OTLP requests (opentelemetry-proto) the way docs/wire-contract.md describes them."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

KEY = "aith_test_admin_key_0123456789"


def new_trace_id() -> bytes:
    return os.urandom(16)


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_value(v) for v in value]))
    return AnyValue(string_value=value)


def _attrs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in attrs.items() if v is not None]


def prediction_span(
    model: str,
    prediction: Any,
    *,
    trace_id: bytes | None = None,
    method: str = "predict",
    batch_size: int | None = None,
    features: Any = None,
    version: str | None = None,
    environment: str | None = None,
    start_ns: int | None = None,
    latency_ns: int = 1_000_000,
    error: str | None = None,
    raw_prediction: str | None = None,
) -> Span:
    start = time.time_ns() if start_ns is None else start_ns
    if batch_size is None:
        batch_size = len(prediction) if isinstance(prediction, list) else 1
    attrs = {
        "ml.model.name": model,
        "ml.model.version": version,
        "ml.environment": environment,
        "ml.framework": "sklearn",
        "ml.method": method,
        "ml.batch_size": batch_size,
        "ml.features": json.dumps(features if features is not None else {"sample": [[1.0, 2.0]], "_meta": {}}),
    }
    if error is None:
        attrs["ml.prediction"] = raw_prediction if raw_prediction is not None else json.dumps(prediction)
    span = Span(
        trace_id=trace_id or new_trace_id(),
        span_id=os.urandom(8),
        name=method,
        kind=Span.SpanKind.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=start + latency_ns,
        attributes=_attrs(attrs),
    )
    if error is not None:
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = error
        event = span.events.add()
        event.name = "exception"
        event.attributes.extend(_attrs({"exception.type": error.split(":")[0], "exception.message": error}))
    return span


def label_span(trace_id: bytes, label: Any, *, row: int | None = None, time_ns: int | None = None) -> Span:
    now = time.time_ns() if time_ns is None else time_ns
    attrs: dict[str, Any] = {"ml.label": json.dumps(label), "ml.label.row": row}
    return Span(
        trace_id=trace_id,
        span_id=os.urandom(8),
        name="label",
        kind=Span.SpanKind.SPAN_KIND_INTERNAL,
        start_time_unix_nano=now,
        end_time_unix_nano=now,
        attributes=_attrs(attrs),
    )


def request(spans: Iterable[Span], service: str = "tests") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(_attrs({"service.name": service}))
    ss = rs.scope_spans.add()
    ss.scope.name = "aither"
    ss.spans.extend(spans)
    return req


def protobuf_body(spans: Iterable[Span], *, compress: bool = True) -> bytes:
    data = request(spans).SerializeToString()
    return gzip.compress(data) if compress else data


def json_body(spans: Iterable[Span]) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping, with trace and span ids as hex (the OTLP rule)."""
    doc = json_format.MessageToDict(request(spans))
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for field in ("traceId", "spanId"):
                    span[field] = base64.b64decode(span[field]).hex()
    return json.dumps(doc).encode()


def headers(
    key: str | None = KEY, *, gzip_body: bool = True, content_type: str = "application/x-protobuf"
) -> dict[str, str]:
    out = {"Content-Type": content_type}
    if gzip_body:
        out["Content-Encoding"] = "gzip"
    if key is not None:
        out["Authorization"] = f"Bearer {key}"
    return out


def parse_response(content: bytes) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    response.ParseFromString(content)
    return response
