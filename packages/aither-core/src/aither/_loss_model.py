"""The loss model ``aither.log_reference`` fits for a regressor, so the server can estimate its MAE and RMSE
before labels arrive (direct loss estimation, DLE; docs/estimated-performance.md).

Fitted here, on the client, because the reference's rows must not leave the process and the server has no
learning library: a small additive model in numpy. Each numeric input column and the prediction itself are cut
at their reference quantiles (at most :data:`BINS` bins), and two ridge regressions on the bins' indicators
predict a row's absolute error and squared error. What is sent: per column its bin edges, one coefficient per
bin and target, and the fill used when a live row lacks the column (the reference's average contribution), so
no raw row leaves. Additive in the columns: it catches where the model errs more (a range of one input, large
predictions), not interactions; the reference's own errors give its sampling error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ._types import is_pandas_frame, is_polars_frame

if TYPE_CHECKING:
    from ._types import FloatArray

__all__ = ["BINS", "PREDICTION", "numeric_columns", "regressor_estimator"]

#: Bins per column (quantiles of the reference).
BINS = 16
#: The prediction's name among the columns (no input column is named so: the wire's names are text).
PREDICTION = "__prediction__"
#: Ridge penalty, in rows: a bin's coefficient is pulled toward the average as if it had this many more rows
#: with the average error, so a small reference's sparse bins do not chase its noise.
_RIDGE = 20.0
#: Reference rows per bin of a column at least.
_ROWS_PER_BIN = 40
#: Columns a loss model uses at most.
MAX_COLUMNS = 200


def numeric_columns(data: object, feature_names: Sequence[str] | None = None) -> dict[str, FloatArray]:
    """The numeric columns of a table, named as the SDK names a live sample's columns; others are left out."""
    import numpy as np

    from ._capture._columns import as_array, input_columns, named

    columns: Mapping[str, object]
    if is_pandas_frame(data) or is_polars_frame(data):
        columns = {str(c): data[c].to_numpy() for c in data.columns}
    elif isinstance(data, Mapping):
        columns = {str(c): v for c, v in data.items()}
    else:
        array = as_array(data)
        if array.ndim != 2:
            return {}
        columns = named(input_columns(array), feature_names)
    out = {}
    for name, values in columns.items():
        try:
            array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            continue
        out[name] = array
    return dict(list(out.items())[:MAX_COLUMNS])


def _edges(values: FloatArray) -> FloatArray:
    import numpy as np

    finite = values[np.isfinite(values)]
    bins = max(2, min(BINS, len(finite) // _ROWS_PER_BIN))
    if not len(finite):
        return np.zeros(0)
    return np.unique(np.quantile(finite, np.arange(1, bins) / bins))


def regressor_estimator(
    data: object, predictions: object, labels: object, feature_names: Sequence[str] | None = None
) -> dict[str, object] | None:
    """The loss model of a regressor's reference, or ``None`` when the predictions are not one number per row
    or the rows do not line up."""
    import numpy as np

    from ._capture._columns import as_array

    try:
        predicted = np.asarray(as_array(predictions), dtype=np.float64).reshape(-1)
        truth = np.asarray(as_array(labels), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    n = len(predicted)
    if n < 20 or len(truth) != n or not np.all(np.isfinite(predicted)) or not np.all(np.isfinite(truth)):
        return None
    columns = {name: v for name, v in numeric_columns(data, feature_names).items() if len(v) == n}
    columns[PREDICTION] = predicted
    errors = predicted - truth
    targets = np.column_stack([np.abs(errors), errors * errors])
    blocks, parts = [], []
    for name, values in columns.items():
        edges = _edges(values)
        index = np.searchsorted(edges, np.nan_to_num(values, nan=np.nanmedian(values)), side="right")
        indicators = np.zeros((n, len(edges)))
        rows = np.flatnonzero(index > 0)
        indicators[rows, index[rows] - 1] = 1.0
        blocks.append(indicators)
        parts.append((name, edges, index))
    design = np.column_stack([np.ones(n), *blocks])
    penalty = _RIDGE * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    coefficients = np.linalg.solve(design.T @ design + penalty, design.T @ targets)
    out_columns, at = [], 1
    for name, edges, index in parts:
        # Bin 0 is the baseline (coefficient 0); a missing value gets the reference's average contribution.
        per_bin = np.vstack([np.zeros((1, 2)), coefficients[at : at + len(edges)]])
        at += len(edges)
        fill = per_bin[index].mean(axis=0)
        out_columns.append(
            {
                "name": name,
                "edges": [float(e) for e in edges],
                "mae": [float(v) for v in per_bin[:, 0]],
                "mse": [float(v) for v in per_bin[:, 1]],
                "fill": [float(fill[0]), float(fill[1])],
            }
        )
    mae, mse = float(targets[:, 0].mean()), float(targets[:, 1].mean())
    return {
        "task": "regression",
        "method": "additive-bins",
        "intercept": [float(coefficients[0, 0]), float(coefficients[0, 1])],
        "columns": [c for c in out_columns if c["name"] != PREDICTION],
        "prediction": next(c for c in out_columns if c["name"] == PREDICTION),
        "reference": {
            "rows": n,
            "mae": mae,
            "rmse": float(np.sqrt(mse)),
            "abs_error_std": float(targets[:, 0].std()),
            "squared_error_std": float(targets[:, 1].std()),
        },
    }
