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

from sqlalchemy import BindParameter, Integer, bindparam, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from aither_server.model.rollup_keys import HOUR_NS, MINUTE_NS, aggregate_bucket, aggregate_percentile_ms, split
from aither_server.query.metric_filter import in_filter
from aither_server.query.time import NS
from aither_server.store.core_tables import (
    aggregate_latency_hours,
    aggregate_minutes,
    aggregate_points,
    instance_latency_hours,
    instance_minutes,
    instance_models,
    instances,
    models,
    predictions,
)
from aither_server.store.engine import Connection, constant, indexed_by, run

__all__ = ["dropped_spans", "latency_from_histograms", "model_totals", "uses_aggregates", "volume_adjustments"]

_COUNTED = ("calls", "errors", "rows")

# The statements take the model row ids as the list ``ids``, a time range as ``lo`` / ``hi`` and a bucket's
# width as ``per`` (an integer: SQLAlchemy's ``//`` of Integers is a plain ``/``, which truncates on both engines).
_SENDERS = select(instances.c.id).where(instances.c.aggregates_since_ns.is_not(None))
_ZERO: ColumnClause[int] = literal_column("0")
_ONE: ColumnClause[int] = literal_column("1")
#: ``GROUP BY 1, 2``: the bucket is an expression of parameters, which PostgreSQL cannot match to a GROUP BY's.
_BY_1: ColumnClause[int] = literal_column("1")
_BY_2: ColumnClause[int] = literal_column("2")


def _ids() -> BindParameter[int]:
    return bindparam("ids", expanding=True)


def _per() -> BindParameter[int]:
    return bindparam("per", type_=Integer)


def _metric(column: ColumnElement[str], *names: str) -> ColumnElement[bool]:
    """``column`` among constant metric names, written into the SQL as literals (as they were)."""
    if len(names) == 1:
        return column == constant(names[0])
    return column.in_([constant(name) for name in names])


_am, _ap, _im, _ims = aggregate_minutes.c, aggregate_points.c, instance_minutes.c, instance_models.c

_HAS_POINTS = select(_ONE).select_from(aggregate_points).where(_ap.model_id.in_(_ids())).limit(1)
_HAS_SENDER_SPANS = (
    select(_ONE).select_from(instance_models).where(_ims.model_id.in_(_ids()), _ims.instance_id.in_(_SENDERS)).limit(1)
)
_SENDER_MINUTES = (
    select(_im.minute // _per(), func.sum(_im.calls), func.sum(_im.errors), func.sum(_im.rows))
    .where(in_filter(instance_minutes, "minute"), _im.instance_id.in_(_SENDERS))
    .group_by(_BY_1)
)
_AGGREGATE_MINUTES = (
    select(_am.minute // _per(), _am.metric, func.sum(_am.value))
    .where(in_filter(aggregate_minutes, "minute"), _metric(_am.metric, *_COUNTED))
    .group_by(_BY_1, _BY_2)
)
_p = predictions.c
_SENDER_SPANS = indexed_by(
    select(_p.start_ns // _per(), func.count(), func.sum(_p.status), func.sum(_p.n_rows))
    .where(in_filter(predictions), _p.instance_id.in_(_SENDERS))
    .group_by(_BY_1),
    predictions,
    "predictions_model_time",
)
_AGGREGATE_POINTS = (
    select(_ap.end_ns // _per(), _ap.metric, func.sum(_ap.value))
    .where(in_filter(aggregate_points, "end_ns"), _metric(_ap.metric, *_COUNTED))
    .group_by(_BY_1, _BY_2)
)
_ALL_SPANS = select(func.coalesce(func.sum(models.c.calls), _ZERO)).where(models.c.id.in_(_ids()))
_ALL_SENDER_SPANS = select(func.coalesce(func.sum(_ims.calls), _ZERO)).where(
    _ims.model_id.in_(_ids()), _ims.instance_id.in_(_SENDERS)
)
_alh, _ilh = aggregate_latency_hours.c, instance_latency_hours.c
_AGGREGATE_LATENCY = (
    select(_alh.bucket, func.sum(_alh.calls)).where(in_filter(aggregate_latency_hours, "hour")).group_by(_alh.bucket)
)
_OTHER_LATENCY = (
    select(_ilh.bucket, func.sum(_ilh.calls))
    .where(in_filter(instance_latency_hours, "hour"), _ilh.instance_id.not_in(_SENDERS))
    .group_by(_ilh.bucket)
)
_POINT_HISTOGRAMS = select(_ap.buckets).where(in_filter(aggregate_points, "end_ns"), _metric(_ap.metric, "duration"))
_OTHER_LATENCIES = indexed_by(
    select(_p.latency_ns).where(in_filter(predictions), or_(_p.instance_id.is_(None), _p.instance_id.not_in(_SENDERS))),
    predictions,
    "predictions_model_time",
)
_DROPPED_MINUTES = (
    select(_am.reason, func.sum(_am.value))
    .where(in_filter(aggregate_minutes, "minute"), _metric(_am.metric, "dropped"))
    .group_by(_am.reason)
)
_DROPPED_POINTS = (
    select(_ap.reason, func.sum(_ap.value))
    .where(in_filter(aggregate_points, "end_ns"), _metric(_ap.metric, "dropped"))
    .group_by(_ap.reason)
)
_senders = (
    select(_ims.model_id, func.sum(_ims.calls).label("calls"), func.sum(_ims.rows).label("rows"))
    .where(_ims.instance_id.in_(_SENDERS))
    .group_by(_ims.model_id)
    .subquery("s")
)
_m = models.c
_TOTALS = select(
    _m.id,
    _m.calls - func.coalesce(_senders.c.calls, _ZERO) + _m.aggregate_calls,
    _m.predictions - func.coalesce(_senders.c.rows, _ZERO) + _m.aggregate_rows,
).select_from(models.outerjoin(_senders, _senders.c.model_id == _m.id))


def uses_aggregates(conn: Connection, ids: Sequence[int]) -> bool:
    """Whether these model rows have aggregate points, or spans of instances that send aggregates."""
    if run(conn, _HAS_POINTS, {"ids": ids}).fetchone():
        return True
    return run(conn, _HAS_SENDER_SPANS, {"ids": ids}).fetchone() is not None


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
    bucket_ns = bucket_s * NS
    minutes, edges = split(lo, hi, MINUTE_NS) if bucket_s % 60 == 0 else (None, [(lo, hi)])
    out: dict[int, list[int]] = {}
    if minutes is not None:
        given = {"ids": ids, "lo": minutes[0], "hi": minutes[1], "per": bucket_s // 60}
        _add(out, run(conn, _SENDER_MINUTES, given), -1)
        _add_metrics(out, run(conn, _AGGREGATE_MINUTES, given))
    for a, b in edges:
        given = {"ids": ids, "lo": a, "hi": b, "per": bucket_ns}
        _add(out, run(conn, _SENDER_SPANS, given), -1)
        _add_metrics(out, run(conn, _AGGREGATE_POINTS, given))
    return out


def _other_spans(conn: Connection, ids: Sequence[int]) -> bool:
    """Whether these model rows have spans of instances that send no aggregates (or of no instance)."""
    all_spans = run(conn, _ALL_SPANS, {"ids": ids}).fetchone()[0]
    sender_spans = run(conn, _ALL_SENDER_SPANS, {"ids": ids}).fetchone()[0]
    return bool(all_spans > sender_spans)


def _histogram(conn: Connection, ids: Sequence[int], lo: int, hi: int) -> dict[int, int]:
    """Calls per bucket of the SDK's histogram: the aggregate points', and the span latencies of the
    instances that send no aggregates (read only when there are such spans: the raw rows at the edges of the
    range are then read one by one, for their instance)."""
    histogram: dict[int, int] = {}
    parts: list[Iterable[tuple[int, int]]] = []
    other_spans = _other_spans(conn, ids)
    hours, edges = split(lo, hi, HOUR_NS)
    if hours is not None:
        given = {"ids": ids, "lo": hours[0], "hi": hours[1]}
        parts.append(run(conn, _AGGREGATE_LATENCY, given))
        if other_spans:
            parts.append(run(conn, _OTHER_LATENCY, given))
    for a, b in edges:
        given = {"ids": ids, "lo": a, "hi": b}
        for (buckets,) in run(conn, _POINT_HISTOGRAMS, given):
            parts.append(enumerate(json.loads(buckets)))
        if not other_spans:
            continue
        parts.append((aggregate_bucket(latency), 1) for (latency,) in run(conn, _OTHER_LATENCIES, given))
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
    minutes, edges = split(lo, hi, MINUTE_NS)
    out: dict[str, int] = {}
    parts: list[Iterable[tuple[str, int]]] = []
    if minutes is not None:
        parts.append(run(conn, _DROPPED_MINUTES, {"ids": ids, "lo": minutes[0], "hi": minutes[1]}))
    for a, b in edges:
        parts.append(run(conn, _DROPPED_POINTS, {"ids": ids, "lo": a, "hi": b}))
    for part in parts:
        for reason, count in part:
            out[reason] = out.get(reason, 0) + count
    return dict(sorted(out.items()))


def model_totals(conn: Connection) -> dict[int, tuple[int, int]]:
    """(calls, rows) of every model row, all time: its spans, less those of instances that send aggregates,
    plus its aggregates. Every model row is present."""
    return {model_id: (calls, rows) for model_id, calls, rows in run(conn, _TOTALS)}
