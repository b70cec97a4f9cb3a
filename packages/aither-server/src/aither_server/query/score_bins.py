"""The labelled binary ``predict_proba`` scores of a time range by bin and label: rows, weighted rows and the sum
of their scores, from ``score_days`` for whole UTC days, ``score_hours`` for whole hours and the raw rows for
the rest (``model/rollup_keys.py``: ``SCORE_BINS`` bins, 0.01 wide). The diagnostics' score histogram and
calibration, and the dashboard's per-slice AUC, are sums of these."""

from __future__ import annotations

from collections.abc import Sequence

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.model.rollup_keys import score_bin, split_days
from aither_server.store.engine import Connection, placeholders

__all__ = ["score_bins"]


def score_bins(conn: Connection, ids: Sequence[int], lo: int, hi: int) -> dict[tuple[int, str], list[float]]:
    """{(bin, label key): [rows, weighted rows, sum of scores]} of model rows ``ids`` over [lo, hi)."""
    out: dict[tuple[int, str], list[float]] = {}
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
            _add(out, (int(index), label), rows, w_rows, total)
    for a, b in edges:
        for score, label, rows, w_rows, total in conn.execute(
            "SELECT score, label_key, count(*), sum(coalesce(weight, 1.0)), sum(score)"
            " FROM prediction_rows INDEXED BY prediction_rows_scores"
            f" WHERE model_id IN ({marks}) AND start_ns >= ? AND start_ns < ? AND label_kind = {KIND_CLASS}"
            f" AND kind = {KIND_PROBA} AND score IS NOT NULL AND label_key IS NOT NULL GROUP BY 1, 2",
            (*ids, a, b),
        ):
            _add(out, (score_bin(score), label), rows, w_rows, total)
    return out


def _add(out: dict[tuple[int, str], list[float]], key: tuple[int, str], rows: int, w_rows: float, total: float) -> None:
    cell = out.get(key)
    if cell is None:
        out[key] = [rows, w_rows, total]
    else:
        cell[0] += rows
        cell[1] += w_rows
        cell[2] += total
