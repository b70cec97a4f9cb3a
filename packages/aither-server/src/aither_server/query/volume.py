"""Calls, errors and rows per time bucket: whole hours and minutes from the rollups, the edges from the raw rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aither_server.model.rollup_keys import (
    HOUR_NS,
    MINUTE_NS,
    split,
)
from aither_server.query.metric_filter import Filter
from aither_server.query.read_ahead import ahead_for
from aither_server.query.sums import add_sums
from aither_server.query.time import NS
from aither_server.store.engine import Connection, placeholders

__all__ = ["merged_volume", "volume", "volume_hours"]


def volume_hours(
    conn: Connection, ids: Sequence[int], first: int, last: int, per: int
) -> Iterable[tuple[int, int, int, int]]:
    """(bucket of ``per`` hours, calls, errors, rows) of hours [first, last), from the hours read ahead when
    they cover them (the same sums: the bucket is the hour divided by ``per``, as in SQL)."""
    ahead = ahead_for(ids)
    if ahead is not None and ahead.volume_hours[0] <= first and last <= ahead.volume_hours[1]:
        out: dict[int, list[int]] = {}
        for hour, calls, errors, rows in ahead.volume_hours[2]:
            if first <= hour < last:
                cell = out.setdefault(hour // per, [0, 0, 0])
                cell[0] += calls
                cell[1] += errors
                cell[2] += rows
        return [(b, c, e, r) for b, (c, e, r) in sorted(out.items())]
    return conn.execute(
        f"SELECT hour / {per}, sum(calls), sum(errors), sum(rows) FROM volume_hours"
        f" WHERE model_id IN ({placeholders(ids)}) AND hour >= ? AND hour < ? GROUP BY 1",
        (*ids, first, last),
    )


def volume(conn: Connection, f: Filter, lo: int, hi: int, bucket_s: int) -> list[tuple[int, int, int, int]]:
    """(bucket, calls, errors, rows) per time bucket, from ``volume_minutes`` when buckets are whole minutes."""
    bucket_ns = bucket_s * NS
    out: dict[int, list[int]] = {}
    parts: list[Iterable[tuple[int, int, int, int]]] = []
    # Whole hours from volume_hours when buckets are whole hours (a day is 24 rows, not 1,440 minutes), whole
    # minutes from volume_minutes, the rest from the raw rows.
    hours, spans = split(lo, hi, HOUR_NS) if bucket_s % 3600 == 0 else (None, [(lo, hi)])
    if hours is not None:
        parts.append(volume_hours(conn, f.ids, *hours, bucket_s // 3600))
    edges: list[tuple[int, int]] = []
    for span_lo, span_hi in spans:
        minutes, rest = split(span_lo, span_hi, MINUTE_NS) if bucket_s % 60 == 0 else (None, [(span_lo, span_hi)])
        edges.extend(rest)
        if minutes is not None:
            parts.append(
                conn.execute(
                    f"SELECT minute / {bucket_s // 60}, sum(calls), sum(errors), sum(rows) FROM volume_minutes"
                    f" WHERE model_id IN ({placeholders(f.ids)}) AND minute >= ? AND minute < ? GROUP BY 1",
                    (*f.ids, *minutes),
                )
            )
    for a, b in edges:
        parts.append(
            conn.execute(
                f"SELECT start_ns / {bucket_ns}, count(*), sum(status), sum(n_rows)"
                f" FROM predictions INDEXED BY predictions_model_time WHERE {f.sql} GROUP BY 1",
                (*f.ids, a, b),
            )
        )
    for part in parts:
        for b, calls, errors, rows in part:
            add_sums(out, b, calls, errors, rows)
    return [(b, *out[b]) for b in sorted(out)]  # type: ignore[misc]


def merged_volume(
    volume: list[tuple[int, int, int, int]], adjustments: dict[int, list[int]]
) -> list[tuple[int, int, int, int]]:
    """(bucket, calls, errors, rows) of the spans plus ``adjustments``; buckets left empty are dropped."""
    merged = {b: [calls, errors, rows] for b, calls, errors, rows in volume}
    for b, (calls, errors, rows) in adjustments.items():
        cell = merged.setdefault(b, [0, 0, 0])
        cell[0] += calls
        cell[1] += errors
        cell[2] += rows
    return [(b, c, e, r) for b, (c, e, r) in sorted(merged.items()) if c or e or r]
