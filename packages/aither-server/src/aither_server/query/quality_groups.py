"""The labelled rows of a time range in groups (kinds, classes) with the sums every quality metric comes from."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, Table, and_, case, func, literal_column, null, select
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.model.rollup_keys import (
    NO_KEY,
    NO_KIND,
    split_days,
)
from aither_server.query.metric_filter import MAX_PAIRS, Filter, in_filter
from aither_server.query.read_ahead import ahead_for
from aither_server.store.core_tables import prediction_rows, quality_days, quality_hours
from aither_server.store.engine import Connection, constant, indexed_by, run

__all__ = ["QualityGroup", "quality_groups"]

#: (kind, label_kind, pred_key, label_key, scored, rows, n_num, sum_abs, sum_sq): a group of labelled rows' sums.
_GroupRow = tuple[int, int, str, str, int, float, float, float, float]


@dataclasses.dataclass
class QualityGroup:
    """One group of labelled rows: their kinds and classes, and the sums the quality metrics come from."""

    kind: int | None
    label_kind: int
    pred: str | None
    """The predicted class (class-like rows only, else ``None``)."""
    label: str | None
    scored: int
    """1 when some rows carry a binary ``predict_proba`` score."""
    rows: float
    """Labelled rows (weighted: a span kept 1 in k counts k)."""
    n_num: float
    """Rows with a numeric prediction and label."""
    sum_abs: float
    sum_sq: float

    def add(self, scored: int, rows: float, n_num: float, sum_abs: float, sum_sq: float) -> None:
        self.scored = max(self.scored, scored)
        self.rows += rows
        self.n_num += n_num
        self.sum_abs += sum_abs or 0.0
        self.sum_sq += sum_sq or 0.0


#: ``GROUP BY 1, 2, 3, 4``: the groups are expressions, some of literals.
_BY_4: list[ColumnClause[int]] = [literal_column(str(i)) for i in range(1, 5)]
_LIMIT = MAX_PAIRS + 1


def _rollup(table: Table, unit: str, classes: bool, weighted: bool) -> Select[_GroupRow]:
    """The groups of model rows ``ids`` in ``table``'s [lo, hi) ``unit`` s."""
    c = table.c
    pk, lk = (c.pred_key, c.label_key) if classes else (constant(NO_KEY), constant(NO_KEY))
    sums = (c.w_rows, c.w_num, c.w_abs, c.w_sq) if weighted else (c.rows, c.n_num, c.sum_abs, c.sum_sq)
    return (
        select(c.kind, c.label_kind, pk, lk, func.max(c.scored), *(func.sum(s) for s in sums))
        .where(in_filter(table, unit))
        .group_by(*_BY_4)
        .having(func.sum(c.rows) > literal_column("0"))
        .limit(_LIMIT)
    )


def _raw(classes: bool, weighted: bool) -> Select[_GroupRow]:
    """The groups of the raw labelled rows of :func:`~aither_server.query.metric_filter.in_filter`."""
    r = prediction_rows.c
    class_like = and_(r.label_kind == constant(KIND_CLASS), r.kind.in_([constant(KIND_CLASS), constant(KIND_PROBA)]))
    pk: ColumnElement[Any] = case((class_like, r.pred_key)) if classes else null()
    lk: ColumnElement[Any] = case((class_like, r.label_key)) if classes else null()
    diff = r.pred_num - r.label_num
    zero: ColumnClause[float] = literal_column("0.0")
    sums: tuple[ColumnElement[Any], ...]
    if weighted:
        w = func.coalesce(r.weight, literal_column("1.0"))
        sums = (
            func.sum(w),
            func.coalesce(func.sum(case((diff.is_not(None), w))), zero),
            func.coalesce(func.sum(w * func.abs(diff)), zero),
            func.coalesce(func.sum(w * diff * diff), zero),
        )
    else:
        sums = (
            func.count(),
            func.count(diff),
            func.coalesce(func.sum(func.abs(diff)), zero),
            func.coalesce(func.sum(diff * diff), zero),
        )
    scored = func.max(case((r.score.is_not(None), constant(1)), else_=constant(0)))
    statement = (
        select(
            func.coalesce(r.kind, constant(NO_KIND)),
            r.label_kind,
            func.coalesce(pk, constant(NO_KEY)),
            func.coalesce(lk, constant(NO_KEY)),
            scored,
            *sums,
        )
        .where(in_filter(prediction_rows), r.label_kind.is_not(None))
        .group_by(*_BY_4)
        .limit(_LIMIT)
    )
    return indexed_by(statement, prediction_rows, "prediction_rows_labelled")


_BOTH = (False, True)
#: By (days, classes, weighted): each made once.
_ROLLUPS = {
    (days, classes, weighted): _rollup(
        quality_days if days else quality_hours, "day" if days else "hour", classes, weighted
    )
    for days in _BOTH
    for classes in _BOTH
    for weighted in _BOTH
}
#: By (classes, weighted).
_RAW = {(classes, weighted): _raw(classes, weighted) for classes in _BOTH for weighted in _BOTH}


def quality_groups(conn: Connection, f: Filter, lo: int, hi: int, classes: bool) -> list[QualityGroup]:
    """The groups of labelled rows; classes only for class-like rows and only when ``classes``. At most
    MAX_PAIRS + 1 groups."""
    ids = f.ids
    groups: dict[tuple[int, int, str, str], QualityGroup] = {}
    parts: list[Iterable[_GroupRow]] = []
    # Whole UTC days from quality_days, whole hours from quality_hours, the rest from the raw rows.
    days, hours_list, edges = split_days(lo, hi)
    rollups = ([(True, days)] if days is not None else []) + [(False, h) for h in hours_list]
    ahead = ahead_for(ids) if classes else None
    read = None if ahead is None else ahead.quality.get((lo, hi))
    if read is not None:
        # A slice of whole hours, read ahead: (kind, label_kind, pred, label, scored, 4 sums, 4 weighted sums).
        parts.append([(*row[:5], *(row[9:] if f.weighted else row[5:9])) for row in read])
        rollups, edges = [], []
    for in_days, (first, last) in rollups:
        statement = _ROLLUPS[(in_days, classes, f.weighted)]
        parts.append(run(conn, statement, {"ids": ids, "lo": first, "hi": last}))
    for a, b in edges:
        parts.append(run(conn, _RAW[(classes, f.weighted)], {"ids": ids, "lo": a, "hi": b}))
    for part in parts:
        for kind, label_kind, pred, label, scored, rows, n_num, sum_abs, sum_sq in part:
            group = groups.get((kind, label_kind, pred, label))
            if group is None:
                group = groups[(kind, label_kind, pred, label)] = QualityGroup(
                    None if kind == NO_KIND else kind, label_kind, pred or None, label or None, 0, 0, 0, 0.0, 0.0
                )
            group.add(scored, rows, n_num, sum_abs, sum_sq)
            if len(groups) > MAX_PAIRS:
                return list(groups.values())
    return list(groups.values())
