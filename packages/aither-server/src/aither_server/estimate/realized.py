"""The realized figures beside an estimate: per slice, from the labelled rows (``prediction_rows``), with the
estimate's definitions and classes, so the two compare.

A closed hour's labelled rows are read once and kept in ``realized_hours`` (``estimate/store.py``): a classifier's
as its kept rows (predicted class, true class, weight, class scores; AUC needs the scores themselves to stay
exact), a regressor's as four sums, and the hour's figures beside them (a one-hour slice reads those as they are;
a longer one merges its hours' rows). Each is stored with a digest of the hour's ``quality_hours`` cells, which
ingestion moves whenever a label joins, is replaced or is erased: when the digest differs the hour is read again,
so a late label changes the figure as it did before the cache. The open hour and a window's partial hours are read
each time; slices shorter than an hour read their rows.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, select

from aither_server.estimate import cbpe
from aither_server.estimate.calibration import Estimator, Floats
from aither_server.estimate.dle import LossModel
from aither_server.estimate.figures import ClassifierRealized, Realized
from aither_server.estimate.store import AnyEstimator, EstimateStore
from aither_server.model.records import KIND_PROBA
from aither_server.model.rollup_keys import HOUR_NS
from aither_server.query.metric_filter import in_filter
from aither_server.store.core_tables import prediction_rows, quality_hours
from aither_server.store.engine import Connection, run

__all__ = ["realized_figures"]

#: A regressor's row (or hour) of sums: rows, weight, weighted absolute error, weighted squared error.
_SUMS = 4
#: A classifier's row starts with predicted class, true class and weight; the class scores follow.
_HEAD = 3

Ints = npt.NDArray[np.int64]

_r = prediction_rows.c
_RANGE = in_filter(prediction_rows)
_CLASS_ROWS = select(_r.model_id, _r.start_ns, _r.pred_key, _r.label_key, _r.score, _r.proba, _r.weight).where(
    _RANGE, _r.kind == bindparam("kind"), _r.label_key.is_not(None)
)
_NUMBER_ROWS = select(_r.model_id, _r.start_ns, _r.pred_num, _r.label_num, _r.weight).where(
    _RANGE, _r.pred_num.is_not(None), _r.label_num.is_not(None)
)
_q = quality_hours.c
_CELLS = (
    select(
        _q.model_id,
        _q.hour,
        _q.kind,
        _q.label_kind,
        _q.pred_key,
        _q.label_key,
        _q.scored,
        _q.rows,
        _q.w_rows,
        _q.w_abs,
        _q.w_sq,
    )
    .where(in_filter(quality_hours, "hour"))
    .order_by(_q.model_id, _q.hour, _q.kind, _q.label_kind, _q.pred_key, _q.label_key, _q.scored)
)


def _width(estimator: AnyEstimator) -> int:
    return _SUMS if isinstance(estimator, LossModel) else _HEAD + estimator.width


def _class_rows(estimator: Estimator, conn: Connection, ids: list[int], lo: int, hi: int) -> tuple[Ints, Ints, Floats]:
    """(model ids, start ns, table) of the labelled score rows of calls in ``[lo, hi)`` that the estimate's
    classes cover; each table row is predicted class, true class, weight, then the ``k`` class scores."""
    index = {key: i for i, key in enumerate(estimator.classes)}
    k = estimator.width
    found = run(conn, _CLASS_ROWS, {"ids": ids, "lo": lo, "hi": hi, "kind": KIND_PROBA}).fetchall()
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, _HEAD + k))
    # Column-wise, so a month of labels costs a few numpy passes, not a Python loop per row and slice.
    models, starts, pred_keys, label_keys, scores, probas, weights_in = zip(*found, strict=True)
    n = len(found)
    truth = np.fromiter((index.get(key, -1) for key in label_keys), dtype=np.int64, count=n)
    predicted = np.fromiter(
        (int(key) if key is not None and key.isdigit() else -1 for key in pred_keys), dtype=np.int64, count=n
    )
    weights = np.fromiter((1.0 if w is None else w for w in weights_in), dtype=np.float64, count=n)
    if k == 2:
        second = np.fromiter((np.nan if v is None else v for v in scores), dtype=np.float64, count=n)
        matrix = np.column_stack([1.0 - second, second])
    else:
        matrix = np.full((n, k), np.nan)
        for i, text in enumerate(probas):
            row = json.loads(text) if text is not None else None
            if isinstance(row, list) and len(row) == k:
                matrix[i] = row
    keep = (truth >= 0) & (predicted >= 0) & (predicted < k) & np.all(np.isfinite(matrix), axis=1)
    table = np.column_stack([predicted, truth, weights, matrix])[keep]
    return np.asarray(models, np.int64)[keep], np.asarray(starts, np.int64)[keep], table


def _number_rows(conn: Connection, ids: list[int], lo: int, hi: int) -> tuple[Ints, Ints, Floats]:
    """(model ids, start ns, table) of the labelled numeric rows of calls in ``[lo, hi)``, each table row the
    :data:`_SUMS` of that one row."""
    found = run(conn, _NUMBER_ROWS, {"ids": ids, "lo": lo, "hi": hi}).fetchall()
    table = np.zeros((len(found), _SUMS))
    for i, (_, _, predicted, label, weight) in enumerate(found):
        w = 1.0 if weight is None else float(weight)
        error = float(predicted) - float(label)
        table[i] = (1.0, w, w * abs(error), w * error * error)
    models = np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))
    starts = np.fromiter((r[1] for r in found), dtype=np.int64, count=len(found))
    return models, starts, table


def _rows(estimator: AnyEstimator, conn: Connection, ids: list[int], lo: int, hi: int) -> tuple[Ints, Ints, Floats]:
    if isinstance(estimator, LossModel):
        return _number_rows(conn, ids, lo, hi)
    return _class_rows(estimator, conn, ids, lo, hi)


def _figures(estimator: AnyEstimator, table: Floats) -> Realized | None:
    """The realized figures of one slice's table (rows, or a regressor's hours of sums)."""
    if isinstance(estimator, LossModel):
        n, w, a, q = table.sum(axis=0)
        return {"labels": int(n), "mae": a / w, "rmse": math.sqrt(q / w)} if w > 0 else None
    if not len(table):
        return None
    predicted = table[:, 0].astype(np.int64)
    truth = table[:, 1].astype(np.int64)
    return _slice(estimator, predicted, truth, table[:, _HEAD:], table[:, 2])


def _slice(estimator: Estimator, predicted: Ints, truth: Ints, matrix: Floats, weights: Floats) -> ClassifierRealized:
    k = estimator.width
    confusion = np.bincount(predicted * k + truth, weights, minlength=k * k).reshape(k, k).astype(np.float64)
    total = float(weights.sum())
    macro = cbpe.class_figures(confusion, total * total / float((weights * weights).sum()), total)
    aucs = []
    for column in estimator.scored():
        order = np.argsort(matrix[:, column], kind="stable")
        s = matrix[order, column]
        pos = weights[order] * (truth[order] == column)
        neg = weights[order] * (truth[order] != column)
        # Equal scores share a bin: ties count half.
        starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
        found_auc = cbpe.auc_of(np.add.reduceat(pos, starts), np.add.reduceat(neg, starts))
        if found_auc is not None:
            aucs.append(found_auc)
    return {
        "labels": len(truth),
        "accuracy": float(np.trace(confusion)) / total,
        "precision": macro["precision"][0],
        "recall": macro["recall"][0],
        "f1": macro["f1"][0],
        "auc": sum(aucs) / len(aucs) if aucs else None,
        "confusion_matrix": [[float(v) for v in row] for row in confusion],
    }


def _label_states(conn: Connection, ids: list[int], lo: int, hi: int) -> dict[tuple[int, int], str]:
    """Per (model id, hour start ns) with labelled rows: a digest of its ``quality_hours`` cells, which change
    whenever one of its labels joins, is replaced or is erased."""
    cells: dict[tuple[int, int], list[tuple[object, ...]]] = defaultdict(list)
    for row in run(conn, _CELLS, {"ids": ids, "lo": lo // HOUR_NS, "hi": -(-hi // HOUR_NS)}):
        cells[(row[0], row[1] * HOUR_NS)].append(tuple(row[2:]))
    return {key: hashlib.sha1(repr(found).encode(), usedforsecurity=False).hexdigest() for key, found in cells.items()}


def _closed_hours(
    estimates: EstimateStore, estimator: AnyEstimator, conn: Connection, ids: list[int], lo: int, hi: int
) -> dict[tuple[int, int], tuple[Floats, str]]:
    """The table and the figures (JSON) of every (model id, closed hour) in ``[lo, hi)``, from the cache where its
    labels are those it was computed from, else read and cached."""
    width = _width(estimator)
    # The states are read before the rows: a label joining in between makes the next answer read the hour again.
    states = _label_states(conn, ids, lo, hi)
    cached = estimates.realized(ids, estimator.created_ns, lo, hi)
    out: dict[tuple[int, int], tuple[Floats, str]] = {}
    stale: set[tuple[int, int]] = set()
    for key in ((m, h) for m in ids for h in range(lo, hi, HOUR_NS)):
        hit = cached.get(key)
        if hit is not None and hit[0] == states.get(key, "") and len(hit[1]) % width == 0:
            out[key] = (hit[1].reshape(-1, width), hit[2])
        else:
            stale.add(key)
    if not stale:
        return out
    hours = [h for _, h in stale]
    models, starts, table = _rows(estimator, conn, sorted({m for m, _ in stale}), min(hours), max(hours) + HOUR_NS)
    hour_of = starts - starts % HOUR_NS
    order = np.lexsort((hour_of, models))
    bounds = np.flatnonzero(np.diff(models[order]) | np.diff(hour_of[order])) + 1
    tables = {key: np.zeros((0, width)) for key in stale}
    for part in np.split(order, bounds) if len(order) else []:
        key = (int(models[part[0]]), int(hour_of[part[0]]))
        if key in stale:
            found = table[part]
            tables[key] = found.sum(axis=0, keepdims=True) if isinstance(estimator, LossModel) else found
    fresh = []
    for (m, h), found in sorted(tables.items()):
        out[(m, h)] = (found, json.dumps(_figures(estimator, found)))
        fresh.append((m, h, states.get((m, h), ""), found, out[(m, h)][1]))
    estimates.put_realized(estimator.created_ns, fresh)
    return out


def realized_figures(
    estimates: EstimateStore,
    estimator: AnyEstimator,
    conn: Connection,
    ids: list[int],
    *,
    first: int,
    end_ns: int,
    bucket_ns: int,
    closed_ns: int,
) -> dict[int, Realized]:
    """Realized figures per slice start of ``[first, end_ns)``; hours ending by ``closed_ns`` come from the
    cache."""
    width = _width(estimator)
    out: dict[int, Realized] = {}
    parts: list[tuple[Ints, Floats]] = []
    first_hour = -(-first // HOUR_NS) * HOUR_NS
    closed_end = max(first_hour, min(end_ns - end_ns % HOUR_NS, closed_ns - closed_ns % HOUR_NS))
    if bucket_ns % HOUR_NS or first % HOUR_NS or closed_end == first_hour:
        # Slices that cut hours (or no closed hour): every row is read.
        closed_end = first
    else:
        closed = _closed_hours(estimates, estimator, conn, ids, first, closed_end)
        for (_, hour), (table, figures) in closed.items():
            if bucket_ns == HOUR_NS and len(ids) == 1:  # the slice is the hour: its figures as cached
                if (found := json.loads(figures)) is not None:
                    out[hour] = found
            else:
                parts.append((np.full(len(table), hour, np.int64), table))
    if closed_end < end_ns:
        _, starts, table = _rows(estimator, conn, ids, closed_end, end_ns)
        parts.append((starts, table))
    if not parts:
        return out
    starts = np.concatenate([p[0] for p in parts])
    table = np.concatenate([p[1] for p in parts]).reshape(-1, width)
    slots = first + (starts - first) // bucket_ns * bucket_ns
    order = np.argsort(slots, kind="stable")
    if not len(order):
        return out
    for part in np.split(order, np.flatnonzero(np.diff(slots[order])) + 1):
        found = _figures(estimator, table[part])
        if found is not None:
            out[int(slots[part[0]])] = found
    return out
