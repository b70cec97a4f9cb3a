"""Predictions found by what they are: a model's, newest first, filtered by time, version, environment, status,
labelled or not and right or not, a page at a time (cursor pagination: the cursor is the last row's start time
and id, so a page costs the same however deep it is and rows arriving meanwhile shift nothing).

"Right" is judged on class-like rows only (a class, or a row of probabilities by its arg-max column, as the
metrics count them): a prediction is right when it has such labelled rows and all of them match their labels,
wrong when one does not. Regression rows are neither.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.query.metric_filter import Filter
from aither_server.query.models import model_ids
from aither_server.query.predictions import PredictionOut, _labels_by_trace, _prediction, prediction_select
from aither_server.query.quality_groups import quality_groups
from aither_server.query.time import MAX_NS
from aither_server.query.volume import volume
from aither_server.store.core_tables import prediction_rows, predictions
from aither_server.store.engine import Connection, PerDialect, among, constant, indexed_by, run
from aither_server.store.lookups import each_chunk

__all__ = ["MAX_PAGE", "Filters", "FoundPrediction", "parse_cursor", "search_predictions"]

MAX_PAGE = 200

_p = predictions.c
_row = prediction_rows.alias("r")
_r = _row.c
_ONE, _ZERO = literal_column("1", Integer), literal_column("0", Integer)
_CLASS = constant(KIND_CLASS)
_CLASS_LIKE = (_CLASS, constant(KIND_PROBA))
#: The prediction has a labelled row.
_LABELLED = exists().where(_r.pred_id == _p.id, _r.label_kind.is_not(None))
#: A labelled class-like row of the prediction (one the metrics judge right or wrong).
_CLASS_ROW = and_(_r.pred_id == _p.id, _r.label_kind == _CLASS, _r.kind.in_(_CLASS_LIKE))
_WRONG = exists().where(_CLASS_ROW, _r.pred_key != _r.label_key)
_JUDGED = exists().where(_CLASS_ROW)


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


_pr = prediction_rows.c
_OUTCOMES = PerDialect(
    lambda dialect: (
        select(_pr.pred_id, func.count(), func.sum(case((_pr.pred_key == _pr.label_key, _ONE), else_=_ZERO)))
        .where(among(_pr.pred_id, "ids", dialect, BigInteger()), _pr.label_kind == _CLASS, _pr.kind.in_(_CLASS_LIKE))
        .group_by(_pr.pred_id)
    )
)


def _outcomes(conn: Connection, ids: list[int]) -> dict[int, tuple[int, int]]:
    """(labelled class-like rows, right ones) of each prediction id."""
    if not ids:
        return {}
    return {
        pred_id: (int(labelled), int(right or 0))
        for pred_id, labelled, right in each_chunk(conn, _OUTCOMES, "ids", ids)
    }


def _labelled_row(correct: bool | None) -> Select[Any]:
    """A labelled row of the model row in [lo, hi) (judged, wrong with ``correct=False``), by the labelled rows'
    index."""
    found = select(_ONE).where(
        _pr.model_id == bindparam("model_id"),
        _pr.start_ns >= bindparam("lo"),
        _pr.start_ns < bindparam("hi"),
        _pr.label_kind.is_not(None),
    )
    if correct is not None:
        found = found.where(_pr.label_kind == _CLASS, _pr.kind.in_(_CLASS_LIKE))
    if correct is False:
        found = found.where(_pr.pred_key != _pr.label_key)
    return indexed_by(found.limit(1), prediction_rows, "prediction_rows_labelled")


_LABELLED_ROW = {correct: _labelled_row(correct) for correct in (None, True, False)}
_EMPTY_CALL = indexed_by(
    select(_ONE)
    .where(
        _p.model_id == bindparam("model_id"),
        _p.start_ns >= bindparam("lo"),
        _p.start_ns < bindparam("hi"),
        _p.n_rows == _ZERO,
    )
    .limit(1),
    predictions,
    "predictions_model_time",
)


def _may_match(conn: Connection, model_id: int, filters: Filters, lo: int, hi: int) -> bool:
    """Whether some prediction of the model row in [lo, hi) can pass the label filters, from the labelled rows'
    index and the rollups: walking a version's predictions for a labelled (or unlabelled) one that none of them
    is read its whole history (500,000 predictions: 2 s)."""
    span = {"model_id": model_id, "lo": lo, "hi": hi}
    labels_needed = filters.labelled or filters.correct is not None
    if labels_needed and run(conn, _LABELLED_ROW[filters.correct], span).fetchone() is None:
        return False
    if filters.labelled is False:
        # Every predicted row labelled: no prediction without labels...
        f = Filter([model_id], lo, hi)
        rows = sum(v[3] for v in volume(conn, f, lo, hi, 366 * 86400))
        labels = sum(g.rows for g in quality_groups(conn, f, lo, hi, classes=False))
        if rows and labels >= rows:
            # ... unless a call predicted no row at all (it has no label either).
            return run(conn, _EMPTY_CALL, span).fetchone() is not None
    return True


#: Which of the optional conditions a search has: start, end, cursor, error, labelled, correct.
_Shape = tuple[bool, bool, bool, bool | None, bool | None, bool | None]


def _page(shape: _Shape) -> Select[Any]:
    """A page of one model row's predictions with these conditions, newest first: walking its (model_id,
    start_ns) index backwards, it stops at the page's end (with ``model_id IN (...)`` the database would sort
    every matching row first)."""
    start, end, cursor, error, labelled, correct = shape
    where: list[ColumnElement[bool]] = [_p.model_id == bindparam("model_id")]
    if start:
        where.append(_p.start_ns >= bindparam("start_ns"))
    if end:
        where.append(_p.start_ns < bindparam("end_ns"))
    if cursor:
        at: BindParameter[int] = bindparam("cursor_ns")
        where.append(or_(_p.start_ns < at, and_(_p.start_ns == at, _p.id < bindparam("cursor_id"))))
    if error is not None:
        where.append(_p.status != _ZERO if error else _p.status == _ZERO)
    if labelled is not None:
        where.append(_LABELLED if labelled else not_(_LABELLED))
    if correct is not None:
        where.append(and_(_JUDGED, not_(_WRONG)) if correct else _WRONG)
    return prediction_select().where(*where).order_by(_p.start_ns.desc(), _p.id.desc()).limit(bindparam("limit"))


#: One statement per shape of search (at most 216), built on first use.
_PAGES: dict[_Shape, Select[Any]] = {}


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
    shape: _Shape = (
        filters.start_ns is not None,
        filters.end_ns is not None,
        cursor is not None,
        filters.error,
        filters.labelled,
        filters.correct,
    )
    page = _PAGES.get(shape)
    if page is None:
        page = _PAGES[shape] = _page(shape)
    params: dict[str, object] = {"start_ns": filters.start_ns, "end_ns": filters.end_ns, "limit": limit + 1}
    if cursor is not None:
        params["cursor_ns"], params["cursor_id"] = cursor
    lo = filters.start_ns if filters.start_ns is not None else 0
    hi = filters.end_ns if filters.end_ns is not None else MAX_NS
    ids = [model_id for model_id in ids if _may_match(conn, model_id, filters, lo, hi)]
    rows = [row for model_id in ids for row in run(conn, page, {**params, "model_id": model_id})]
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
