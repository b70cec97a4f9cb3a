"""Decoding the per-model aggregates the SDK sends to ``/v1/metrics`` back into plain Python, for assertions."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ._spans import attributes_of, parsed

if TYPE_CHECKING:
    from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint, Metric, NumberDataPoint

__all__ = ["MetricPoint", "decode_metrics"]


@dataclasses.dataclass(frozen=True)
class MetricPoint:
    """One data point: a sum's or a gauge's ``value`` (an ``aither.profile`` point: its count of values, the
    sketch in ``attributes["aither.profile.sketch"]``), or a histogram's ``count``/``sum``/``bucket_counts``/
    ``bounds``."""

    metric: str
    unit: str
    #: Decoded OTLP attribute values, as :class:`CapturedSpan`'s: a test reads each as it knows it was sent.
    attributes: dict[str, Any]
    resource: dict[str, Any]
    start_ns: int
    end_ns: int
    temporality: int
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = dataclasses.field(default_factory=list)
    bounds: list[float] = dataclasses.field(default_factory=list)


def decode_metrics(body: bytes, content_encoding: str | None = None) -> list[MetricPoint]:
    """Decode an OTLP/HTTP ``ExportMetricsServiceRequest`` body (gzip or not) into its data points."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    request = parsed(ExportMetricsServiceRequest(), body, content_encoding)
    points: list[MetricPoint] = []
    for resource_metrics in request.resource_metrics:
        resource = attributes_of(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind in ("sum", "gauge"):
                    data = metric.sum if kind == "sum" else metric.gauge
                    temporality = metric.sum.aggregation_temporality if kind == "sum" else 0
                    for point in data.data_points:
                        value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                        points.append(_point(metric, point, resource, temporality, value=value))
                elif kind == "histogram":
                    for histogram in metric.histogram.data_points:
                        points.append(
                            _point(
                                metric,
                                histogram,
                                resource,
                                metric.histogram.aggregation_temporality,
                                count=histogram.count,
                                sum=histogram.sum,
                                bucket_counts=list(histogram.bucket_counts),
                                bounds=list(histogram.explicit_bounds),
                            )
                        )
    return points


def _point(
    metric: Metric,
    point: NumberDataPoint | HistogramDataPoint,
    resource: dict[str, object],
    temporality: int,
    *,
    value: int | float | None = None,
    count: int | None = None,
    sum: float | None = None,
    bucket_counts: list[int] | None = None,
    bounds: list[float] | None = None,
) -> MetricPoint:
    return MetricPoint(
        metric.name,
        metric.unit,
        attributes_of(point.attributes),
        resource,
        point.start_time_unix_nano,
        point.time_unix_nano,
        temporality,
        value=value,
        count=count,
        sum=sum,
        bucket_counts=bucket_counts or [],
        bounds=bounds or [],
    )
