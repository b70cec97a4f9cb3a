"""Reading a chart's slices ahead: one query per table for all of them, which each slice's metrics then
read instead of their own queries (the same sums)."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Sequence

from sqlalchemy import Integer, Select, Table, bindparam, func, literal_column, select
from sqlalchemy.sql.elements import ColumnClause

from aither_server.model.rollup_keys import (
    DAY_NS,
    HOUR_NS,
)
from aither_server.query import aggregates as query_aggregates
from aither_server.query.metric_filter import MAX_PAIRS, in_filter
from aither_server.store.core_tables import (
    latency_days,
    latency_hours,
    models,
    quality_days,
    quality_hours,
    volume_hours,
)
from aither_server.store.engine import Connection, run

__all__ = ["ReadAhead", "ahead_for", "read_ahead", "sampled"]


@dataclasses.dataclass
class ReadAhead:
    """What :func:`read_ahead` read for these model rows' slices."""

    ids: tuple[int, ...]
    #: (first hour, last hour excluded, (hour, calls, errors, rows) of each hour with spans).
    volume_hours: tuple[int, int, list[tuple[int, int, int, int]]]
    #: Whether some spans were kept 1 in k; whether some instances send aggregates.
    sampled: bool
    aggregated: bool
    #: (start, end) of a slice -> its latency histogram (bucket -> calls).
    latency: dict[tuple[int, int], dict[int, int]]
    #: (start, end) of a slice -> its quality groups, each with its plain and its weighted sums (13 columns).
    quality: dict[
        tuple[int, int], list[tuple[int, int, str, str, int, float, float, float, float, float, float, float, float]]
    ]


_read_ahead: contextvars.ContextVar[ReadAhead | None] = contextvars.ContextVar(
    "aither_metrics_read_ahead", default=None
)


# Per slice of ``per`` days or hours from ``first`` (integers: SQLAlchemy's ``//`` of Integers is a plain ``/``,
# which truncates on both engines), of model rows ``ids`` over [lo, hi). ``GROUP BY 1, ...``: the slice is an
# expression of parameters, which PostgreSQL cannot match to a GROUP BY's.
_BY: list[ColumnClause[int]] = [literal_column(str(i)) for i in range(1, 6)]
_ONE: ColumnClause[int] = literal_column("1")


def _slices(table: Table, unit: str, *columns: str) -> Select[tuple[int, ...]]:
    c = table.c
    index = (c[unit] - bindparam("first")) // bindparam("per", type_=Integer)
    return select(index, *(c[name] for name in columns)).where(in_filter(table, unit))


def _histograms(table: Table, unit: str) -> Select[tuple[int, ...]]:
    return _slices(table, unit, "bucket").add_columns(func.sum(table.c.calls)).group_by(*_BY[:2])


_QUALITY_SUMS = ("rows", "n_num", "sum_abs", "sum_sq", "w_rows", "w_num", "w_abs", "w_sq")


def _quality(table: Table, unit: str) -> Select[tuple[int, ...]]:
    c = table.c
    return (
        _slices(table, unit, "kind", "label_kind", "pred_key", "label_key")
        .add_columns(func.max(c.scored), *(func.sum(c[name]) for name in _QUALITY_SUMS))
        .group_by(*_BY)
        .having(func.sum(c.rows) > literal_column("0"))
    )


#: By whether slices are whole days.
_HISTOGRAMS = {True: _histograms(latency_days, "day"), False: _histograms(latency_hours, "hour")}
_QUALITY = {True: _quality(quality_days, "day"), False: _quality(quality_hours, "hour")}
_vh = volume_hours.c
_VOLUME_HOURS = (
    select(_vh.hour, func.sum(_vh.calls), func.sum(_vh.errors), func.sum(_vh.rows))
    .where(in_filter(volume_hours, "hour"))
    .group_by(_BY[0])
)
_SAMPLED = (
    select(_ONE)
    .select_from(models)
    .where(models.c.id.in_(bindparam("ids", expanding=True)), models.c.sampled == _ONE)
    .limit(1)
)


@contextlib.contextmanager
def read_ahead(conn: Connection, ids: Sequence[int], start_ns: int, slice_ns: int, count: int) -> Iterator[None]:
    """Within it, :func:`metrics` of any of ``count`` slices of ``slice_ns`` from ``start_ns`` reads its latency
    histogram and quality groups from one query per table made here (a chart's 30 slices: two queries, not 60).
    Slices of whole hours (or days) only; else nothing is read ahead. The sums are those the slice's own
    queries would add up."""
    ahead: ReadAhead | None = None
    if ids and count > 0 and slice_ns % HOUR_NS == 0 and start_ns % HOUR_NS == 0:
        days = slice_ns % DAY_NS == 0 and start_ns % DAY_NS == 0
        unit_ns = DAY_NS if days else HOUR_NS
        per, first = slice_ns // unit_ns, start_ns // unit_ns
        given = {"first": first, "per": per, "ids": ids, "lo": first, "hi": first + per * count}
        histograms: list[dict[int, int]] = [{} for _ in range(count)]
        for index, bucket, calls in run(conn, _HISTOGRAMS[days], given):
            histograms[int(index)][bucket] = calls
        groups: list[list[tuple[int, int, str, str, int, float, float, float, float, float, float, float, float]]] = [
            [] for _ in range(count)
        ]
        for index, *row in run(conn, _QUALITY[days], given):
            groups[int(index)].append(tuple(row))
        # The window's volume per hour (a slice's buckets are sums of its hours), and what every slice of these
        # model rows asks alike: whether some spans were kept 1 in k, whether some instances send aggregates.
        first_hour = start_ns // HOUR_NS
        last_hour = first_hour + slice_ns // HOUR_NS * count
        ahead = ReadAhead(
            ids=tuple(ids),
            volume_hours=(
                first_hour,
                last_hour,
                run(conn, _VOLUME_HOURS, {"ids": ids, "lo": first_hour, "hi": last_hour}).fetchall(),
            ),
            sampled=sampled(conn, ids),
            aggregated=query_aggregates.uses_aggregates(conn, ids),
            latency={},
            quality={},
        )
        for i in range(count):
            bounds = (start_ns + i * slice_ns, start_ns + (i + 1) * slice_ns)
            ahead.latency[bounds] = histograms[i]
            if len(groups[i]) <= MAX_PAIRS:
                ahead.quality[bounds] = groups[i]
    reset = _read_ahead.set(ahead)
    try:
        yield
    finally:
        _read_ahead.reset(reset)


def ahead_for(ids: Sequence[int]) -> ReadAhead | None:
    """What :func:`read_ahead` read for these model rows, if it did."""
    found = _read_ahead.get()
    return found if found is not None and found.ids == tuple(ids) else None


def sampled(conn: Connection, ids: Sequence[int]) -> bool:
    """Whether some spans of these model rows were kept 1 in k (``ml.sample_rate``)."""
    return run(conn, _SAMPLED, {"ids": ids}).fetchone() is not None
