"""Direct loss estimation (DLE) of a regressor's MAE and RMSE from its sampled rows' features and predictions.

The SDK fits the loss model on the reference (``aither._loss_model``): an additive model over each numeric
column's reference quantile bins and the prediction's, predicting a row's absolute and squared error. Here it is
only applied. A slice's estimated MAE is the weighted mean of its rows' predicted absolute errors, its RMSE the
root of the mean predicted squared error. Only sampled rows carry features, so only they are estimated: each
stands for ``n_rows / sampled rows`` rows of its call, times ``1 / ml.sample_rate``. A column a row lacks (a
rotating column window, a column the privacy rules drop) contributes the reference's average: the estimate then
loses what that column would tell, so ``wrap(..., sample_columns=None)`` (every column) serves it best.

Statistics vector: ``[rows, sum w, sum w^2, sum w L_abs, sum w L_sq]``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from aither_server.estimate.calibration import Floats, InvalidEstimator
from aither_server.estimate.figures import Figure, RegressorEstimate

__all__ = ["LENGTH", "LossModel", "estimate", "parse_loss_model", "statistics"]

LENGTH = 5
_MAX_COLUMNS = 200
_MAX_BINS = 64


@dataclasses.dataclass(frozen=True)
class LossColumn:
    name: str
    edges: Floats
    coefficients: Floats
    """(bins, 2): the absolute and squared error's coefficient of each bin."""
    fill: Floats


@dataclasses.dataclass(frozen=True)
class LossModel:
    created_ns: int
    intercept: Floats
    columns: list[LossColumn]
    prediction: LossColumn
    method: str
    reference: dict[str, object]

    def losses(self, rows: list[tuple[dict[str, object], float]]) -> Floats:
        """Predicted (absolute, squared) error of each (features, prediction) row, never below zero."""
        out = np.tile(self.intercept, (len(rows), 1))
        predictions = np.asarray([p for _, p in rows], dtype=np.float64)
        out += _contribution(self.prediction, predictions)
        for column in self.columns:
            values = np.asarray([_number(features.get(column.name)) for features, _ in rows], dtype=np.float64)
            out += _contribution(column, values)
        return np.clip(out, 0.0, None)


def _number(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan


def _contribution(column: LossColumn, values: Floats) -> Floats:
    index = np.searchsorted(column.edges, np.nan_to_num(values, nan=0.0), side="right")
    out = column.coefficients[index]
    missing = ~np.isfinite(values)
    out[missing] = column.fill
    return out


def _floats(value: object, where: str, size: int | None = None) -> Floats:
    if not isinstance(value, list) or len(value) > _MAX_BINS or (size is not None and len(value) != size):
        raise InvalidEstimator(f"{where} must be a list of {size if size is not None else 'at most 64'} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise InvalidEstimator(f"{where} must hold finite numbers")
    return np.asarray(value, dtype=np.float64)


def _column(item: object, where: str) -> LossColumn:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise InvalidEstimator(f"{where} must be an object with a name")
    edges = _floats(item.get("edges"), f"{where}.edges")
    if np.any(np.diff(edges) < 0):
        raise InvalidEstimator(f"{where}.edges must be ascending")
    mae = _floats(item.get("mae"), f"{where}.mae", len(edges) + 1)
    mse = _floats(item.get("mse"), f"{where}.mse", len(edges) + 1)
    fill = _floats(item.get("fill"), f"{where}.fill", 2)
    return LossColumn(item["name"], edges, np.column_stack([mae, mse]), fill)


def parse_loss_model(body: dict[str, object], created_ns: int = 0) -> LossModel:
    """The loss model of a JSON body (as ``log_reference`` sends it); :class:`InvalidEstimator` when malformed."""
    columns = body.get("columns")
    if not isinstance(columns, list) or len(columns) > _MAX_COLUMNS:
        raise InvalidEstimator(f"columns must be a list of at most {_MAX_COLUMNS} column models")
    reference = body.get("reference")
    method = body.get("method")
    return LossModel(
        created_ns=created_ns,
        intercept=_floats(body.get("intercept"), "intercept", 2),
        columns=[_column(c, f"columns[{i}]") for i, c in enumerate(columns)],
        prediction=_column(body.get("prediction"), "prediction"),
        method=method if isinstance(method, str) else "additive-bins",
        reference=reference if isinstance(reference, dict) else {},
    )


def statistics(model: LossModel, rows: list[tuple[dict[str, object], float]], weights: Floats) -> Floats:
    out = np.zeros(LENGTH)
    if not rows:
        return out
    losses = model.losses(rows)
    out[0] = len(rows)
    out[1] = weights.sum()
    out[2] = (weights * weights).sum()
    out[3] = float(weights @ losses[:, 0])
    out[4] = float(weights @ losses[:, 1])
    return out


def _spread(reference: dict[str, object], key: str) -> float:
    """A spread of the reference's errors (0 when the reference did not send it)."""
    value = reference.get(key) or 0.0
    if not isinstance(value, (int, float, str)):
        raise TypeError(f"the reference's {key} is not a number")
    return float(value)


def _figure(value: float, error: float) -> Figure:
    return {"value": value, "sampling_error": error, "band": [max(0.0, value - 3 * error), value + 3 * error]}


def estimate(model: LossModel, stats: Floats) -> RegressorEstimate | None:
    """Estimated MAE and RMSE of a slice's sums, with sampling errors from the reference's spread of errors."""
    rows, total, total2, abs_sum, sq_sum = (float(v) for v in stats[:LENGTH])
    if rows <= 0 or total <= 0:
        return None
    n_eff = total * total / total2
    mae, mse = abs_sum / total, sq_sum / total
    rmse = math.sqrt(mse)
    abs_std = _spread(model.reference, "abs_error_std")
    sq_std = _spread(model.reference, "squared_error_std")
    mse_error = sq_std / math.sqrt(n_eff)
    return {
        "rows": int(rows),
        "weighted_rows": total,
        "mae": _figure(mae, abs_std / math.sqrt(n_eff)),
        "rmse": _figure(rmse, mse_error / (2 * rmse) if rmse > 0 else 0.0),
    }
