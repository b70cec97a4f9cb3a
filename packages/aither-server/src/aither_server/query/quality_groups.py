"""The labelled rows of a time range in groups (kinds, classes) with the sums every quality metric comes from."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.model.rollup_keys import (
    NO_KEY,
    NO_KIND,
    split_days,
)
from aither_server.query.metric_filter import MAX_PAIRS, Filter
from aither_server.query.read_ahead import ahead_for
from aither_server.store.engine import Connection, placeholders

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


def quality_groups(conn: Connection, f: Filter, lo: int, hi: int, classes: bool) -> list[QualityGroup]:
    """The groups of labelled rows; classes only for class-like rows and only when ``classes``. At most
    MAX_PAIRS + 1 groups."""
    ids = f.ids
    pk, lk = ("pred_key", "label_key") if classes else (f"'{NO_KEY}'", f"'{NO_KEY}'")
    groups: dict[tuple[int, int, str, str], QualityGroup] = {}
    parts: list[Iterable[_GroupRow]] = []
    # Whole UTC days from quality_days, whole hours from quality_hours, the rest from the raw rows.
    days, hours_list, edges = split_days(lo, hi)
    rollups = ([("quality_days", "day", days)] if days is not None else []) + [
        ("quality_hours", "hour", h) for h in hours_list
    ]
    rollup_sums = (
        "sum(w_rows), sum(w_num), sum(w_abs), sum(w_sq)"
        if f.weighted
        else "sum(rows), sum(n_num), sum(sum_abs), sum(sum_sq)"
    )
    ahead = ahead_for(ids) if classes else None
    read = None if ahead is None else ahead.quality.get((lo, hi))
    if read is not None:
        # A slice of whole hours, read ahead: (kind, label_kind, pred, label, scored, 4 sums, 4 weighted sums).
        parts.append([(*row[:5], *(row[9:] if f.weighted else row[5:9])) for row in read])
        rollups, edges = [], []
    for table, unit, (first, last) in rollups:
        parts.append(
            conn.execute(
                f"SELECT kind, label_kind, {pk}, {lk}, max(scored), {rollup_sums}"
                f" FROM {table} WHERE model_id IN ({placeholders(ids)}) AND {unit} >= ? AND {unit} < ?"
                f" GROUP BY 1, 2, 3, 4 HAVING sum(rows) > 0 LIMIT {MAX_PAIRS + 1}",
                (*ids, first, last),
            )
        )
    class_like = f"label_kind = {KIND_CLASS} AND kind IN ({KIND_CLASS}, {KIND_PROBA})"
    pk, lk = (
        (f"CASE WHEN {class_like} THEN pred_key END", f"CASE WHEN {class_like} THEN label_key END")
        if classes
        else ("NULL", "NULL")
    )
    if f.weighted:
        w = "coalesce(weight, 1.0)"
        raw_sums = (
            f"sum({w}), coalesce(sum(CASE WHEN pred_num - label_num IS NOT NULL THEN {w} END), 0.0),"
            f" coalesce(sum({w} * abs(pred_num - label_num)), 0.0),"
            f" coalesce(sum({w} * (pred_num - label_num) * (pred_num - label_num)), 0.0)"
        )
    else:
        raw_sums = (
            "count(*), count(pred_num - label_num), coalesce(sum(abs(pred_num - label_num)), 0.0),"
            " coalesce(sum((pred_num - label_num) * (pred_num - label_num)), 0.0)"
        )
    for a, b in edges:
        parts.append(
            conn.execute(
                f"SELECT coalesce(kind, {NO_KIND}), label_kind, coalesce({pk}, '{NO_KEY}'),"
                f" coalesce({lk}, '{NO_KEY}'), max(CASE WHEN score IS NOT NULL THEN 1 ELSE 0 END), {raw_sums}"
                f" FROM prediction_rows INDEXED BY prediction_rows_labelled"
                f" WHERE {f.sql} AND label_kind IS NOT NULL GROUP BY 1, 2, 3, 4 LIMIT {MAX_PAIRS + 1}",
                (*ids, a, b),
            )
        )
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
