"""OTLP/HTTP metric bodies -> the per-model aggregate points of docs/wire-contract.md ("/v1/metrics").

Bytes in (already decompressed), points out; nothing about storage. Other senders' metrics are welcome and
ignored: a metric that is not one of the contract's ``aither.*`` metrics, or a point without ``ml.model.name``,
is counted (``partial_success.rejected_data_points``) and explained, never an error. Cumulative points become
deltas as the Collector's ``cumulativetodelta`` makes them (``cumulative.py``); exponential histograms are read
into the contract's buckets. The request as a whole is
refused (:class:`_otlp.MalformedBody`) only when it is not an ``ExportMetricsServiceRequest`` at all.

``aither.profile`` points (a profile-only model's column sketches, "Column profiles" in the contract) are read
into :class:`ProfileReport` s for drift; a point whose sketch does not deserialise is refused alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import NamedTuple

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
)

from aither.profile import CATEGORICAL, NUMERIC, Profile
from aither_server.ingest.body import PROTOBUF, parse_request
from aither_server.ingest.cumulative import CumulativeSeries
from aither_server.model.records import AggregatePoint
from aither_server.model.rollup_keys import AGGREGATE_BOUNDS_MS, AGGREGATE_BUCKETS, aggregate_bucket_of_range

__all__ = ["PROFILE_FORMAT", "DecodedMetrics", "ProfileReport", "decode_metrics", "encode_metrics_response"]

#: The contract's metrics, and the short names the store keeps them under.
_SUMS = {
    "aither.prediction.calls": "calls",
    "aither.prediction.rows": "rows",
    "aither.prediction.errors": "errors",
    "aither.spans.dropped": "dropped",
}
_HISTOGRAM = "aither.prediction.duration"
_PROFILE = "aither.profile"
#: The one ``aither.profile.format`` this server reads: DataSketches' serialisations (KLL doubles, frequent strings).
PROFILE_FORMAT = "datasketches/1"
_ROLES = ("feature", "prediction")
_MAX_COLUMN = 1024
_MAX_NAME = 256
_MAX_TIME_NS = 2**63 - 1
_MAX_VALUE = 2**62
_DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
#: The cumulative series this server has seen (one server per process: the app's state in effect).


class ProfileReport(NamedTuple):
    """One column's profile over ``(start_ns, end_ns]`` from one process: a profile-only model's sketch."""

    instance: str
    model: str
    version: str
    environment: str
    role: str
    column: str
    start_ns: int
    end_ns: int
    profile: Profile


@dataclasses.dataclass
class DecodedMetrics:
    points: list[AggregatePoint] = dataclasses.field(default_factory=list)
    profiles: list[ProfileReport] = dataclasses.field(default_factory=list)
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)
    """Data points not stored, by reason (ignored foreign metrics included)."""

    def reject(self, reason: str, points: int = 1) -> None:
        if points:
            self.rejected[reason] = self.rejected.get(reason, 0) + points

    @property
    def rejected_points(self) -> int:
        return sum(self.rejected.values())

    @property
    def error_message(self) -> str:
        return "; ".join(f"{count} data points {reason}" for reason, count in self.rejected.items())


def _strings(attributes: Sequence[KeyValue]) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in attributes if kv.value.HasField("string_value")}


def _contract_buckets(point: HistogramDataPoint) -> tuple[int, ...] | None:
    """The point's counts in the contract's buckets: as sent when its bounds are the contract's, else each
    bucket's count moved to the contract bucket holding its geometric middle. ``None``: inconsistent."""
    counts = list(point.bucket_counts)
    bounds = list(point.explicit_bounds)
    if not counts:
        return (0,) * AGGREGATE_BUCKETS if point.count == 0 else None
    if len(counts) != len(bounds) + 1 or sum(counts) != point.count:
        return None
    if len(bounds) == len(AGGREGATE_BOUNDS_MS) and all(
        math.isclose(a, b, rel_tol=1e-9) for a, b in zip(bounds, AGGREGATE_BOUNDS_MS, strict=True)
    ):
        return tuple(counts)
    out = [0] * AGGREGATE_BUCKETS
    for i, count in enumerate(counts):
        if count:
            low = bounds[i - 1] if i > 0 else -math.inf
            high = bounds[i] if i < len(bounds) else math.inf
            out[aggregate_bucket_of_range(low, high)] += count
    return tuple(out)


def _exponential_buckets(point: ExponentialHistogramDataPoint) -> tuple[int, ...] | None:
    """An exponential histogram's counts in the contract's buckets: bucket ``i`` of scale ``s`` covers
    ``(b**i, b**(i+1)]`` with ``b = 2**(2**-s)``; each count goes to the contract bucket holding its geometric
    middle, zeros (and negative latencies, which cannot be) to the first. ``None``: counts that do not add up."""
    out = [0] * AGGREGATE_BUCKETS
    base = 2.0 ** (2.0**-point.scale)
    total = point.zero_count + sum(point.negative.bucket_counts)
    out[0] += total
    for i, count in enumerate(point.positive.bucket_counts):
        if count:
            index = point.positive.offset + i
            try:
                low, high = base**index, base ** (index + 1)
            except OverflowError:
                low = high = math.inf
            out[aggregate_bucket_of_range(low, high)] += count
            total += count
    return tuple(out) if total == point.count else None


def _metric_points(metric: Metric, instance: str | None, decoded: DecodedMetrics, series: CumulativeSeries) -> None:
    name = metric.name
    data = metric.WhichOneof("data")
    points: Sequence[object] = getattr(metric, data).data_points if data else ()
    if name == _PROFILE:
        _profile_points(metric, instance, decoded)
        return
    short = _SUMS.get(name)
    if short is None and name != _HISTOGRAM:
        decoded.reject("ignored: not an aither.* metric of the wire contract", len(points))
        return
    expected = ("histogram", "exponential_histogram") if name == _HISTOGRAM else ("sum",)
    if data is None or data not in expected:
        decoded.reject(f"rejected: {name} must be a {' or an '.join(expected).replace('_', ' ')}", len(points))
        return
    body = getattr(metric, data)
    temporality = body.aggregation_temporality
    if temporality not in (_DELTA, _CUMULATIVE):
        decoded.reject(f"rejected: {name} must have delta or cumulative temporality", len(points))
        return
    if not instance:
        decoded.reject("rejected: aither.* metrics need service.instance.id in the resource", len(points))
        return
    for point in body.data_points:
        attrs = _strings(point.attributes)
        model = attrs.get("ml.model.name", "")
        version = attrs.get("ml.model.version", "")
        environment = attrs.get("ml.environment", "")
        if not model:
            decoded.reject("ignored: no ml.model.name")
            continue
        if max(len(model), len(version), len(environment)) > _MAX_NAME:
            decoded.reject(f"rejected: model name, version and environment are limited to {_MAX_NAME} characters")
            continue
        start, end = point.start_time_unix_nano, point.time_unix_nano
        if end > _MAX_TIME_NS or end <= 0 or start > end:
            decoded.reject("rejected: time_unix_nano must be set, after start_time_unix_nano and below 2^63")
            continue
        buckets: tuple[int, ...] | None = None
        if isinstance(point, (HistogramDataPoint, ExponentialHistogramDataPoint)):
            value = point.count
            explicit = isinstance(point, HistogramDataPoint)
            buckets = _contract_buckets(point) if explicit else _exponential_buckets(point)
            if buckets is None:
                decoded.reject("rejected: histogram bucket_counts do not match explicit_bounds and count")
                continue
            short_name = "duration"
        else:
            raw = point.as_int if point.HasField("as_int") else point.as_double
            if not (math.isfinite(raw) and 0 <= raw < _MAX_VALUE and float(raw).is_integer()):
                decoded.reject(f"rejected: {name} values must be non-negative integers")
                continue
            value = int(raw)
            assert short is not None
            short_name = short
        reason = attrs.get("aither.drop.reason", "unknown")[:_MAX_NAME] if short_name == "dropped" else ""
        if temporality == _CUMULATIVE:
            key = (instance, short_name, model, version, environment, reason)
            delta = series.delta(key, start, end, value, buckets)
            if delta is None:
                continue  # the origin of a series, or a point counted already: nothing new
            start, value, buckets = delta
        if value == 0:
            continue  # nothing counted: nothing to store (the SDK does not send these; other senders may)
        decoded.points.append(
            AggregatePoint(instance, short_name, model, version, environment, reason, start, end, value, buckets)
        )


def _profile_points(metric: Metric, instance: str | None, decoded: DecodedMetrics) -> None:
    if metric.WhichOneof("data") != "gauge":
        decoded.reject(
            f"rejected: {_PROFILE} must be a gauge",
            len(getattr(metric, metric.WhichOneof("data") or "gauge").data_points),
        )
        return
    points = metric.gauge.data_points
    if not instance:
        decoded.reject(f"rejected: {_PROFILE} needs service.instance.id in the resource", len(points))
        return
    for point in points:
        attrs = _strings(point.attributes)
        sketch = next((kv.value.bytes_value for kv in point.attributes if kv.key == "aither.profile.sketch"), b"")
        numbers = {
            kv.key: kv.value.int_value if kv.value.HasField("int_value") else kv.value.double_value
            for kv in point.attributes
            if kv.value.HasField("int_value") or kv.value.HasField("double_value")
        }
        model, column = attrs.get("ml.model.name", ""), attrs.get("aither.profile.column", "")
        version, environment = attrs.get("ml.model.version", ""), attrs.get("ml.environment", "")
        role, kind = attrs.get("aither.profile.role", "feature"), attrs.get("aither.profile.kind", "")
        start, end = point.start_time_unix_nano, point.time_unix_nano
        count = point.as_int if point.HasField("as_int") else point.as_double
        nulls = numbers.get("aither.profile.nulls", 0)
        if attrs.get("aither.profile.format") != PROFILE_FORMAT:
            decoded.reject(f"rejected: {_PROFILE} format must be {PROFILE_FORMAT!r}")
        elif not model or not column or role not in _ROLES or kind not in (NUMERIC, CATEGORICAL):
            decoded.reject(f"rejected: {_PROFILE} needs ml.model.name, a column, a role and a kind")
        elif max(len(model), len(version), len(environment)) > _MAX_NAME or len(column) > _MAX_COLUMN:
            decoded.reject(f"rejected: model name, version and environment are limited to {_MAX_NAME} characters")
        elif end > _MAX_TIME_NS or end <= 0 or start >= end:
            decoded.reject("rejected: time_unix_nano must be set, after start_time_unix_nano and below 2^63")
        elif not (_whole(count) and _whole(nulls)):
            decoded.reject(f"rejected: {_PROFILE} counts must be non-negative integers")
        else:
            low, high = numbers.get("aither.profile.min"), numbers.get("aither.profile.max")
            profile = Profile(
                kind,
                attrs.get("aither.profile.dtype", "")[:64],
                int(count),
                int(nulls),
                None if low is None else float(low),
                None if high is None else float(high),
                bytes(sketch),
            )
            if not _readable(profile):
                decoded.reject(f"rejected: {_PROFILE} sketch is not a DataSketches sketch of its kind")
                continue
            decoded.profiles.append(
                ProfileReport(instance, model, version, environment, role, column, start, end, profile)
            )


def _whole(value: float) -> bool:
    return math.isfinite(value) and 0 <= value < _MAX_VALUE and float(value).is_integer()


def _readable(profile: Profile) -> bool:
    """Whether the sketch deserialises as its kind, and its bounds are finite: the merge must never fail on it."""
    if any(b is not None and not math.isfinite(b) for b in (profile.minimum, profile.maximum)):
        return False
    try:
        profile.kll() if profile.kind == NUMERIC else profile.frequent()
    except Exception:
        return False
    return True


def decode_metrics(body: bytes, kind: str, series: CumulativeSeries) -> DecodedMetrics:
    """Decode an (already decompressed) OTLP metrics request into aggregate points; cumulative points become
    deltas against ``series``, the last points this server has seen (one per app)."""
    request = parse_request(body, kind, ExportMetricsServiceRequest())
    decoded = DecodedMetrics()
    for rm in request.resource_metrics:
        instance = _strings(rm.resource.attributes).get("service.instance.id", "")[:_MAX_NAME] or None
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                _metric_points(metric, instance, decoded, series)
    return decoded


def encode_metrics_response(kind: str, decoded: DecodedMetrics) -> bytes:
    """An ExportMetricsServiceResponse in the request's own encoding."""
    response = ExportMetricsServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_data_points = decoded.rejected_points
        response.partial_success.error_message = decoded.error_message
    if kind == PROTOBUF:
        data: bytes = response.SerializeToString()
        return data
    return json.dumps(json_format.MessageToDict(response)).encode()
