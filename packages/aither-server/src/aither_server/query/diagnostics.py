"""Why a model's quality is what it is, per task, over a time range of its labelled rows.

- Classification: the confusion matrix (from the same rollups and raw edges as the metrics' accuracy, so its
  diagonal over its total is the page's accuracy); for a binary model that logs ``predict_proba``, the score
  distribution of each actual class and the calibration (reliability) curve: per score bin, the share of
  positives against the mean score, with a Wilson interval.
- Regression: the newest :data:`MAX_SCATTER` labelled rows' predicted and actual values, and their residuals
  (actual - predicted) by bins of the predicted value, with a normal interval.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Integer, bindparam, func, literal_column, select

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.model.rollup_keys import SCORE_BINS as ROLLUP_BINS
from aither_server.query.classification import class_map, sort_key
from aither_server.query.intervals import mean_interval, wilson
from aither_server.query.metric_filter import MAX_PAIRS, Filter, in_filter
from aither_server.query.models import model_ids
from aither_server.query.quality_groups import quality_groups
from aither_server.query.score_bins import score_bins
from aither_server.store.core_tables import models, prediction_rows
from aither_server.store.engine import Connection, constant, indexed_by, json_array_length, run

__all__ = [
    "MAX_CLASSES",
    "MAX_SCATTER",
    "SCORE_BINS",
    "CalibrationBin",
    "Confusion",
    "Diagnostics",
    "Regression",
    "ResidualBin",
    "Scores",
    "diagnostics",
]

#: Classes shown in the confusion matrix; the rest are summed into ``(other)``.
MAX_CLASSES = 12
SCORE_BINS = 10
MAX_SCATTER = 2000
_RESIDUAL_BINS = 8

_r = prediction_rows.c
_CLASS = constant(KIND_CLASS)
_PROBA = constant(KIND_PROBA)
#: The widest row of class probabilities among the filter's labelled ones.
_WIDTH = indexed_by(
    select(func.max(json_array_length(_r.proba))).where(
        in_filter(prediction_rows), _r.label_kind == _CLASS, _r.kind == _PROBA, _r.proba.is_not(None)
    ),
    prediction_rows,
    "prediction_rows_probas",
)
#: The filter's newest labelled numeric rows: (predicted, actual).
_PAIRS = indexed_by(
    select(_r.pred_num, _r.label_num)
    .where(in_filter(prediction_rows), _r.label_kind.is_not(None), _r.pred_num.is_not(None), _r.label_num.is_not(None))
    .order_by(_r.start_ns.desc())
    .limit(MAX_SCATTER),
    prediction_rows,
    "prediction_rows_labelled",
)
#: Whether one of the model rows keeps 1 in k of its spans.
_SAMPLED = (
    select(literal_column("1", Integer))
    .where(models.c.id.in_(bindparam("ids", expanding=True)), models.c.sampled == literal_column("1", Integer))
    .limit(1)
)


class Confusion(TypedDict):
    classes: list[str]
    rows: list[list[int]]
    """Rows: actual class; columns: predicted class."""
    total: int
    correct: int


class CalibrationBin(TypedDict):
    bin: list[float]
    rows: int
    mean_score: float
    positive_rate: float
    low: float
    high: float


class Scores(TypedDict):
    positive: str
    bins: int
    by_class: dict[str, list[int]]
    calibration: list[CalibrationBin]


class ResidualBin(TypedDict):
    predicted: list[float]
    rows: int
    mean_residual: float
    low: float | None
    high: float | None


class Regression(TypedDict):
    rows: int
    points: list[tuple[float, float]]
    residuals: list[ResidualBin]


class Diagnostics(TypedDict):
    task: str | None
    confusion: Confusion | None
    scores: Scores | None
    regression: Regression | None


def _confusion(conn: Connection, f: Filter, lo: int, hi: int) -> Confusion | None:
    groups = quality_groups(conn, f, lo, hi, classes=True)
    if len(groups) > MAX_PAIRS:
        return None
    class_groups = [g for g in groups if g.pred is not None and g.label is not None and g.label_kind == KIND_CLASS]
    width = 0
    if any(g.kind == KIND_PROBA for g in class_groups):
        width = 2 if any(g.scored for g in class_groups if g.kind == KIND_PROBA) else 0
        if not width:
            width = run(conn, _WIDTH, f.values).fetchone()[0] or 0
    mapping = class_map((g.label for g in class_groups if g.kind == KIND_PROBA and g.label), width) if width else None
    cells: dict[tuple[str, str], float] = {}
    for g in class_groups:
        pred = g.pred
        if g.kind == KIND_PROBA:
            if mapping is None or pred not in mapping:
                continue
            pred = mapping[pred]
        elif g.kind != KIND_CLASS:
            continue
        assert pred is not None and g.label is not None
        cells[(pred, g.label)] = cells.get((pred, g.label), 0.0) + g.rows
    if not cells:
        return None
    totals: dict[str, float] = {}
    for (pred, label), count in cells.items():
        totals[pred] = totals.get(pred, 0.0) + count
        totals[label] = totals.get(label, 0.0) + count
    shown = sorted(sorted(totals, key=lambda c: -totals[c])[:MAX_CLASSES], key=sort_key)
    other = len(totals) > len(shown)
    names = shown + (["(other)"] if other else [])
    matrix = [[0 for _ in names] for _ in names]
    index = {c: i for i, c in enumerate(shown)}
    for (pred, label), count in cells.items():
        matrix[index.get(label, len(shown))][index.get(pred, len(shown))] += round(count)
    total = sum(sum(row) for row in matrix)
    return {
        "classes": [_display(c) for c in names],
        "rows": matrix,
        "total": total,
        "correct": sum(matrix[i][i] for i in range(len(shown))),
    }


def _display(key: str) -> str:
    """A class key as the user wrote it: ``"1"`` for the integer 1, ``yes`` for the string "yes"."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def _scores(conn: Connection, f: Filter, lo: int, hi: int) -> Scores | None:
    """Binary ``predict_proba`` rows: the score histogram of each actual class, and the calibration curve."""
    # The rollups' fine bins (0.01 wide) summed into these: with both sets of bounds at i / n, a fine bin lies in
    # exactly one of ours.
    per = ROLLUP_BINS // SCORE_BINS
    sums: dict[tuple[int, str], list[float]] = {}
    for (index, label), (rows, _, total) in score_bins(conn, f.ids, lo, hi).items():
        cell = sums.setdefault((index // per, label), [0, 0.0])
        cell[0] += rows
        cell[1] += total
    found = [(index, label, int(rows), total) for (index, label), (rows, total) in sorted(sums.items()) if rows]
    if not found:
        return None
    labels = sorted({label for _, label, _, _ in found}, key=sort_key)
    if len(labels) > 2:
        return None
    mapping = class_map(labels, 2)
    if mapping is None:
        return None
    positive = mapping["1"]
    by_class = {_display(label): [0] * SCORE_BINS for label in labels}
    positives = [0] * SCORE_BINS
    counts = [0] * SCORE_BINS
    score_sums = [0.0] * SCORE_BINS
    for index, label, count, total in found:
        by_class[_display(label)][int(index)] += int(count)
        counts[int(index)] += int(count)
        score_sums[int(index)] += float(total)
        if label == positive:
            positives[int(index)] += int(count)
    curve: list[CalibrationBin] = []
    for i in range(SCORE_BINS):
        if not counts[i]:
            continue
        interval = wilson(positives[i], counts[i])
        assert interval is not None
        curve.append(
            {
                "bin": [i / SCORE_BINS, (i + 1) / SCORE_BINS],
                "rows": counts[i],
                "mean_score": score_sums[i] / counts[i],
                "positive_rate": positives[i] / counts[i],
                "low": interval[0],
                "high": interval[1],
            }
        )
    return {"positive": _display(positive), "bins": SCORE_BINS, "by_class": by_class, "calibration": curve}


def _regression(conn: Connection, f: Filter) -> Regression | None:
    pairs = run(conn, _PAIRS, f.values).fetchall()
    if not pairs:
        return None
    points = [(float(p), float(y)) for p, y in pairs]
    ordered = sorted(points)
    size = max(1, -(-len(ordered) // _RESIDUAL_BINS))
    residuals: list[ResidualBin] = []
    for start in range(0, len(ordered), size):
        chunk = ordered[start : start + size]
        errors = [y - p for p, y in chunk]
        interval = mean_interval(sum(errors), sum(e * e for e in errors), len(errors))
        residuals.append(
            {
                "predicted": [chunk[0][0], chunk[-1][0]],
                "rows": len(chunk),
                "mean_residual": sum(errors) / len(errors),
                "low": None if interval is None else interval[0],
                "high": None if interval is None else interval[1],
            }
        )
    return {"rows": len(points), "points": points, "residuals": residuals}


def diagnostics(
    conn: Connection,
    name: str,
    *,
    start_ns: int,
    end_ns: int,
    version: str | None = None,
    environment: str | None = None,
    task: str | None = None,
) -> Diagnostics | None:
    """The task's diagnostics over ``[start_ns, end_ns)``; ``None`` when no such model."""
    models = model_ids(conn, name, version, environment)
    if models is None:
        return None
    ids = [m[0] for m in models]
    out: Diagnostics = {"task": task, "confusion": None, "scores": None, "regression": None}
    if not ids:
        return out
    sampled = run(conn, _SAMPLED, {"ids": ids})
    f = Filter(ids, start_ns, end_ns, weighted=sampled.fetchone() is not None)
    if task == "regression":
        out["regression"] = _regression(conn, f)
    elif task == "classification":
        out["confusion"] = _confusion(conn, f, start_ns, end_ns)
        out["scores"] = _scores(conn, f, start_ns, end_ns)
    return out
