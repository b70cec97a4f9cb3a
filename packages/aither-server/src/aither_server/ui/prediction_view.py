"""A prediction as the pages show it: its sampled rows as a table (features, output and label side by side,
right or wrong), its labels in row order, and values cut to fit a table cell."""

from __future__ import annotations

import json
from typing import TypedDict

from aither.profile import output_value
from aither_server.query.predictions import PredictionOut

__all__ = ["SampledTable", "TableRow", "labels_in_order", "sampled_table", "short_value"]


class TableRow(TypedDict):
    row: int
    cells: list[object]
    has: list[bool]
    """Whether the row has each column (a missing one is not a null)."""
    prediction: object
    label: object
    right: bool | None


class SampledTable(TypedDict):
    columns: list[str]
    rows: list[TableRow]


def short_value(value: object, limit: int = 48) -> str:
    """A value in a table cell: JSON, compact, cut at ``limit`` characters."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _row_order(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)


def sampled_table(prediction: PredictionOut) -> SampledTable:
    """A prediction's sampled rows as a table: one row per sampled row, its features' columns then its output
    and label side by side."""
    rows = prediction["sampled_rows"]
    columns: list[str] = []
    for row in rows:
        if isinstance(row["features"], dict):
            columns += [c for c in row["features"] if c not in columns]
    body: list[TableRow] = []
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


def labels_in_order(labels: dict[str, object]) -> list[tuple[str, object]]:
    """A prediction's labels by row number (0, 1, 2, ... 10), not in string order (0, 1, 10, 2)."""
    return [(key, labels[key]) for key in sorted(labels, key=_row_order)]


def _same_class(predicted: object, label: object) -> bool | None:
    """Whether a row's output names its label's class (a probability row by its arg-max); ``None`` for numbers."""
    predicted = output_value(predicted)
    if isinstance(predicted, float) and not predicted.is_integer():
        return None
    if isinstance(label, float) and not label.is_integer():
        return None
    return str(predicted) == str(label) or (
        isinstance(predicted, (int, float)) and isinstance(label, (int, float)) and predicted == label
    )
