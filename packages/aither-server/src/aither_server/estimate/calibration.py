"""A classifier's estimator as a reference sent it: the classes, each class's calibration map and score bins.

The SDK (``aither._calibration``) fits the maps on the reference, where the labels are known: isotonic
regression of "the row is of class k" on the model's score of class k, sent as the knots of a piecewise-linear
map (``x`` ascending scores, ``y`` calibrated probabilities). Here a map is only applied (``numpy.interp``).
Binary models have one map, of the second class's score; models of three or more classes one per class, and a
row's calibrated probabilities are normalised to sum to one. ``edges`` are the reference's score quantiles per
scored class: the bins of the ROC AUC's sufficient statistics (``estimate/cbpe.py``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from aither_server.model.records import value_key

__all__ = ["Estimator", "InvalidEstimator", "MAX_CLASSES", "MAX_KNOTS", "parse_estimator"]

#: Classes a calibrated classifier may have: its statistics hold a K x K matrix and K score histograms.
MAX_CLASSES = 50
#: Knots of one calibration map, and score bin edges of one class.
MAX_KNOTS = 1024

Floats = npt.NDArray[np.float64]


class InvalidEstimator(ValueError):
    """An estimator body that does not hold what the server needs."""


@dataclasses.dataclass(frozen=True)
class Estimator:
    """A classifier's calibration, as the server applies it."""

    created_ns: int
    classes: list[str]
    """The label key (``model.records.value_key``) of each score column, in column order."""
    maps: list[tuple[Floats, Floats]]
    edges: list[Floats]
    method: str
    reference: dict[str, object]

    @property
    def width(self) -> int:
        return len(self.classes)

    def calibrated(self, scores: Floats) -> Floats:
        """Calibrated class probabilities (n x K) of raw scores (n x K)."""
        if self.width == 2:
            x, y = self.maps[0]
            p1 = np.clip(np.interp(scores[:, 1], x, y), 0.0, 1.0)
            return np.column_stack([1.0 - p1, p1])
        out = np.empty_like(scores)
        for k, (x, y) in enumerate(self.maps):
            out[:, k] = np.clip(np.interp(scores[:, k], x, y), 0.0, 1.0)
        total = out.sum(axis=1, keepdims=True)
        # A row every map put at 0 carries no information: uniform over the classes.
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / self.width)

    def scored(self) -> list[int]:
        """The score columns whose ROC AUC is estimated: the second of two, else each (one-vs-rest)."""
        return [1] if self.width == 2 else list(range(self.width))


def _floats(value: object, where: str, *, ascending: bool, unit: bool) -> Floats:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_KNOTS:
        raise InvalidEstimator(f"{where} must be a list of 1 to {MAX_KNOTS} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise InvalidEstimator(f"{where} must hold finite numbers")
    array = np.asarray(value, dtype=np.float64)
    if ascending and np.any(np.diff(array) < 0):
        raise InvalidEstimator(f"{where} must be ascending")
    if unit and (array.min() < 0 or array.max() > 1):
        raise InvalidEstimator(f"{where} must lie in [0, 1]")
    return array


def parse_estimator(body: object, created_ns: int = 0) -> Estimator:
    """The estimator of a JSON body (as ``log_reference`` sends it); :class:`InvalidEstimator` when malformed."""
    if not isinstance(body, dict):
        raise InvalidEstimator("the estimator must be an object")
    if body.get("task") != "classification":
        raise InvalidEstimator("task must be 'classification'")
    classes = body.get("classes")
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES:
        raise InvalidEstimator(f"classes must list 2 to {MAX_CLASSES} class labels")
    keys = []
    for value in classes:
        key = value_key(value)
        if key.key is None or isinstance(value, (list, dict)):
            raise InvalidEstimator("each class must be a string, an integer or a boolean")
        keys.append(key.key)
    if len(set(keys)) != len(keys):
        raise InvalidEstimator("classes must be distinct")
    scored = 1 if len(keys) == 2 else len(keys)
    maps_in, edges_in = body.get("calibration"), body.get("edges")
    if not isinstance(maps_in, list) or len(maps_in) != scored:
        raise InvalidEstimator(f"calibration must hold {scored} maps (one per scored class)")
    if not isinstance(edges_in, list) or len(edges_in) != scored:
        raise InvalidEstimator(f"edges must hold {scored} lists (one per scored class)")
    maps = []
    for i, item in enumerate(maps_in):
        if not isinstance(item, dict):
            raise InvalidEstimator(f"calibration[{i}] must be an object with x and y")
        x = _floats(item.get("x"), f"calibration[{i}].x", ascending=True, unit=False)
        y = _floats(item.get("y"), f"calibration[{i}].y", ascending=False, unit=True)
        if len(x) != len(y):
            raise InvalidEstimator(f"calibration[{i}].x and .y must have the same length")
        maps.append((x, y))
    edges = [_floats(e, f"edges[{i}]", ascending=True, unit=False) for i, e in enumerate(edges_in)]
    reference = body.get("reference")
    method = body.get("method")
    return Estimator(
        created_ns=created_ns,
        classes=keys,
        maps=maps,
        edges=edges,
        method=method if isinstance(method, str) else "isotonic",
        reference=reference if isinstance(reference, dict) else {},
    )
