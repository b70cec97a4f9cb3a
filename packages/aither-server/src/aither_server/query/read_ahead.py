"""Reading a chart's slices ahead: one query per table for all of them, which each slice's metrics then
read instead of their own queries (the same sums)."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Sequence

from aither_server.model.rollup_keys import (
    DAY_NS,
    HOUR_NS,
)
from aither_server.query import aggregates as query_aggregates
from aither_server.query.metric_filter import MAX_PAIRS
from aither_server.store.engine import Connection, placeholders

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


@contextlib.contextmanager
def read_ahead(conn: Connection, ids: Sequence[int], start_ns: int, slice_ns: int, count: int) -> Iterator[None]:
    """Within it, :func:`metrics` of any of ``count`` slices of ``slice_ns`` from ``start_ns`` reads its latency
    histogram and quality groups from one query per table made here (a chart's 30 slices: two queries, not 60).
    Slices of whole hours (or days) only; else nothing is read ahead. The sums are those the slice's own
    queries would add up."""
    ahead: ReadAhead | None = None
    if ids and count > 0 and slice_ns % HOUR_NS == 0 and start_ns % HOUR_NS == 0:
        marks = placeholders(ids)
        days = slice_ns % DAY_NS == 0 and start_ns % DAY_NS == 0
        table, unit, unit_ns = ("latency_days", "day", DAY_NS) if days else ("latency_hours", "hour", HOUR_NS)
        per, first = slice_ns // unit_ns, start_ns // unit_ns
        histograms: list[dict[int, int]] = [{} for _ in range(count)]
        for index, bucket, calls in conn.execute(
            f"SELECT ({unit} - ?) / ?, bucket, sum(calls) FROM {table} WHERE model_id IN ({marks})"
            f" AND {unit} >= ? AND {unit} < ? GROUP BY 1, 2",
            (first, per, *ids, first, first + per * count),
        ):
            histograms[int(index)][bucket] = calls
        table, unit = ("quality_days", "day") if days else ("quality_hours", "hour")
        per, first = slice_ns // unit_ns, start_ns // unit_ns
        groups: list[list[tuple[int, int, str, str, int, float, float, float, float, float, float, float, float]]] = [
            [] for _ in range(count)
        ]
        for index, *row in conn.execute(
            f"SELECT ({unit} - ?) / ?, kind, label_kind, pred_key, label_key, max(scored), sum(rows), sum(n_num),"
            " sum(sum_abs), sum(sum_sq), sum(w_rows), sum(w_num), sum(w_abs), sum(w_sq) FROM"
            f" {table} WHERE model_id IN ({marks}) AND {unit} >= ? AND {unit} < ? GROUP BY 1, 2, 3, 4, 5"
            " HAVING sum(rows) > 0",
            (first, per, *ids, first, first + per * count),
        ):
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
                conn.execute(
                    "SELECT hour, sum(calls), sum(errors), sum(rows) FROM volume_hours"
                    f" WHERE model_id IN ({marks}) AND hour >= ? AND hour < ? GROUP BY 1",
                    (*ids, first_hour, last_hour),
                ).fetchall(),
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
    found = conn.execute(f"SELECT 1 FROM models WHERE id IN ({placeholders(ids)}) AND sampled = 1 LIMIT 1", ids)
    return found.fetchone() is not None
