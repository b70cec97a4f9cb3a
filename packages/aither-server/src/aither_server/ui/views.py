"""What the pages beyond the model page show: where the model is worst (segments), a feature's data quality, a
prediction's sampled rows as a table."""

from __future__ import annotations

import json
from typing import Any

from aither_server.drift.query import NotFound, data_quality, drift
from aither_server.drift.sketches import _one_value
from aither_server.drift.store import DriftStore
from aither_server.query.segments import ranked_segments
from aither_server.store.database import Store
from aither_server.ui.diagnose import flag_data_quality, segments_view
from aither_server.ui.window import Window

__all__ = ["SEGMENT_PREDICTIONS", "feature_quality", "labels_in_order", "sampled_table", "segments_page", "short_value"]

#: Labelled predictions the segments page reads (the model page reads fewer, for its top few).
SEGMENT_PREDICTIONS = 3000


def segments_page(
    store: Store,
    drift_store: DriftStore,
    model: str,
    *,
    feature: str | None,
    version: str | None,
    environment: str | None,
    period: Window,
) -> dict[str, Any] | None:
    """Every feature's segments ranked by gap (or one feature's, in their natural order), with each feature's
    drift status over the same window; ``None`` when no such model."""
    found = ranked_segments(
        store,
        drift_store,
        model,
        start_ns=period.start_ns,
        end_ns=period.end_ns,
        version=version,
        environment=environment,
        feature=feature,
        max_predictions=SEGMENT_PREDICTIONS,
    )
    view = segments_view(found, None)
    if view is None:
        return None
    if feature is not None:
        view["rows"].sort(key=lambda s: s["order"])
    try:
        answer = drift(
            drift_store, model, version=version, environment=environment, window=(period.start_ns, period.end_ns)
        )
        view["drift"] = {f["name"]: f for f in answer["features"]}
    except NotFound:
        view["drift"] = {}
    return view


def feature_quality(
    drift_store: DriftStore, model: str, feature: str, version: str | None, environment: str | None, period: Window
) -> dict[str, Any] | None:
    """One column's data quality over the window (nulls, out of range, unseen), flagged past the thresholds."""
    try:
        answer = data_quality(
            drift_store, model, version=version, environment=environment, window=(period.start_ns, period.end_ns)
        )
    except NotFound:
        return None
    flag_data_quality(answer)
    return next((f for f in answer["features"] if f["name"] == feature), None)


def short_value(value: Any, limit: int = 48) -> str:
    """A value in a table cell: JSON, compact, cut at ``limit`` characters."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _row_order(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)


def sampled_table(prediction: dict[str, Any]) -> dict[str, Any]:
    """A prediction's sampled rows as a table: one row per sampled row, its features' columns then its output
    and label side by side."""
    rows = prediction.get("sampled_rows") or []
    columns: list[str] = []
    for row in rows:
        if isinstance(row["features"], dict):
            columns += [c for c in row["features"] if c not in columns]
    body = []
    for row in rows:
        features = row["features"] if isinstance(row["features"], dict) else {}
        label = row["label"]
        body.append(
            {
                "row": row["row"],
                "cells": [features.get(c) for c in columns],
                "has": [c in features for c in columns],
                "prediction": row["prediction"],
                "label": label,
                "right": None if label is None else _same_class(row["prediction"], label),
            }
        )
    return {"columns": columns, "rows": body}


def labels_in_order(labels: dict[str, Any]) -> list[tuple[str, Any]]:
    """A prediction's labels by row number (0, 1, 2, ... 10), not in string order (0, 1, 10, 2)."""
    return [(key, labels[key]) for key in sorted(labels, key=_row_order)]


def _same_class(predicted: Any, label: Any) -> bool | None:
    """Whether a row's output names its label's class (a probability row by its arg-max); ``None`` for numbers."""
    predicted = _one_value(predicted)
    if isinstance(predicted, float) and not predicted.is_integer():
        return None
    if isinstance(label, float) and not label.is_integer():
        return None
    return str(predicted) == str(label) or (
        isinstance(predicted, (int, float)) and isinstance(label, (int, float)) and predicted == label
    )
