"""Classification scores from the labelled rows' groups: the confusion matrix's accuracy, macro precision,
recall and F1, and the ROC AUC (binary, or one-vs-rest macro) from the stored scores."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement
from typing_extensions import TypedDict

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.query.metric_filter import Filter, in_filter
from aither_server.query.render import stored_json
from aither_server.query.score_bins import score_bins
from aither_server.store.core_tables import prediction_rows
from aither_server.store.engine import Connection, constant, indexed_by, json_array_length, run

__all__ = ["Scores", "binary_auc", "class_map", "classification", "sort_key"]

#: Labelled multiclass probability rows read for the one-vs-rest AUC.
_MAX_PROBA_ROWS = 200_000

_r = prediction_rows.c
#: The partial indexes' conditions are written as literals, as SQLite's ``INDEXED BY`` needs to see them implied.
_PROBA = (
    in_filter(prediction_rows),
    _r.label_kind == constant(KIND_CLASS),
    _r.kind == constant(KIND_PROBA),
)
_WIDTH = indexed_by(
    select(func.max(json_array_length(_r.proba))).where(*_PROBA, _r.proba.is_not(None)),
    prediction_rows,
    "prediction_rows_probas",
)
#: By whether rows are weighted: the binary scores' (score, label key, rows) groups, and multiclass probability
#: rows' (probabilities, label key, weight); made once each.
_scores: dict[bool, Select[tuple[float, str, float]]] = {}
_probas = {
    weighted: indexed_by(
        select(
            _r.proba,
            _r.label_key,
            func.coalesce(_r.weight, literal_column("1.0")) if weighted else literal_column("1.0"),
        )
        .where(*_PROBA, _r.proba.is_not(None))
        .limit(_MAX_PROBA_ROWS + 1),
        prediction_rows,
        "prediction_rows_probas",
    )
    for weighted in (False, True)
}


def _scores_of(f: Filter) -> Select[tuple[float, str, float]]:
    found = _scores.get(f.weighted)
    if found is None:
        rows: ColumnElement[Any] = f.rows(prediction_rows)
        found = _scores[f.weighted] = indexed_by(
            select(_r.score, _r.label_key, rows).where(*_PROBA, _r.score.is_not(None)).group_by(_r.score, _r.label_key),
            prediction_rows,
            "prediction_rows_scores",
        )
    return found


def sort_key(key: str) -> tuple[int, float | str]:
    value = stored_json(key)
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def class_map(proba_labels: Iterable[str], width: int) -> dict[str, str] | None:
    """Map ``predict_proba`` column indexes to label keys, as scikit-learn orders ``classes_``: sorted.

    When every class appears among the labels, column i is the i-th smallest label. Otherwise integer labels
    0..width-1 are taken as column indexes (the common case of classes 0..k-1). Else the columns are unknown.
    """
    labels = sorted(set(proba_labels), key=sort_key)
    if len(labels) == width:
        return {str(i): key for i, key in enumerate(labels)}
    if all(key.lstrip("-").isdigit() and 0 <= int(key) < width for key in labels):
        return {str(i): str(i) for i in range(width)}
    return None


def binary_auc(groups: Iterable[tuple[float, float, float]]) -> float | None:
    """ROC AUC from (score, positives, negatives) sorted by score; ties count half (Mann-Whitney U)."""
    pos_total = neg_total = 0.0
    area = 0.0
    for _, pos, neg in groups:
        area += pos * (neg_total + 0.5 * neg)
        pos_total += pos
        neg_total += neg
    if not pos_total or not neg_total:
        return None
    return area / (pos_total * neg_total)


def _grouped(scores: list[tuple[float, bool, float]]) -> list[tuple[float, float, float]]:
    """(score, positive weight, negative weight) per distinct score, from (score, positive, weight) rows."""
    scores.sort(key=lambda item: item[0])
    out: list[tuple[float, float, float]] = []
    for score, positive, weight in scores:
        pos, neg = (weight, 0.0) if positive else (0.0, weight)
        if out and out[-1][0] == score:
            s, p, n = out[-1]
            out[-1] = (s, p + pos, n + neg)
        else:
            out.append((score, pos, neg))
    return out


class Scores(TypedDict):
    accuracy: float
    precision: float
    recall: float
    f1: float
    auc: float | None


def classification(
    conn: Connection, f: Filter, pairs: list[tuple[int, str, str, float]], binary_scores: bool, auc: bool = True
) -> Scores | None:
    """Scores from (kind, predicted key, label key, rows) groups of the labelled class-like rows."""
    width = 0
    if any(kind == KIND_PROBA for kind, _, _, _ in pairs):
        # Only multiclass probability rows are read from the table; everything else comes from the index.
        width = 2 if binary_scores else run(conn, _WIDTH, f.values).fetchone()[0] or 0
    mapping = class_map((label for kind, _, label, _ in pairs if kind == KIND_PROBA), width) if width else None
    confusion: dict[tuple[str, str], float] = {}
    for kind, pred, label, count in pairs:
        if kind == KIND_PROBA:
            if mapping is None or pred not in mapping:
                continue
            pred = mapping[pred]
        confusion[(pred, label)] = confusion.get((pred, label), 0) + count
    total = sum(confusion.values())
    if not total:
        return None
    classes = {c for pair in confusion for c in pair}
    predicted = dict.fromkeys(classes, 0.0)
    actual = dict.fromkeys(classes, 0.0)
    for (pred, label), count in confusion.items():
        predicted[pred] += count
        actual[label] += count
    precisions, recalls, f1s = [], [], []
    for c in classes:
        tp = confusion.get((c, c), 0)
        precisions.append(tp / predicted[c] if predicted[c] else 0.0)
        recalls.append(tp / actual[c] if actual[c] else 0.0)
        denominator = predicted[c] + actual[c]
        f1s.append(2 * tp / denominator if denominator else 0.0)
    k = len(classes)
    return {
        "accuracy": sum(confusion.get((c, c), 0) for c in classes) / total,
        "precision": sum(precisions) / k,
        "recall": sum(recalls) / k,
        "f1": sum(f1s) / k,
        "auc": _auc(conn, f, mapping, width) if mapping and auc else None,
    }


def _binned_auc(conn: Connection, f: Filter, mapping: dict[str, str]) -> float | None:
    """The binary AUC of scores placed in their bin of ``score_hours`` / ``score_days`` (ties within a bin count
    half): the dashboard's per-slice figure, within a fraction of the pairs that share a bin of the exact one."""
    positive, negative = mapping["1"], mapping["0"]
    lo, hi = f.values["lo"], f.values["hi"]
    assert isinstance(lo, int) and isinstance(hi, int)
    bins = score_bins(conn, f.ids, lo, hi)
    groups: dict[int, list[float]] = {}
    for (index, label), (rows, w_rows, _) in bins.items():
        if label != positive and label != negative:
            continue
        g = groups.setdefault(index, [0.0, 0.0])
        g[0 if label == positive else 1] += w_rows if f.weighted else rows
    return binary_auc((float(i), p, n) for i, (p, n) in sorted(groups.items()))


def _auc(conn: Connection, f: Filter, mapping: dict[str, str], width: int) -> float | None:
    if width == 2 and f.approximate:
        return _binned_auc(conn, f, mapping)
    if width == 2:
        positive = mapping["1"]
        groups: dict[float, list[float]] = {}
        for score, label, count in run(conn, _scores_of(f), f.values):
            if label != positive and label != mapping["0"]:
                continue
            g = groups.setdefault(score, [0.0, 0.0])
            g[0 if label == positive else 1] += count
        return binary_auc((s, p, n) for s, (p, n) in sorted(groups.items()))
    index = {key: int(col) for col, key in mapping.items()}
    rows = run(conn, _probas[f.weighted], f.values).fetchall()
    if len(rows) > _MAX_PROBA_ROWS:
        return None
    decoded = [(json.loads(p), index[label], w) for p, label, w in rows if label in index]
    decoded = [(p, y, w) for p, y, w in decoded if len(p) == width]
    aucs = []
    for col in range(width):
        auc = binary_auc(_grouped([(p[col], y == col, w) for p, y, w in decoded]))
        if auc is not None:
            aucs.append(auc)
    return sum(aucs) / len(aucs) if aucs else None
