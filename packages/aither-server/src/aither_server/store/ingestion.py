"""Ingestion's writes: prediction and label spans, and ``/v1/metrics`` aggregate points, into their tables and
rollups. Runs inside the store's write transaction (``Store.ingest`` groups requests into one), which holds the
engine's write lock: a span retried to another process finds the first one stored, and a label and its
prediction arriving at two processes join exactly once, whichever commits second.

Each job has its module: ``ingest_ids`` (model and instance ids), ``predictions``, ``label_joins``,
``aggregates``; ``labelled_rows`` (a row's first label, which both span kinds may write), ``lookups`` (reads by
key) and ``rollups`` (the rollup upserts) serve them.
"""

from __future__ import annotations

from collections.abc import Sequence

from aither_server.model.records import AggregatePoint, LabelSpan, PredictionSpan
from aither_server.store.aggregates import store_aggregates
from aither_server.store.engine import Connection
from aither_server.store.ingest_ids import IdRegistry, NewIds
from aither_server.store.label_joins import store_labels
from aither_server.store.lookups import trace_key
from aither_server.store.predictions import store_predictions

__all__ = ["Ingestor", "NewIds", "trace_key"]


class Ingestor:
    """Writes spans and aggregate points; keeps the ids of the models and instances it has seen."""

    def __init__(self) -> None:
        self.ids = IdRegistry()

    def predictions(self, conn: Connection, spans: Sequence[PredictionSpan], now: int, new: NewIds) -> tuple[int, int]:
        """New prediction spans and rows stored (a retried span counts zero)."""
        return store_predictions(conn, self.ids, spans, now, new)

    def labels(self, conn: Connection, spans: Sequence[LabelSpan], now: int) -> tuple[int, int]:
        """New label spans and label rows stored."""
        return store_labels(conn, spans, now)

    def aggregates(self, conn: Connection, points: Sequence[AggregatePoint], now: int, new: NewIds) -> int:
        """New aggregate points stored."""
        return store_aggregates(conn, self.ids, points, now, new)

    def remember(self, new: NewIds) -> None:
        """Keep the ids of models and instances a committed transaction created (never a rolled-back one's)."""
        self.ids.remember(new)
