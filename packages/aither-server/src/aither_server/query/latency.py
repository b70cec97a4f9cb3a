"""Latency percentiles over a time range: exact nearest ranks, located through the latency histograms."""

from __future__ import annotations

import math

from aither_server.model.rollup_keys import (
    latency_bucket,
    latency_range,
    split_days,
)
from aither_server.query.metric_filter import Filter
from aither_server.query.read_ahead import ahead_for
from aither_server.store.engine import Connection, placeholders

__all__ = ["EXACT_PERCENTILE_CALLS", "PERCENTILES", "latency", "percentile_ranks"]

#: Up to this many calls in a time range, latency percentiles are exact; past it, interpolated in their bucket.
EXACT_PERCENTILE_CALLS = 1_000_000


PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def percentile_ranks(n: int) -> dict[str, int]:
    return {name: max(0, math.ceil(q * n) - 1) for name, q in PERCENTILES.items()}


def latency(conn: Connection, f: Filter, lo: int, hi: int, calls: int) -> dict[str, float | None]:
    """Nearest-rank percentiles: the hourly latency histogram locates each rank's bucket, then one scan of the
    covering (model, time) index reads the latencies inside those few buckets (about 4% of the calls around
    the median, far fewer in the tail) to pick the exact value; past :data:`EXACT_PERCENTILE_CALLS` calls, or
    for approximate metrics, the value is interpolated inside its bucket instead."""
    ids = f.ids
    histogram: dict[int, int] = {}
    # Whole days from latency_days (a 30-day range reads 30 of them, not 720 hours of buckets), whole hours
    # from latency_hours, the rest from the raw rows.
    days, hours, edges = split_days(lo, hi)
    rollups = ([("latency_days", "day", days)] if days is not None else []) + [
        ("latency_hours", "hour", h) for h in hours
    ]
    ahead = ahead_for(ids)
    read = None if ahead is None else ahead.latency.get((lo, hi))
    if read is not None:
        histogram, rollups, edges = dict(read), [], []  # a slice of whole hours: all of it read ahead
    for table, unit, (first, last) in rollups:
        for bucket, count in conn.execute(
            f"SELECT bucket, sum(calls) FROM {table} WHERE model_id IN ({placeholders(ids)})"
            f" AND {unit} >= ? AND {unit} < ? GROUP BY bucket",
            (*ids, first, last),
        ):
            histogram[bucket] = histogram.get(bucket, 0) + count
    for a, b in edges:
        for (latency,) in conn.execute(
            f"SELECT latency_ns FROM predictions INDEXED BY predictions_model_time WHERE {f.sql}",
            (*ids, a, b),
        ):
            bucket = latency_bucket(latency)
            histogram[bucket] = histogram.get(bucket, 0) + 1
    # Which bucket holds each rank, and the rank's offset inside it.
    targets: dict[str, tuple[int, int]] = {}
    below = 0
    pending = sorted(percentile_ranks(calls).items(), key=lambda item: item[1])
    for bucket in sorted(histogram):
        count = histogram[bucket]
        while pending and pending[0][1] < below + count:
            label, rank = pending.pop(0)
            targets[label] = (bucket, rank - below)
        below += count
        if not pending:
            break
    out: dict[str, float | None] = dict.fromkeys(percentile_ranks(calls))
    if (f.approximate or calls > EXACT_PERCENTILE_CALLS) and all(
        None not in latency_range(b) for b, _ in targets.values()
    ):
        # Past this many calls, the rank is placed inside its bucket (each 4% wider than the one before) by
        # geometric interpolation, as the aggregates' percentiles are: within about 2% of the exact value,
        # never more than the bucket's 4%. The exact pass below reads the whole time range of the covering
        # index, which grows with the data (about 0.15 s a million calls).
        for label, (bucket, offset) in targets.items():
            low, high = latency_range(bucket)
            assert low is not None and high is not None
            out[label] = low * (high / low) ** ((offset + 0.5) / histogram[bucket]) / 1e6
        return out
    # One pass over the covering (model, time) index reads just the latencies in those buckets.
    buckets = sorted({bucket for bucket, _ in targets.values()})
    ranges, params = [], []
    for bucket in buckets:
        low, high = latency_range(bucket)
        terms = []
        if low is not None:
            terms.append("latency_ns >= ?")
            params.append(low)
        if high is not None:
            terms.append("latency_ns < ?")
            params.append(high)
        ranges.append(" AND ".join(terms) or "1 = 1")
    values: dict[int, list[int]] = {bucket: [] for bucket in buckets}
    if buckets:
        for (latency,) in conn.execute(
            f"SELECT latency_ns FROM predictions INDEXED BY predictions_model_time WHERE {f.sql}"
            f" AND (({') OR ('.join(ranges)}))",
            (*ids, lo, hi, *params),
        ):
            values[latency_bucket(latency)].append(latency)
    for label, (bucket, offset) in targets.items():
        found = sorted(values[bucket])
        out[label] = found[offset] / 1e6 if offset < len(found) else None
    return out
