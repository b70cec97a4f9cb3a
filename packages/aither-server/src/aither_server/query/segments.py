"""Where is the model worst: the segments of every feature, ranked by how much worse the model does on them.

The rows are the labelled sampled rows of a window's newest labelled predictions (at most ``max_predictions``
of them: only sampled rows carry feature values), each joined to its output row and label by ``_meta.rows``.
Every feature is cut as the segments endpoint cuts one (``query/quality.py``): a categorical column by its
:data:`~aither_server.query.quality.TOP_CATEGORIES` most frequent values, a numeric one by the reference's
quartiles; a missing value is a segment of its own, ``(missing)``. Each segment has its labelled-row count, its
``value``: accuracy (classification, with a Wilson interval) or MAE (regression, with a normal interval), and its gap to
the whole window's figure on the same rows: positive is worse. Segments with at least :data:`MIN_ROWS` labelled
rows are ranked by gap; smaller ones follow, as too few to rank.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from aither_server.drift.sketches import _one_value
from aither_server.drift.store import DriftStore
from aither_server.model.sampled_rows import sampled_rows
from aither_server.query.intervals import mean_interval, wilson
from aither_server.query.models import model_ids
from aither_server.query.predictions import _labels_by_trace
from aither_server.query.quality import TOP_CATEGORIES, _bin, _bin_label, _edges, _is_number
from aither_server.query.render import stored_json
from aither_server.query.time import iso
from aither_server.store.database import Store

__all__ = ["MAX_PREDICTIONS", "MIN_ROWS", "MISSING", "ranked_segments"]

#: Labelled predictions read by default: enough rows for a segment of a few percent to show.
MAX_PREDICTIONS = 2000
#: Labelled rows a segment needs to be ranked: below it, one wrong label moves it by several points.
MIN_ROWS = 20
MISSING = "(missing)"

#: (features of the row, predicted value, label).
_Row = tuple[dict[str, Any], Any, Any]


def _labelled_rows(
    store: Store,
    name: str,
    version: str | None,
    environment: str | None,
    start_ns: int,
    end_ns: int,
    limit: int,
) -> tuple[list[_Row], int] | None:
    """The labelled sampled rows of the window's newest labelled predictions, and how many predictions."""
    conn = store.reader()
    models = model_ids(conn, name, version, environment)
    if models is None:
        return None
    found: list[tuple[int, bytes, str, str]] = []
    # Per model row, so each query walks the (model_id, start_ns) index backwards and stops at ``limit``.
    for model_id, _, _ in models:
        found.extend(
            conn.execute(
                "SELECT p.start_ns, p.trace_id, p.features, p.prediction FROM predictions p"
                " WHERE p.model_id = ? AND p.start_ns >= ? AND p.start_ns < ? AND EXISTS (SELECT 1 FROM"
                " prediction_rows r WHERE r.pred_id = p.id AND r.label_kind IS NOT NULL)"
                " ORDER BY p.start_ns DESC LIMIT ?",
                (model_id, start_ns, end_ns, limit),
            )
        )
    found.sort(key=lambda r: r[0], reverse=True)
    found = found[:limit]
    labels = _labels_by_trace(conn, [r[1] for r in found])
    rows: list[_Row] = []
    for _, trace_id, features, prediction in found:
        for row in sampled_rows(stored_json(features), stored_json(prediction), labels.get(trace_id, {})):
            if row["label"] is not None and isinstance(row["features"], dict):
                rows.append((row["features"], _one_value(row["prediction"]), _one_value(row["label"])))
    return rows, len(found)


def _is_regression(rows: Sequence[_Row]) -> bool:
    return any(
        isinstance(v, float) and _is_number(v) and not v.is_integer() for _, p, y in rows for v in (p, y)
    ) and all(_is_number(p) and _is_number(y) for _, p, y in rows)


class _Score:
    """A group of rows' accuracy (classification) or MAE (regression), with its interval."""

    def __init__(self, regression: bool) -> None:
        self.regression = regression
        self.rows = 0
        self.total = 0.0
        self.total_sq = 0.0

    def add(self, predicted: Any, label: Any) -> None:
        self.rows += 1
        if self.regression:
            error = abs(float(predicted) - float(label))
            self.total += error
            self.total_sq += error * error
        else:
            self.total += str(predicted) == str(label)

    def value(self) -> float | None:
        return self.total / self.rows if self.rows else None

    def interval(self) -> tuple[float, float] | None:
        if self.regression:
            return mean_interval(self.total, self.total_sq, self.rows)
        return wilson(self.total, self.rows)

    def figures(self) -> dict[str, Any]:
        interval = self.interval()
        return {
            "rows": self.rows,
            "value": self.value(),
            "low": None if interval is None else interval[0],
            "high": None if interval is None else interval[1],
        }


def _feature_groups(
    rows: Sequence[_Row], feature: str, drift: DriftStore, name: str, version: str | None
) -> tuple[str, list[tuple[str, list[tuple[Any, Any]]]]]:
    """The feature's kind and its segments in their natural order (bins low to high, categories by count)."""
    values = [(features.get(feature), p, y) for features, p, y in rows if feature in features]
    present = [v for v, _, _ in values if v is not None]
    numbers = [float(v) for v in present if _is_number(v)]
    kind = "numeric" if present and len(numbers) == len(present) else "categorical"
    groups: dict[tuple[int, str], list[tuple[Any, Any]]] = defaultdict(list)
    if kind == "numeric":
        edges = _edges(numbers, drift, name, version, feature)
        for value, p, y in values:
            if value is None:
                groups[(len(edges) + 1, MISSING)].append((p, y))
            else:
                index = _bin(edges, float(value))
                groups[(index, _bin_label(edges, index))].append((p, y))
    else:
        top = Counter(str(v) for v in present).most_common(TOP_CATEGORIES)
        rank = {value: i for i, (value, _) in enumerate(top)}
        for value, p, y in values:
            if value is None:
                key = (len(rank) + 1, MISSING)
            else:
                key = (rank[str(value)], str(value)) if str(value) in rank else (len(rank), "(other)")
            groups[key].append((p, y))
    return kind, [(key[1], pairs) for key, pairs in sorted(groups.items())]


def ranked_segments(
    store: Store,
    drift: DriftStore,
    name: str,
    *,
    start_ns: int,
    end_ns: int,
    version: str | None = None,
    environment: str | None = None,
    feature: str | None = None,
    max_predictions: int = MAX_PREDICTIONS,
) -> dict[str, Any] | None:
    """Every feature's segments (or ``feature``'s alone) ranked by quality gap; ``None`` when no such model."""
    found = _labelled_rows(store, name, version, environment, start_ns, end_ns, max_predictions)
    if found is None:
        return None
    rows, predictions = found
    regression = _is_regression(rows)
    overall = _Score(regression)
    for _, p, y in rows:
        overall.add(p, y)
    overall_value = overall.value()
    names = sorted({f for features, _, _ in rows for f in features}) if feature is None else [feature]
    segments: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    for column in names:
        kind, groups = _feature_groups(rows, column, drift, name, version)
        kinds[column] = kind
        if len(groups) < 2 and feature is None:
            continue  # one value: nothing to compare
        for order, (value, pairs) in enumerate(groups):
            score = _Score(regression)
            for p, y in pairs:
                score.add(p, y)
            figures = score.figures()
            gap = None
            if figures["value"] is not None and overall_value is not None:
                gap = figures["value"] - overall_value if regression else overall_value - figures["value"]
            segments.append(
                {
                    "feature": column,
                    "kind": kind,
                    "segment": value,
                    "order": order,
                    **figures,
                    "gap": gap,
                    "ranked": score.rows >= MIN_ROWS,
                }
            )
    segments.sort(key=lambda s: (not s["ranked"], -(s["gap"] or 0.0), s["feature"], s["order"]))
    return {
        "model": name,
        "version": version,
        "environment": environment,
        "window": {"start": iso(start_ns), "end": iso(end_ns)},
        "task": "regression" if regression else ("classification" if rows else None),
        "metric": "MAE" if regression else "accuracy",
        "predictions": predictions,
        "max_predictions": max_predictions,
        "rows": len(rows),
        "overall": overall.figures(),
        "min_rows": MIN_ROWS,
        "kinds": kinds,
        "segments": segments,
    }
