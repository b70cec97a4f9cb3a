"""Calls, errors and rows per time bucket: whole hours and minutes from the rollups, the edges from the raw rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Integer, bindparam, func, literal_column, select

from aither_server.model.rollup_keys import (
    HOUR_NS,
    MINUTE_NS,
    split,
)
from aither_server.query.metric_filter import Filter, in_filter
from aither_server.query.read_ahead import ahead_for
from aither_server.query.sums import add_sums
from aither_server.query.time import NS
from aither_server.store.core_tables import predictions, volume_minutes
from aither_server.store.core_tables import volume_hours as volume_hours_table
from aither_server.store.engine import Connection, indexed_by, run

__all__ = ["merged_volume", "volume", "volume_hours"]

# (bucket, calls, errors, rows) of model rows ``ids`` over [lo, hi), in buckets of ``per`` hours, minutes or
# nanoseconds (an integer: SQLAlchemy's ``//`` of Integers is a plain ``/``, which truncates on both engines).
# ``GROUP BY 1``: the bucket is an expression of a parameter, which PostgreSQL cannot match to a GROUP BY's.
_vh, _vm, _p = volume_hours_table.c, volume_minutes.c, predictions.c
_HOURS = (
    select(_vh.hour // bindparam("per", type_=Integer), func.sum(_vh.calls), func.sum(_vh.errors), func.sum(_vh.rows))
    .where(in_filter(volume_hours_table, "hour"))
    .group_by(literal_column("1"))
)
_MINUTES = (
    select(_vm.minute // bindparam("per", type_=Integer), func.sum(_vm.calls), func.sum(_vm.errors), func.sum(_vm.rows))
    .where(in_filter(volume_minutes, "minute"))
    .group_by(literal_column("1"))
)
_SPANS = indexed_by(
    select(_p.start_ns // bindparam("per", type_=Integer), func.count(), func.sum(_p.status), func.sum(_p.n_rows))
    .where(in_filter(predictions))
    .group_by(literal_column("1")),
    predictions,
    "predictions_model_time",
)


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
    return run(conn, _HOURS, {"ids": ids, "lo": first, "hi": last, "per": per})


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
            given = {"ids": f.ids, "lo": minutes[0], "hi": minutes[1], "per": bucket_s // 60}
            parts.append(run(conn, _MINUTES, given))
    for a, b in edges:
        parts.append(run(conn, _SPANS, {"ids": f.ids, "lo": a, "hi": b, "per": bucket_ns}))
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
