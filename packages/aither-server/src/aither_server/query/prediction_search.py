"""Predictions found by what they are: a model's, newest first, filtered by time, version, environment, status,
labelled or not and right or not, a page at a time (cursor pagination: the cursor is the last row's start time
and id, so a page costs the same however deep it is and rows arriving meanwhile shift nothing).

"Right" is judged on class-like rows only (a class, or a row of probabilities by its arg-max column, as the
metrics count them): a prediction is right when it has such labelled rows and all of them match their labels,
wrong when one does not. Regression rows are neither.
"""

from __future__ import annotations

import dataclasses

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.query.metric_filter import Filter
from aither_server.query.models import model_ids
from aither_server.query.predictions import _PREDICTION_COLUMNS, PredictionOut, _labels_by_trace, _prediction
from aither_server.query.quality_groups import quality_groups
from aither_server.query.time import MAX_NS
from aither_server.query.volume import volume
from aither_server.store.engine import Connection, placeholders

__all__ = ["MAX_PAGE", "Filters", "FoundPrediction", "parse_cursor", "search_predictions"]

MAX_PAGE = 200
_LABELLED = "EXISTS (SELECT 1 FROM prediction_rows r WHERE r.pred_id = p.id AND r.label_kind IS NOT NULL)"
_CLASS_ROW = f"r.pred_id = p.id AND r.label_kind = {KIND_CLASS} AND r.kind IN ({KIND_CLASS}, {KIND_PROBA})"
_WRONG = f"EXISTS (SELECT 1 FROM prediction_rows r WHERE {_CLASS_ROW} AND r.pred_key <> r.label_key)"
_JUDGED = f"EXISTS (SELECT 1 FROM prediction_rows r WHERE {_CLASS_ROW})"


class FoundPrediction(PredictionOut):
    """A prediction as the search lists it: with its labelled class-like rows and how many of them are right."""

    judged_rows: int
    right_rows: int


@dataclasses.dataclass(frozen=True)
class Filters:
    version: str | None = None
    environment: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    #: ``True``: calls that raised; ``False``: calls that answered.
    error: bool | None = None
    labelled: bool | None = None
    correct: bool | None = None


def parse_cursor(text: str | None) -> tuple[int, int] | None:
    """``"<start_ns>.<id>"`` (what a page hands to the next) as numbers; ``None`` when absent or malformed."""
    if not text:
        return None
    start, _, row_id = text.partition(".")
    if not (start.isdigit() and row_id.isdigit()) or len(start) > 20 or len(row_id) > 20:
        return None
    if int(start) > MAX_NS or int(row_id) > MAX_NS:
        return None  # past a 64-bit integer: no row has it, and the database would refuse the parameter
    return int(start), int(row_id)


def _outcomes(conn: Connection, ids: list[int]) -> dict[int, tuple[int, int]]:
    """(labelled class-like rows, right ones) of each prediction id."""
    out: dict[int, tuple[int, int]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for pred_id, labelled, right in conn.execute(
            "SELECT pred_id, count(*), sum(CASE WHEN pred_key = label_key THEN 1 ELSE 0 END) FROM prediction_rows r"
            f" WHERE pred_id IN ({placeholders(chunk)}) AND label_kind = {KIND_CLASS}"
            f" AND kind IN ({KIND_CLASS}, {KIND_PROBA}) GROUP BY pred_id",
            chunk,
        ):
            out[pred_id] = (int(labelled), int(right or 0))
    return out


def _may_match(conn: Connection, model_id: int, filters: Filters, lo: int, hi: int) -> bool:
    """Whether some prediction of the model row in [lo, hi) can pass the label filters, from the labelled rows'
    index and the rollups: walking a version's predictions for a labelled (or unlabelled) one that none of them
    is read its whole history (500,000 predictions: 2 s)."""
    labelled_row = (
        "SELECT 1 FROM prediction_rows INDEXED BY prediction_rows_labelled WHERE model_id = ? AND start_ns >= ?"
        " AND start_ns < ? AND label_kind IS NOT NULL"
    )
    if filters.labelled or filters.correct is not None:
        judged = f" AND label_kind = {KIND_CLASS} AND kind IN ({KIND_CLASS}, {KIND_PROBA})"
        extra = "" if filters.correct is None else judged
        if filters.correct is False:
            extra += " AND pred_key <> label_key"
        if conn.execute(labelled_row + extra + " LIMIT 1", (model_id, lo, hi)).fetchone() is None:
            return False
    if filters.labelled is False:
        # Every predicted row labelled: no prediction without labels...
        f = Filter([model_id], lo, hi)
        rows = sum(v[3] for v in volume(conn, f, lo, hi, 366 * 86400))
        labels = sum(g.rows for g in quality_groups(conn, f, lo, hi, classes=False))
        if rows and labels >= rows:
            # ... unless a call predicted no row at all (it has no label either).
            empty = conn.execute(
                "SELECT 1 FROM predictions INDEXED BY predictions_model_time WHERE model_id = ? AND start_ns >= ?"
                " AND start_ns < ? AND n_rows = 0 LIMIT 1",
                (model_id, lo, hi),
            ).fetchone()
            return empty is not None
    return True


def search_predictions(
    conn: Connection, name: str, filters: Filters, *, limit: int = 50, cursor: tuple[int, int] | None = None
) -> tuple[list[FoundPrediction], str | None] | None:
    """A page of the model's predictions matching ``filters``, newest first, and the next page's cursor (``None``
    on the last page); ``None`` when no model has this name."""
    models = model_ids(conn, name, filters.version, filters.environment)
    if models is None:
        return None
    ids = [m[0] for m in models]
    if not ids:
        return [], None
    limit = max(1, min(MAX_PAGE, limit))
    where: list[str] = []
    params: list[int] = []
    if filters.start_ns is not None:
        where.append("p.start_ns >= ?")
        params.append(filters.start_ns)
    if filters.end_ns is not None:
        where.append("p.start_ns < ?")
        params.append(filters.end_ns)
    if cursor is not None:
        where.append("(p.start_ns < ? OR (p.start_ns = ? AND p.id < ?))")
        params += [cursor[0], cursor[0], cursor[1]]
    if filters.error is not None:
        where.append("p.status <> 0" if filters.error else "p.status = 0")
    if filters.labelled is not None:
        where.append(_LABELLED if filters.labelled else f"NOT {_LABELLED}")
    if filters.correct is not None:
        where.append(f"{_JUDGED} AND NOT {_WRONG}" if filters.correct else _WRONG)
    lo = filters.start_ns if filters.start_ns is not None else 0
    hi = filters.end_ns if filters.end_ns is not None else MAX_NS
    ids = [model_id for model_id in ids if _may_match(conn, model_id, filters, lo, hi)]
    # Per model row, so each query walks the (model_id, start_ns) index backwards and stops at the page's end
    # (with ``model_id IN (...)`` the database sorts every matching row first).
    rows = [
        row
        for model_id in ids
        for row in conn.execute(
            f"SELECT {_PREDICTION_COLUMNS} FROM predictions p JOIN models m ON m.id = p.model_id"
            f" WHERE {' AND '.join(['p.model_id = ?', *where])} ORDER BY p.start_ns DESC, p.id DESC LIMIT ?",
            (model_id, *params, limit + 1),
        )
    ]
    rows.sort(key=lambda r: (r[8], r[0]), reverse=True)
    more = len(rows) > limit
    rows = rows[:limit]
    labels = _labels_by_trace(conn, list({r[1] for r in rows}))
    outcomes = _outcomes(conn, [r[0] for r in rows])
    found: list[FoundPrediction] = []
    for row in rows:
        judged, right = outcomes.get(row[0], (0, 0))
        found.append({**_prediction(row, labels.get(row[1], {})), "judged_rows": judged, "right_rows": right})
    last = rows[-1] if rows else None
    return found, (f"{last[8]}.{last[0]}" if more and last is not None else None)
