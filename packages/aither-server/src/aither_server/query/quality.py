"""Quality over time and by segment: the metrics per time bucket, and metrics sliced by a feature's values.

- Series: the quality metrics of each bucket of a window (accuracy, F1, AUC; MAE, RMSE) with the labelled
  rows behind each figure, read through the metrics query one bucket at a time (its rollups make each cheap).
- Segments: the sampled rows of the newest predictions (at most :data:`MAX_PREDICTIONS`), each joined to its
  prediction row and label by ``_meta.rows``, grouped by one feature's value: a categorical column's
  :data:`TOP_CATEGORIES` most frequent values (the rest as ``(other)``), a numeric column's reference quartiles
  (the window's own when the model has no reference). Each segment has its labelled-row count beside its
  accuracy and macro F1 (classification) or MAE and RMSE (regression). Only sampled rows have feature values:
  the counts say how many back each figure.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Literal, TypedDict, TypeGuard

from aither.profile import Profile, output_value
from aither_server.drift.store import DriftStore
from aither_server.query import metrics as query_metrics
from aither_server.query import predictions as query_predictions
from aither_server.query import time as query_time
from aither_server.query.time import NS
from aither_server.store.database import Store

__all__ = [
    "MAX_BUCKETS",
    "MAX_PREDICTIONS",
    "TOP_CATEGORIES",
    "QualityPoint",
    "QualitySeries",
    "Segment",
    "Segments",
    "quality_series",
    "quartile_edges",
    "segments",
]

MAX_BUCKETS = 200
MAX_PREDICTIONS = 20_000
TOP_CATEGORIES = 10


class QualityPoint(TypedDict):
    start: str | None
    end: str | None
    predictions: int
    task: Literal["classification", "regression"] | None
    labels: int
    accuracy: float | None
    f1: float | None
    auc: float | None
    mae: float | None
    rmse: float | None


class QualitySeries(TypedDict):
    model: str
    version: str | None
    environment: str | None
    points: list[QualityPoint]


class _SegmentRows(TypedDict):
    value: str
    rows: int


class Segment(_SegmentRows, total=False):
    """One segment's labelled rows and their accuracy and macro F1, or MAE and RMSE."""

    accuracy: float
    f1: float
    mae: float
    rmse: float


class Segments(TypedDict):
    model: str
    feature: str
    kind: Literal["numeric", "categorical"]
    rows: int
    segments: list[Segment]


def quality_series(
    store: Store,
    name: str,
    *,
    bucket_s: int,
    start_ns: int,
    end_ns: int,
    version: str | None = None,
    environment: str | None = None,
) -> QualitySeries | None:
    """The quality metrics of each bucket of ``[start_ns, end_ns)``; ``None`` when no model has this name."""
    if (end_ns - start_ns) / (bucket_s * NS) > MAX_BUCKETS:
        raise ValueError(f"the bucket splits the window into more than {MAX_BUCKETS} buckets")
    conn = store.reader()
    points: list[QualityPoint] = []
    first = start_ns - start_ns % (bucket_s * NS)
    for lo in range(first, end_ns, bucket_s * NS):
        found = query_metrics.metrics(
            conn, name, version=version, environment=environment, start_ns=lo, end_ns=lo + bucket_s * NS
        )
        if found is None:
            return None
        points.append(
            {
                "start": query_time.iso(lo),
                "end": query_time.iso(lo + bucket_s * NS),
                "predictions": found["predictions"],
                "task": found["task"],
                "labels": found["labels"],
                "accuracy": found["accuracy"],
                "f1": found["f1"],
                "auc": found["auc"],
                "mae": found["mae"],
                "rmse": found["rmse"],
            }
        )
    return {"model": name, "version": version, "environment": environment, "points": points}


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _labelled_rows(
    store: Store, name: str, feature: str, version: str | None, environment: str | None, start_ns: int | None
) -> list[tuple[object, object, object]] | None:
    """(feature value, predicted, label) of every labelled sampled row of the newest predictions."""
    found = query_predictions.recent_predictions(
        store.reader(), name, limit=MAX_PREDICTIONS, version=version, environment=environment
    )
    if found is None:
        return None
    since = None if start_ns is None else query_time.iso(start_ns)
    rows: list[tuple[object, object, object]] = []
    for prediction in found:
        if since is not None and prediction["start_time"] is not None and prediction["start_time"] < since:
            continue
        for row in prediction["sampled_rows"]:
            features = row["features"]
            if row["label"] is None or not isinstance(features, dict) or feature not in features:
                continue
            rows.append((features[feature], output_value(row["prediction"]), output_value(row["label"])))
    return rows


def _edges(values: list[float], drift: DriftStore, name: str, version: str | None, feature: str) -> list[float]:
    reference = drift.reference(name, version, None)
    return quartile_edges(values, None if reference is None else reference.features.get(feature))


def quartile_edges(values: list[float], profile: Profile | None) -> list[float]:
    """A numeric column's bin edges: its reference profile's quartiles, else those of ``values``."""
    if profile is not None and profile.kind == "numeric" and profile.count:
        quartiles = [float(q) for q in profile.kll().get_quantiles([0.25, 0.5, 0.75])]
    else:
        import numpy as np

        quartiles = [float(q) for q in np.quantile(np.asarray(values, dtype=np.float64), [0.25, 0.5, 0.75])]
    return sorted(set(quartiles))


def _bin(edges: list[float], value: float) -> int:
    return sum(value >= edge for edge in edges)


def _bin_label(edges: list[float], index: int) -> str:
    if not edges:
        return "all"
    if index == 0:
        return f"< {edges[0]:.6g}"
    if index == len(edges):
        return f">= {edges[-1]:.6g}"
    return f"[{edges[index - 1]:.6g}, {edges[index]:.6g})"


def _scores(value: str, pairs: list[tuple[object, object]]) -> Segment:
    """Accuracy and macro F1 of class pairs, or MAE and RMSE of numeric ones, with the rows behind them."""
    out: Segment = {"value": value, "rows": len(pairs)}
    numeric = [(p, y) for p, y in pairs if _is_number(p) and _is_number(y)]
    regression = numeric and any(isinstance(v, float) and not float(v).is_integer() for pair in numeric for v in pair)
    if regression:
        errors = [float(p) - float(y) for p, y in numeric]
        out["mae"] = sum(abs(e) for e in errors) / len(errors)
        out["rmse"] = math.sqrt(sum(e * e for e in errors) / len(errors))
        return out
    keys = [(str(p), str(y)) for p, y in pairs]
    out["accuracy"] = sum(p == y for p, y in keys) / len(keys)
    predicted, actual = Counter(p for p, _ in keys), Counter(y for _, y in keys)
    hits = Counter(p for p, y in keys if p == y)
    f1s = []
    for label in set(predicted) | set(actual):
        precision = hits[label] / predicted[label] if predicted[label] else 0.0
        recall = hits[label] / actual[label] if actual[label] else 0.0
        f1s.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    out["f1"] = sum(f1s) / len(f1s)
    return out


def segments(
    store: Store,
    drift: DriftStore,
    name: str,
    feature: str,
    *,
    version: str | None = None,
    environment: str | None = None,
    start_ns: int | None = None,
) -> Segments | None:
    """Quality by the values of ``feature`` over the labelled sampled rows; ``None`` when no such model."""
    rows = _labelled_rows(store, name, feature, version, environment, start_ns)
    if rows is None:
        return None
    # Segments in order: numeric bins from low to high; categories from the most frequent, "(other)" last.
    groups: dict[tuple[int, str], list[tuple[object, object]]] = defaultdict(list)
    numbers = [float(v) for v, _, _ in rows if _is_number(v)]
    kind: Literal["numeric", "categorical"] = "numeric" if rows and len(numbers) == len(rows) else "categorical"
    if kind == "numeric":
        edges = _edges(numbers, drift, name, version, feature)
        for value, predicted, label in rows:
            assert _is_number(value)
            index = _bin(edges, float(value))
            groups[(index, _bin_label(edges, index))].append((predicted, label))
    else:
        top = Counter(str(v) for v, _, _ in rows).most_common(TOP_CATEGORIES)
        rank = {value: i for i, (value, _) in enumerate(top)}
        for value, predicted, label in rows:
            key = (rank[str(value)], str(value)) if str(value) in rank else (len(rank), "(other)")
            groups[key].append((predicted, label))
    return {
        "model": name,
        "feature": feature,
        "kind": kind,
        "rows": len(rows),
        "segments": [_scores(key[1], pairs) for key, pairs in sorted(groups.items())],
    }
