"""The model rows and time range one metrics question reads, as the SQL condition every query of it shares."""

from __future__ import annotations

from aither_server.store.engine import placeholders

__all__ = ["MAX_PAIRS", "Filter"]

#: Distinct (prediction, label) pairs beyond which the model is not treated as a classifier.
MAX_PAIRS = 10_000


class Filter:
    def __init__(self, ids: list[int], lo: int, hi: int, weighted: bool = False, approximate: bool = False) -> None:
        self.ids = ids
        self.sql = f"model_id IN ({placeholders(ids)}) AND start_ns >= ? AND start_ns < ?"
        self.params: tuple[int, ...] = (*ids, lo, hi)
        #: Some of these spans were kept 1 in k (``ml.sample_rate``): labelled rows count ``weight`` times.
        self.weighted = weighted
        self.count = "sum(coalesce(weight, 1.0))" if weighted else "count(*)"
        #: Latency percentiles from the hourly histograms alone (``metrics(approximate=True)``).
        self.approximate = approximate
