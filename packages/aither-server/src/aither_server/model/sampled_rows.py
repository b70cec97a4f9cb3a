"""The sampled rows of a prediction, each joined to its row of the output and its label by ``_meta.rows``.

A span's feature sample holds a few rows drawn at random from the batch; ``_meta.rows[k]`` is the batch row of
sample row ``k``, so its prediction is row ``_meta.rows[k]`` of ``ml.prediction`` and its label is the one
logged for that row (docs/wire-contract.md, "Labels and rows").
"""

from __future__ import annotations

from typing import Any

__all__ = ["sampled_rows"]


def sampled_rows(features: Any, prediction: Any, labels: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"row", "features", "prediction", "label"}]`` for each sampled row; ``[]`` when the sample has no
    row indices (a tensor, ``features_fn``, an older SDK)."""
    if not isinstance(features, dict):
        return []
    meta, sample = features.get("_meta"), features.get("sample")
    rows = meta.get("rows") if isinstance(meta, dict) else None
    if not isinstance(rows, list) or not isinstance(sample, list) or len(rows) != len(sample):
        return []
    values = prediction.get("values") if isinstance(prediction, dict) else prediction
    out = []
    for index, record in zip(rows, sample, strict=True):
        if not isinstance(index, int) or isinstance(index, bool):
            return []
        if isinstance(values, list):
            output = values[index] if 0 <= index < len(values) else None
        else:
            output = values if index == 0 else None
        out.append({"row": index, "features": record, "prediction": output, "label": labels.get(str(index))})
    return out
