"""The model rows and time range one metrics question reads: the condition every query of it shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, bindparam, func
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["MAX_PAIRS", "Filter", "in_filter"]

#: Distinct (prediction, label) pairs beyond which the model is not treated as a classifier.
MAX_PAIRS = 10_000


def in_filter(table: Table) -> ColumnElement[bool]:
    """``table``'s rows (``predictions`` or ``prediction_rows``) of a :class:`Filter`: its model rows and time
    range, as ``bindparam`` s ``ids`` (a list), ``lo`` and ``hi`` that :attr:`Filter.values` gives."""
    start = table.c.start_ns
    return and_(
        table.c.model_id.in_(bindparam("ids", expanding=True)), start >= bindparam("lo"), start < bindparam("hi")
    )


class Filter:
    def __init__(self, ids: list[int], lo: int, hi: int, weighted: bool = False, approximate: bool = False) -> None:
        self.ids = ids
        #: The values of :func:`in_filter`'s parameters.
        self.values: dict[str, object] = {"ids": ids, "lo": lo, "hi": hi}
        #: Some of these spans were kept 1 in k (``ml.sample_rate``): labelled rows count ``weight`` times.
        self.weighted = weighted
        #: Latency percentiles from the hourly histograms alone (``metrics(approximate=True)``).
        self.approximate = approximate

    def rows(self, table: Table) -> ColumnElement[Any]:
        """How many rows a group of ``table`` (``prediction_rows``) counts for: its weights when sampled."""
        return func.sum(func.coalesce(table.c.weight, 1.0)) if self.weighted else func.count()
