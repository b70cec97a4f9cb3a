"""The labelled binary ``predict_proba`` scores of a time range by bin and label: rows, weighted rows and the sum
of their scores, from ``score_days`` for whole UTC days, ``score_hours`` for whole hours and the raw rows for
the rest (``model/rollup_keys.py``: ``SCORE_BINS`` bins, 0.01 wide). The diagnostics' score histogram and
calibration, and the dashboard's per-slice AUC, are sums of these."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, score_bin, split_days
from aither_server.query.sums import add_sums
from aither_server.store.engine import Connection, placeholders

__all__ = ["score_bins", "sliced"]

_Bins = dict[tuple[int, str], list[float]]
#: Bins read ahead by :func:`sliced`, by (model row ids, start, end).
_read_ahead: contextvars.ContextVar[dict[tuple[tuple[int, ...], int, int], _Bins] | None] = contextvars.ContextVar(
    "aither_score_bins", default=None
)


@contextlib.contextmanager
def sliced(conn: Connection, ids: Sequence[int], start_ns: int, slice_ns: int, count: int) -> Iterator[None]:
    """Within it, :func:`score_bins` of any of ``count`` slices of ``slice_ns`` from ``start_ns`` comes from one
    query made here (a chart's 30 slices: one query, not 30). Slices of whole hours (or days) only; else nothing
    is read ahead."""
    ahead: dict[tuple[tuple[int, ...], int, int], _Bins] = {}
    if ids and count > 0 and slice_ns % HOUR_NS == 0 and start_ns % HOUR_NS == 0:
        days = slice_ns % DAY_NS == 0 and start_ns % DAY_NS == 0
        table, unit, unit_ns = ("score_days", "day", DAY_NS) if days else ("score_hours", "hour", HOUR_NS)
        per, first = slice_ns // unit_ns, start_ns // unit_ns
        slices: list[_Bins] = [{} for _ in range(count)]
        for index, bin_, label, rows, w_rows, total in conn.execute(
            f"SELECT ({unit} - ?) / ?, bin, label_key, sum(rows), sum(w_rows), sum(score_sum) FROM {table}"
            f" WHERE model_id IN ({placeholders(ids)}) AND {unit} >= ? AND {unit} < ? GROUP BY 1, 2, 3",
            (first, per, *ids, first, first + per * count),
        ):
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
    marks = placeholders(ids)
    days, hours, edges = split_days(lo, hi)
    ranges = ([("score_days", "day", days)] if days is not None else []) + [("score_hours", "hour", h) for h in hours]
    for table, unit, (first, last) in ranges:
        for index, label, rows, w_rows, total in conn.execute(
            f"SELECT bin, label_key, sum(rows), sum(w_rows), sum(score_sum) FROM {table}"
            f" WHERE model_id IN ({marks}) AND {unit} >= ? AND {unit} < ? GROUP BY 1, 2",
            (*ids, first, last),
        ):
            add_sums(out, (int(index), label), rows, w_rows, total)
    for a, b in edges:
        for score, label, rows, w_rows, total in conn.execute(
            "SELECT score, label_key, count(*), sum(coalesce(weight, 1.0)), sum(score)"
            " FROM prediction_rows INDEXED BY prediction_rows_scores"
            f" WHERE model_id IN ({marks}) AND start_ns >= ? AND start_ns < ? AND label_kind = {KIND_CLASS}"
            f" AND kind = {KIND_PROBA} AND score IS NOT NULL AND label_key IS NOT NULL GROUP BY 1, 2",
            (*ids, a, b),
        ):
            add_sums(out, (score_bin(score), label), rows, w_rows, total)
    return out
