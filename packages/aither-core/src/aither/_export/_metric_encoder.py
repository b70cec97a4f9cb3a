"""Per-model aggregates -> an OTLP ``ExportMetricsServiceRequest`` (delta temporality), framed by hand.

The metrics and their attributes are in docs/wire-contract.md ("Per-model aggregates").
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from .._aggregates import BOUNDS_MS, ModelDelta
from .._records import ModelIdentity
from .._version import __version__
from ._wire import double, field, fixed64, string_attribute, string_field, varint

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
    ) -> bytes | None:
        """The request for this interval; None when there is nothing to report."""
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
        if not metrics:
            return None
        scope_metrics = self._scope_field + b"".join(field(2, metric) for metric in metrics)
        return field(1, self._resource_field + field(2, scope_metrics))
