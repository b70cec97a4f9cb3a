"""The model rows and time range one metrics question reads: the condition every query of it shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, bindparam, func
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["MAX_PAIRS", "Filter", "in_filter"]

#: Distinct (prediction, label) pairs beyond which the model is not treated as a classifier.
MAX_PAIRS = 10_000


def in_filter(table: Table, time: str = "start_ns") -> ColumnElement[bool]:
    """``table``'s rows of some model rows and a time range: ``model_id`` among the list ``bindparam`` ``ids``,
    ``time`` (``start_ns`` of ``predictions`` and ``prediction_rows``, which :attr:`Filter.values` gives, or a
    rollup's ``hour``, ``day``, ``minute``) in [``lo``, ``hi``)."""
    column = table.c[time]
    return and_(
        table.c.model_id.in_(bindparam("ids", expanding=True)), column >= bindparam("lo"), column < bindparam("hi")
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
