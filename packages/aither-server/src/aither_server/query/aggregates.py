"""Reads that merge the per-model aggregates of ``/v1/metrics`` with the counts of stored spans.

An instance (``service.instance.id``) *sends aggregates* once one of its points was stored
(``instances.aggregates_since_ns``). Its calls, rows, errors and latencies then come from its points, for all
time; every other instance's (a plain OpenTelemetry SDK, spans stored before schema version 2) from its spans.
The spans of sending instances are taken out of the span rollups through ``instance_minutes`` (whole minutes)
and the raw rows (partial minutes), so no call is counted twice. Latency percentiles of such models come from
one histogram in the SDK's buckets (``_rollup.AGGREGATE_BOUNDS_MS``): the points' histograms plus the other
instances' span latencies (``instance_latency_hours``).

Aggregate points are placed in time by their end (``time_unix_nano``), spans by their start. No protobuf here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence

from aither_server.model.rollup_keys import HOUR_NS, MINUTE_NS, aggregate_bucket, aggregate_percentile_ms, split
from aither_server.query.time import NS
from aither_server.store.engine import Connection, placeholders

__all__ = ["dropped_spans", "latency_from_histograms", "model_totals", "uses_aggregates", "volume_adjustments"]

_SENDERS = "SELECT id FROM instances WHERE aggregates_since_ns IS NOT NULL"
_COUNTED = ("calls", "errors", "rows")


def uses_aggregates(conn: Connection, ids: Sequence[int]) -> bool:
    """Whether these model rows have aggregate points, or spans of instances that send aggregates."""
    marks = placeholders(ids)
    if conn.execute(f"SELECT 1 FROM aggregate_points WHERE model_id IN ({marks}) LIMIT 1", ids).fetchone():
        return True
    found = conn.execute(
        f"SELECT 1 FROM instance_models WHERE model_id IN ({marks}) AND instance_id IN ({_SENDERS}) LIMIT 1", ids
    ).fetchone()
    return found is not None


def _add(out: dict[int, list[int]], rows: Iterable[tuple[int, int, int | None, int | None]], sign: int) -> None:
    for bucket, calls, errors, n_rows in rows:
        cell = out.setdefault(bucket, [0, 0, 0])
        cell[0] += sign * calls
        cell[1] += sign * (errors or 0)
        cell[2] += sign * (n_rows or 0)


def _add_metrics(out: dict[int, list[int]], rows: Iterable[tuple[int, str, int]]) -> None:
    for bucket, metric, value in rows:
        out.setdefault(bucket, [0, 0, 0])[_COUNTED.index(metric)] += value


def volume_adjustments(conn: Connection, ids: Sequence[int], lo: int, hi: int, bucket_s: int) -> dict[int, list[int]]:
    """Per volume bucket, [calls, errors, rows] to add to the span volume of [lo, hi): the aggregates, less
    the spans of the instances that send them."""
    marks = placeholders(ids)
    bucket_ns = bucket_s * NS
    minutes, edges = split(lo, hi, MINUTE_NS) if bucket_s % 60 == 0 else (None, [(lo, hi)])
    out: dict[int, list[int]] = {}
    counted = f"metric IN ({placeholders(_COUNTED)})"
    if minutes is not None:
        per = bucket_s // 60
        _add(
            out,
            conn.execute(
                f"SELECT minute / {per}, sum(calls), sum(errors), sum(rows) FROM instance_minutes"
                f" WHERE model_id IN ({marks}) AND minute >= ? AND minute < ? AND instance_id IN ({_SENDERS})"
                " GROUP BY 1",
                (*ids, *minutes),
            ),
            -1,
        )
        _add_metrics(
            out,
            conn.execute(
                f"SELECT minute / {per}, metric, sum(value) FROM aggregate_minutes WHERE model_id IN ({marks})"
                f" AND minute >= ? AND minute < ? AND {counted} GROUP BY 1, 2",
                (*ids, *minutes, *_COUNTED),
            ),
        )
    for a, b in edges:
        _add(
            out,
            conn.execute(
                f"SELECT start_ns / {bucket_ns}, count(*), sum(status), sum(n_rows) FROM predictions"
                f" INDEXED BY predictions_model_time WHERE model_id IN ({marks}) AND start_ns >= ? AND start_ns < ?"
                f" AND instance_id IN ({_SENDERS}) GROUP BY 1",
                (*ids, a, b),
            ),
            -1,
        )
        _add_metrics(
            out,
            conn.execute(
                f"SELECT end_ns / {bucket_ns}, metric, sum(value) FROM aggregate_points WHERE model_id IN ({marks})"
                f" AND end_ns >= ? AND end_ns < ? AND {counted} GROUP BY 1, 2",
                (*ids, a, b, *_COUNTED),
            ),
        )
    return out


def _other_spans(conn: Connection, ids: Sequence[int]) -> bool:
    """Whether these model rows have spans of instances that send no aggregates (or of no instance)."""
    marks = placeholders(ids)
    all_spans = conn.execute(f"SELECT coalesce(sum(calls), 0) FROM models WHERE id IN ({marks})", ids).fetchone()[0]
    sender_spans = conn.execute(
        f"SELECT coalesce(sum(calls), 0) FROM instance_models WHERE model_id IN ({marks})"
        f" AND instance_id IN ({_SENDERS})",
        ids,
    ).fetchone()[0]
    return bool(all_spans > sender_spans)


def _histogram(conn: Connection, ids: Sequence[int], lo: int, hi: int) -> dict[int, int]:
    """Calls per bucket of the SDK's histogram: the aggregate points', and the span latencies of the
    instances that send no aggregates (read only when there are such spans: the raw rows at the edges of the
    range are then read one by one, for their instance)."""
    marks = placeholders(ids)
    histogram: dict[int, int] = {}
    parts: list[Iterable[tuple[int, int]]] = []
    other_spans = _other_spans(conn, ids)
    hours, edges = split(lo, hi, HOUR_NS)
    if hours is not None:
        parts.append(
            conn.execute(
                f"SELECT bucket, sum(calls) FROM aggregate_latency_hours WHERE model_id IN ({marks})"
                " AND hour >= ? AND hour < ? GROUP BY bucket",
                (*ids, *hours),
            )
        )
        if other_spans:
            parts.append(
                conn.execute(
                    f"SELECT bucket, sum(calls) FROM instance_latency_hours WHERE model_id IN ({marks})"
                    f" AND hour >= ? AND hour < ? AND instance_id NOT IN ({_SENDERS}) GROUP BY bucket",
                    (*ids, *hours),
                )
            )
    for a, b in edges:
        for (buckets,) in conn.execute(
            f"SELECT buckets FROM aggregate_points WHERE model_id IN ({marks}) AND end_ns >= ? AND end_ns < ?"
            " AND metric = 'duration'",
            (*ids, a, b),
        ):
            parts.append(enumerate(json.loads(buckets)))
        if not other_spans:
            continue
        parts.append(
            (aggregate_bucket(latency), 1)
            for (latency,) in conn.execute(
                f"SELECT latency_ns FROM predictions INDEXED BY predictions_model_time WHERE model_id IN ({marks})"
                f" AND start_ns >= ? AND start_ns < ? AND (instance_id IS NULL OR instance_id NOT IN ({_SENDERS}))",
                (*ids, a, b),
            )
        )
    for part in parts:
        for bucket, count in part:
            if count:
                histogram[bucket] = histogram.get(bucket, 0) + count
    return histogram


def latency_from_histograms(
    conn: Connection, ids: Sequence[int], lo: int, hi: int, ranks: dict[str, float]
) -> dict[str, float | None]:
    """Percentiles (``ranks``: name -> quantile) from the merged histogram, interpolated geometrically inside
    their bucket: within about 9.5% of the exact value, one bucket (19%) at worst."""
    histogram = _histogram(conn, ids, lo, hi)
    total = sum(histogram.values())
    out: dict[str, float | None] = dict.fromkeys(ranks)
    if total:
        for name, q in ranks.items():
            rank = max(0, math.ceil(q * total) - 1)
            out[name] = aggregate_percentile_ms(histogram, rank)
    return out


def dropped_spans(conn: Connection, ids: Sequence[int], lo: int, hi: int) -> dict[str, int]:
    """Prediction spans the SDKs reported as not delivered, by ``aither.drop.reason``."""
    marks = placeholders(ids)
    minutes, edges = split(lo, hi, MINUTE_NS)
    out: dict[str, int] = {}
    parts: list[Iterable[tuple[str, int]]] = []
    if minutes is not None:
        parts.append(
            conn.execute(
                f"SELECT reason, sum(value) FROM aggregate_minutes WHERE model_id IN ({marks})"
                " AND minute >= ? AND minute < ? AND metric = 'dropped' GROUP BY reason",
                (*ids, *minutes),
            )
        )
    for a, b in edges:
        parts.append(
            conn.execute(
                f"SELECT reason, sum(value) FROM aggregate_points WHERE model_id IN ({marks})"
                " AND end_ns >= ? AND end_ns < ? AND metric = 'dropped' GROUP BY reason",
                (*ids, a, b),
            )
        )
    for part in parts:
        for reason, count in part:
            out[reason] = out.get(reason, 0) + count
    return dict(sorted(out.items()))


def model_totals(conn: Connection) -> dict[int, tuple[int, int]]:
    """(calls, rows) of every model row, all time: its spans, less those of instances that send aggregates,
    plus its aggregates. Every model row is present."""
    return {
        model_id: (calls, rows)
        for model_id, calls, rows in conn.execute(
            "SELECT m.id, m.calls - coalesce(s.calls, 0) + m.aggregate_calls,"
            " m.predictions - coalesce(s.rows, 0) + m.aggregate_rows FROM models m LEFT JOIN"
            " (SELECT model_id, sum(calls) AS calls, sum(rows) AS rows FROM instance_models"
            f" WHERE instance_id IN ({_SENDERS}) GROUP BY model_id) s ON s.model_id = m.id"
        )
    }
