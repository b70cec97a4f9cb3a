"""Per-model aggregates -> an OTLP ``ExportMetricsServiceRequest`` (delta temporality), framed by hand.

The metrics and their attributes are in docs/wire-contract.md ("Per-model aggregates"); the profile-only
models' column sketches ride along as ``aither.profile`` gauge points ("Column profiles").
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from .._aggregates import BOUNDS_MS, ModelDelta
from .._records import ModelIdentity
from .._sketches import PROFILE_FORMAT, ProfilePoint
from .._version import __version__
from ._wire import (
    attribute,
    double,
    double_attribute,
    field,
    fixed64,
    int_attribute,
    string_attribute,
    string_field,
    varint,
)

__all__ = ["MetricEncoder"]

_DELTA = 1  # AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_BOUNDS = field(7, struct.pack(f"<{len(BOUNDS_MS)}d", *BOUNDS_MS))  # HistogramDataPoint.explicit_bounds, packed


def _model_attributes(identity: ModelIdentity, number: int) -> bytes:
    parts = [field(number, string_attribute("ml.model.name", identity.name))]
    if identity.version is not None:
        parts.append(field(number, string_attribute("ml.model.version", identity.version)))
    if identity.environment is not None:
        parts.append(field(number, string_attribute("ml.environment", identity.environment)))
    return b"".join(parts)


def _int_point(attributes: bytes, start_ns: int, end_ns: int, value: int) -> bytes:
    # NumberDataPoint: start_time_unix_nano = 2, time_unix_nano = 3 (fixed64), as_int = 6 (sfixed64), attributes = 7.
    return fixed64(2, start_ns) + fixed64(3, end_ns) + varint(6 << 3 | 1) + struct.pack("<q", value) + attributes


def _sum(name: str, unit: str, points: list[bytes]) -> bytes:
    # Metric: name = 1, unit = 3, sum = 7. Sum: data_points = 1, aggregation_temporality = 2, is_monotonic = 3.
    body = b"".join(field(1, point) for point in points) + b"\x10" + varint(_DELTA) + b"\x18\x01"
    return string_field(1, name) + string_field(3, unit) + field(7, body)


def _profile_point(point: ProfilePoint, start_ns: int, end_ns: int) -> bytes:
    """A ``NumberDataPoint`` whose value is the profile's count of values, its sketch a bytes attribute."""
    profile = point.profile
    attributes = [
        _model_attributes(point.model, 7),
        field(7, string_attribute("aither.profile.format", PROFILE_FORMAT)),
        field(7, string_attribute("aither.profile.role", point.role)),
        field(7, string_attribute("aither.profile.column", point.column)),
        field(7, string_attribute("aither.profile.kind", profile.kind)),
        field(7, string_attribute("aither.profile.dtype", profile.dtype)),
        field(7, int_attribute("aither.profile.nulls", profile.nulls)),
    ]
    if profile.minimum is not None and profile.maximum is not None:
        attributes.append(field(7, double_attribute("aither.profile.min", profile.minimum)))
        attributes.append(field(7, double_attribute("aither.profile.max", profile.maximum)))
    attributes.append(field(7, attribute("aither.profile.sketch", field(7, profile.sketch))))  # AnyValue.bytes_value
    return _int_point(b"".join(attributes), start_ns, end_ns, profile.count)


class MetricEncoder:
    """Encodes one interval's deltas as a metrics request, with the same resource and scope as the spans."""

    def __init__(self, resource: Mapping[str, str]) -> None:
        resource_message = b"".join(field(1, string_attribute(k, v)) for k, v in resource.items())
        self._resource_field = field(1, resource_message)
        self._scope_field = field(1, string_field(1, "aither") + string_field(2, __version__))

    def request(
        self,
        deltas: list[ModelDelta],
        drops: Mapping[tuple[ModelIdentity, str], int],
        start_ns: int,
        end_ns: int,
        profiles: Sequence[ProfilePoint] = (),
        profile_start_ns: int = 0,
    ) -> bytes | None:
        """The request for this interval (``profiles`` over ``(profile_start_ns, end_ns]``); None when there is
        nothing to report."""
        calls: list[bytes] = []
        rows: list[bytes] = []
        errors: list[bytes] = []
        durations: list[bytes] = []
        for delta in deltas:
            attributes = _model_attributes(delta.identity, 7)
            calls.append(_int_point(attributes, start_ns, end_ns, delta.calls))
            rows.append(_int_point(attributes, start_ns, end_ns, delta.rows))
            if delta.errors:
                errors.append(_int_point(attributes, start_ns, end_ns, delta.errors))
            # HistogramDataPoint: start = 2, time = 3, count = 4 (fixed64), sum = 5 (double), bucket_counts = 6
            # (packed fixed64), explicit_bounds = 7 (packed double), attributes = 9.
            durations.append(
                fixed64(2, start_ns)
                + fixed64(3, end_ns)
                + fixed64(4, sum(delta.buckets))
                + double(5, delta.duration_sum_ms)
                + field(6, struct.pack(f"<{len(delta.buckets)}Q", *delta.buckets))
                + _BOUNDS
                + _model_attributes(delta.identity, 9)
            )
        dropped = [
            _int_point(
                _model_attributes(identity, 7) + field(7, string_attribute("aither.drop.reason", reason)),
                start_ns,
                end_ns,
                count,
            )
            for (identity, reason), count in drops.items()
            if count
        ]
        metrics: list[bytes] = []
        if calls:
            metrics.append(_sum("aither.prediction.calls", "{call}", calls))
            metrics.append(_sum("aither.prediction.rows", "{row}", rows))
        if errors:
            metrics.append(_sum("aither.prediction.errors", "{call}", errors))
        if durations:
            histogram = b"".join(field(1, point) for point in durations) + b"\x10" + varint(_DELTA)
            metrics.append(string_field(1, "aither.prediction.duration") + string_field(3, "ms") + field(9, histogram))
        if dropped:
            metrics.append(_sum("aither.spans.dropped", "{span}", dropped))
        if profiles:
            # Metric.gauge = 5, Gauge.data_points = 1: a profile is a state over the interval, not a sum.
            points = b"".join(field(1, _profile_point(p, profile_start_ns, end_ns)) for p in profiles)
            metrics.append(string_field(1, "aither.profile") + string_field(3, "{value}") + field(5, points))
        if not metrics:
            return None
        scope_metrics = self._scope_field + b"".join(field(2, metric) for metric in metrics)
        return field(1, self._resource_field + field(2, scope_metrics))
