"""Latency percentiles over a time range: exact nearest ranks, located through the latency histograms."""

from __future__ import annotations

import math

from sqlalchemy import Select, Table, and_, bindparam, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from aither_server.model.rollup_keys import (
    latency_bucket,
    latency_range,
    split_days,
)
from aither_server.query.metric_filter import Filter, in_filter
from aither_server.query.read_ahead import ahead_for
from aither_server.store.core_tables import latency_days, latency_hours, predictions
from aither_server.store.engine import Connection, indexed_by, run

__all__ = ["EXACT_PERCENTILE_CALLS", "PERCENTILES", "latency", "percentile_ranks"]

#: Up to this many calls in a time range, latency percentiles are exact; past it, interpolated in their bucket.
EXACT_PERCENTILE_CALLS = 1_000_000


PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def _histogram(table: Table, unit: str) -> Select[tuple[int, int]]:
    """Calls per latency bucket of model rows ``ids`` in ``table``'s [lo, hi) ``unit`` s."""
    c = table.c
    return select(c.bucket, func.sum(c.calls)).where(in_filter(table, unit)).group_by(c.bucket)


_HISTOGRAMS = {"latency_days": _histogram(latency_days, "day"), "latency_hours": _histogram(latency_hours, "hour")}
_LATENCIES = indexed_by(
    select(predictions.c.latency_ns).where(in_filter(predictions)), predictions, "predictions_model_time"
)
#: The latencies inside some buckets, by the buckets' shape (whether each has a lower and an upper bound): at
#: most 3 buckets (p50, p95, p99), so a handful of statements, each made once.
_in_buckets: dict[tuple[tuple[bool, bool], ...], Select[tuple[int]]] = {}


def _latencies_in(shape: tuple[tuple[bool, bool], ...]) -> Select[tuple[int]]:
    """``latency_ns`` of the filter's rows in buckets of ``shape``, bounds ``low<i>`` / ``high<i>``."""
    found = _in_buckets.get(shape)
    if found is None:
        latency_ns = predictions.c.latency_ns
        ranges: list[ColumnElement[bool]] = []
        for i, (low, high) in enumerate(shape):
            terms = ([latency_ns >= bindparam(f"low{i}")] if low else []) + (
                [latency_ns < bindparam(f"high{i}")] if high else []
            )
            ranges.append(and_(*terms) if terms else true())
        found = _in_buckets[shape] = indexed_by(
            select(latency_ns).where(in_filter(predictions), or_(*ranges)), predictions, "predictions_model_time"
        )
    return found


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
    rollups = ([("latency_days", days)] if days is not None else []) + [("latency_hours", h) for h in hours]
    ahead = ahead_for(ids)
    read = None if ahead is None else ahead.latency.get((lo, hi))
    if read is not None:
        histogram, rollups, edges = dict(read), [], []  # a slice of whole hours: all of it read ahead
    for table, (first, last) in rollups:
        for bucket, count in run(conn, _HISTOGRAMS[table], {"ids": ids, "lo": first, "hi": last}):
            histogram[bucket] = histogram.get(bucket, 0) + count
    for a, b in edges:
        for (latency,) in run(conn, _LATENCIES, {"ids": ids, "lo": a, "hi": b}):
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
    shape: list[tuple[bool, bool]] = []
    given: dict[str, object] = {"ids": ids, "lo": lo, "hi": hi}
    for i, bucket in enumerate(buckets):
        low, high = latency_range(bucket)
        shape.append((low is not None, high is not None))
        given.update({f"low{i}": low, f"high{i}": high})
    values: dict[int, list[int]] = {bucket: [] for bucket in buckets}
    if buckets:
        for (latency,) in run(conn, _latencies_in(tuple(shape)), given):
            values[latency_bucket(latency)].append(latency)
    for label, (bucket, offset) in targets.items():
        found = sorted(values[bucket])
        out[label] = found[offset] / 1e6 if offset < len(found) else None
    return out
