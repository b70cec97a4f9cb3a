"""Build real OTLP requests (opentelemetry-proto) the way docs/wire-contract.md describes them."""

from __future__ import annotations

import base64
import bisect
import gzip
import json
import os
import time
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
)
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
    sample_rate: float | None = None,
    link: tuple[bytes, bytes] | None = None,
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
        "ml.sample_rate": sample_rate,
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
    if link is not None:
        span.links.add(trace_id=link[0], span_id=link[1])
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


def request(spans: Iterable[Span], service: str = "tests", instance: str | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(_attrs({"service.name": service, "service.instance.id": instance}))
    ss = rs.scope_spans.add()
    ss.scope.name = "aither"
    ss.spans.extend(spans)
    return req


def protobuf_body(spans: Iterable[Span], *, compress: bool = True, instance: str | None = None) -> bytes:
    data = request(spans, instance=instance).SerializeToString()
    return gzip.compress(data) if compress else data


def json_body(spans: Iterable[Span]) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping, with trace and span ids as hex (the OTLP rule)."""
    doc = json_format.MessageToDict(request(spans))
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for item in [span, *span.get("links", [])]:
                    for field in ("traceId", "spanId"):
                        item[field] = base64.b64decode(item[field]).hex()
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


# -- /v1/metrics: the SDK's per-model aggregates (docs/wire-contract.md, "Per-model aggregates") -----------

#: The contract's histogram bounds, in milliseconds.
CONTRACT_BOUNDS_MS = [0.01 * 2 ** (i / 4) for i in range(93)]
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


def contract_buckets(latencies_ms: Iterable[float]) -> list[int]:
    """Counts per contract bucket (OTLP buckets include their upper bound)."""
    counts = [0] * (len(CONTRACT_BOUNDS_MS) + 1)
    for value in latencies_ms:
        counts[bisect.bisect_left(CONTRACT_BOUNDS_MS, value)] += 1
    return counts


def sum_metric(
    name: str, attrs: dict[str, Any], value: int, start_ns: int, end_ns: int, temporality: int = DELTA
) -> Metric:
    metric = Metric(name=name, unit="{call}")
    metric.sum.aggregation_temporality = temporality  # type: ignore[assignment]
    metric.sum.is_monotonic = True
    metric.sum.data_points.append(
        NumberDataPoint(attributes=_attrs(attrs), start_time_unix_nano=start_ns, time_unix_nano=end_ns, as_int=value)
    )
    return metric


def histogram_metric(
    attrs: dict[str, Any], latencies_ms: list[float], start_ns: int, end_ns: int, bounds: list[float] | None = None
) -> Metric:
    bounds = CONTRACT_BOUNDS_MS if bounds is None else bounds
    counts = [0] * (len(bounds) + 1)
    for value in latencies_ms:
        counts[bisect.bisect_left(bounds, value)] += 1
    metric = Metric(name="aither.prediction.duration", unit="ms")
    metric.histogram.aggregation_temporality = DELTA
    metric.histogram.data_points.append(
        HistogramDataPoint(
            attributes=_attrs(attrs),
            start_time_unix_nano=start_ns,
            time_unix_nano=end_ns,
            count=len(latencies_ms),
            sum=sum(latencies_ms),
            bucket_counts=counts,
            explicit_bounds=bounds,
        )
    )
    return metric


def aggregates(
    model: str,
    *,
    calls: int,
    rows: int | None = None,
    errors: int = 0,
    latencies_ms: list[float] | None = None,
    dropped: dict[str, int] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    version: str | None = None,
) -> list[Metric]:
    """The metrics one SDK flush sends for one model over (start_ns, end_ns]."""
    end = time.time_ns() if end_ns is None else end_ns
    start = end - 1_000_000_000 if start_ns is None else start_ns
    attrs = {"ml.model.name": model, "ml.model.version": version}
    out = [
        sum_metric("aither.prediction.calls", attrs, calls, start, end),
        sum_metric("aither.prediction.rows", attrs, calls if rows is None else rows, start, end),
        sum_metric("aither.prediction.errors", attrs, errors, start, end),
    ]
    if latencies_ms is not None:
        out.append(histogram_metric(attrs, latencies_ms, start, end))
    for reason, count in (dropped or {}).items():
        out.append(sum_metric("aither.spans.dropped", {**attrs, "aither.drop.reason": reason}, count, start, end))
    return out


def metrics_request(metrics: Iterable[Metric], instance: str | None = "instance-a") -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(_attrs({"service.name": "tests", "service.instance.id": instance}))
    sm = rm.scope_metrics.add()
    sm.scope.name = "aither"
    sm.metrics.extend(metrics)
    return req


def metrics_body(metrics: Iterable[Metric], instance: str | None = "instance-a", *, compress: bool = True) -> bytes:
    data = metrics_request(metrics, instance).SerializeToString()
    return gzip.compress(data) if compress else data


def parse_metrics_response(content: bytes) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    response.ParseFromString(content)
    return response


def span_with(attributes: dict[str, Any], *, trace_id: bytes | None = None, name: str = "predict") -> Span:
    """A span carrying exactly these attributes, typed as given (what a hand-instrumented sender sets)."""
    now = time.time_ns()
    return Span(
        trace_id=trace_id or new_trace_id(),
        span_id=os.urandom(8),
        name=name,
        kind=Span.SpanKind.SPAN_KIND_INTERNAL,
        start_time_unix_nano=now,
        end_time_unix_nano=now + 1_000_000,
        attributes=_attrs(attributes),
    )


def parse_status(content: bytes) -> status_pb2.Status:
    """An OTLP/HTTP error body of a protobuf request: a ``google.rpc.Status``."""
    status = status_pb2.Status()
    status.ParseFromString(content)
    return status
