"""The labelled binary ``predict_proba`` scores of a time range by bin and label: rows, weighted rows and the sum
of their scores, from ``score_days`` for whole UTC days, ``score_hours`` for whole hours and the raw rows for
the rest (``model/rollup_keys.py``: ``SCORE_BINS`` bins, 0.01 wide). The diagnostics' score histogram and
calibration, and the dashboard's per-slice AUC, are sums of these."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Integer, Select, Table, bindparam, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, score_bin, split_days
from aither_server.query.metric_filter import in_filter
from aither_server.query.sums import add_sums
from aither_server.store.core_tables import prediction_rows, score_days, score_hours
from aither_server.store.engine import Connection, constant, indexed_by, run

__all__ = ["score_bins", "sliced"]

_Bins = dict[tuple[int, str], list[float]]
#: Bins read ahead by :func:`sliced`, by (model row ids, start, end).
_read_ahead: contextvars.ContextVar[dict[tuple[tuple[int, ...], int, int], _Bins] | None] = contextvars.ContextVar(
    "aither_score_bins", default=None
)


def _bins(table: Table, unit: str, sliced: bool) -> Select[tuple[int, ...]]:
    """(bin, label key, rows, weighted rows, sum of scores) of model rows ``ids`` in ``table``'s [lo, hi)
    ``unit`` s; ``sliced``, first the slice: (``unit`` - ``first``) / ``per`` (integers: SQLAlchemy's ``//``
    of Integers is a plain ``/``, which truncates on both engines)."""
    c = table.c
    group: list[ColumnElement[Any]] = [c.bin, c.label_key]
    if sliced:
        group.insert(0, (c[unit] - bindparam("first")) // bindparam("per", type_=Integer))
    return (
        select(*group, func.sum(c.rows), func.sum(c.w_rows), func.sum(c.score_sum))
        .where(in_filter(table, unit))
        # GROUP BY 1, 2(, 3): a slice is an expression of parameters, which PostgreSQL cannot match to a GROUP BY's.
        .group_by(*(literal_column(str(i + 1)) for i in range(len(group))))
    )


_ROLLUPS = {"score_days": _bins(score_days, "day", False), "score_hours": _bins(score_hours, "hour", False)}
_SLICED = {True: _bins(score_days, "day", True), False: _bins(score_hours, "hour", True)}
_r = prediction_rows.c
#: The partial index's condition is written as literals, as SQLite's ``INDEXED BY`` needs to see it implied.
_RAW = indexed_by(
    select(
        _r.score,
        _r.label_key,
        func.count(),
        func.sum(func.coalesce(_r.weight, literal_column("1.0"))),
        func.sum(_r.score),
    )
    .where(
        in_filter(prediction_rows),
        _r.label_kind == constant(KIND_CLASS),
        _r.kind == constant(KIND_PROBA),
        _r.score.is_not(None),
        _r.label_key.is_not(None),
    )
    .group_by(literal_column("1"), literal_column("2")),
    prediction_rows,
    "prediction_rows_scores",
)


@contextlib.contextmanager
def sliced(conn: Connection, ids: Sequence[int], start_ns: int, slice_ns: int, count: int) -> Iterator[None]:
    """Within it, :func:`score_bins` of any of ``count`` slices of ``slice_ns`` from ``start_ns`` comes from one
    query made here (a chart's 30 slices: one query, not 30). Slices of whole hours (or days) only; else nothing
    is read ahead."""
    ahead: dict[tuple[tuple[int, ...], int, int], _Bins] = {}
    if ids and count > 0 and slice_ns % HOUR_NS == 0 and start_ns % HOUR_NS == 0:
        days = slice_ns % DAY_NS == 0 and start_ns % DAY_NS == 0
        unit_ns = DAY_NS if days else HOUR_NS
        per, first = slice_ns // unit_ns, start_ns // unit_ns
        slices: list[_Bins] = [{} for _ in range(count)]
        given = {"first": first, "per": per, "ids": ids, "lo": first, "hi": first + per * count}
        for index, bin_, label, rows, w_rows, total in run(conn, _SLICED[days], given):
            # One row per (slice, bin, label): nothing to add up.
            slices[int(index)][(int(bin_), label)] = [rows, w_rows, total]
        for i, bins in enumerate(slices):
            lo = start_ns + i * slice_ns
            ahead[(tuple(ids), lo, lo + slice_ns)] = bins
    reset = _read_ahead.set(ahead)
    try:
        yield
    finally:
        _read_ahead.reset(reset)


def score_bins(conn: Connection, ids: Sequence[int], lo: int, hi: int) -> _Bins:
    """{(bin, label key): [rows, weighted rows, sum of scores]} of model rows ``ids`` over [lo, hi): the caller
    reads it, never changes it (a slice's bins read ahead are handed out as they are)."""
    ahead = _read_ahead.get()
    found = None if ahead is None else ahead.get((tuple(ids), lo, hi))
    if found is not None:
        return found
    out: _Bins = {}
    if not ids or lo >= hi:
        return out
    days, hours, edges = split_days(lo, hi)
    ranges = ([("score_days", days)] if days is not None else []) + [("score_hours", h) for h in hours]
    for table, (first, last) in ranges:
        for index, label, rows, w_rows, total in run(conn, _ROLLUPS[table], {"ids": ids, "lo": first, "hi": last}):
            add_sums(out, (int(index), label), rows, w_rows, total)
    for a, b in edges:
        for score, label, rows, w_rows, total in run(conn, _RAW, {"ids": ids, "lo": a, "hi": b}):
            add_sums(out, (score_bin(score), label), rows, w_rows, total)
    return out
