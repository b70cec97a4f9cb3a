"""What ``aither.log_reference`` teaches the server about a classifier's scores, so it can estimate the
model's performance before labels arrive (docs/estimated-performance.md).

On the reference, where labels are known, each class's score is calibrated by isotonic regression: the
probability that a row is of class k, as a non-decreasing function of the model's score of class k, fitted by
pool-adjacent-violators. Isotonic rather than Platt scaling: it corrects any monotone miscalibration (a boosted
model's S-shaped one, a network's over-confidence) where Platt assumes a sigmoid of the score, and the
reference sets are large enough (hundreds of rows and more) for its steps; it is what NannyML's CBPE uses too.
The map goes to the server as at most :data:`MAX_KNOTS` knots of a piecewise-linear function; with it go the
reference's score quantiles per class (the bins of the ROC AUC's statistics) and the classes in column order.
No raw row leaves the process: only these maps, quantiles and the reference's own figures.

Scores are read as the SDK reads a live output (``_capture/_outputs.py``): rows of K numbers are probabilities
when each row is non-negative and sums to one, else logits (a softmax); one number per row is the second
class's probability when in [0, 1], else its logit. numpy is imported when this runs, never at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._types import Array, FloatArray

__all__ = ["MAX_KNOTS", "QUANTILES", "classifier_estimator", "score_matrix"]

#: Knots of one calibration map sent to the server.
MAX_KNOTS = 1000
#: Score quantiles per class: the ROC AUC's bins (each bin's pairs count as ties).
QUANTILES = 200
#: Classes a calibrated classifier may have (the server's limit).
MAX_CLASSES = 50
_TOLERANCE = 1e-3


def score_matrix(predictions: object) -> FloatArray | None:
    """Class probabilities (n x K, float64) of a model's scores, or ``None`` when they are not scores (class
    labels, texts, regression values)."""
    import numpy as np

    from ._capture._columns import as_array

    try:
        array = np.asarray(as_array(predictions), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 1:
        if not len(array) or not np.all(np.isfinite(array)) or np.all(array == np.round(array)):
            return None  # class labels, not scores
        if array.min() < 0 or array.max() > 1:
            array = 1.0 / (1.0 + np.exp(-array))
        return np.column_stack([1.0 - array, array])
    if array.ndim != 2 or array.shape[1] < 2 or not len(array) or not np.all(np.isfinite(array)):
        return None
    if array.min() >= 0 and np.all(np.abs(array.sum(axis=1) - 1.0) <= _TOLERANCE):
        return array
    shifted = np.exp(array - array.max(axis=1, keepdims=True))
    out: FloatArray = shifted / shifted.sum(axis=1, keepdims=True)
    return out


def isotonic(x: FloatArray, y: FloatArray) -> tuple[list[float], list[float]]:
    """Knots (ascending x, fitted y) of the isotonic regression of ``y`` (0 or 1) on ``x``: pool adjacent
    violators over the distinct scores, each block kept by its first and last score (as scikit-learn does)."""
    import numpy as np

    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    distinct, starts = np.unique(xs, return_index=True)
    sums = np.add.reduceat(ys, starts)
    counts = np.diff(np.append(starts, len(xs))).astype(np.float64)
    # Blocks as parallel lists: (value sum, weight, first distinct index, last distinct index).
    total: list[float] = []
    weight: list[float] = []
    lo: list[int] = []
    hi: list[int] = []
    for i in range(len(distinct)):
        total.append(float(sums[i]))
        weight.append(float(counts[i]))
        lo.append(i)
        hi.append(i)
        while len(total) > 1 and total[-2] / weight[-2] >= total[-1] / weight[-1]:
            merged_total, merged_weight, merged_hi = total.pop(), weight.pop(), hi.pop()
            lo.pop()
            total[-1] += merged_total
            weight[-1] += merged_weight
            hi[-1] = merged_hi
    knots_x: list[float] = []
    knots_y: list[float] = []
    for t, w, a, b in zip(total, weight, lo, hi, strict=True):
        for index in (a, b) if b > a else (a,):
            knots_x.append(float(distinct[index]))
            knots_y.append(t / w)
    if len(knots_x) > MAX_KNOTS:
        keep = np.unique(np.linspace(0, len(knots_x) - 1, MAX_KNOTS).round().astype(int))
        knots_x = [knots_x[i] for i in keep]
        knots_y = [knots_y[i] for i in keep]
    return knots_x, knots_y


def _classes(labels: Array, width: int) -> list[object] | None:
    """The class of each score column, as scikit-learn orders ``classes_`` (sorted), or column indexes when
    the labels are integers below the width; ``None`` when neither fits."""
    values: list[object] = sorted({v.item() if hasattr(v, "item") else v for v in labels}, key=_class_order)
    if len(values) == width:
        return values
    if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < width for v in values):
        return list(range(width))
    return None


def _class_order(value: object) -> tuple[str, float | str]:
    # By type, then by value: numbers as numbers, anything else (texts) by its text.
    return (str(type(value)), value if isinstance(value, (int, float)) else str(value))


def classifier_estimator(predictions: object, labels: object) -> dict[str, object] | None:
    """The estimator body of a classifier's reference scores and labels, or ``None`` when the predictions are
    not scores or the labels do not name their columns."""
    import numpy as np

    from ._capture._columns import as_array

    scores = score_matrix(predictions)
    if scores is None:
        return None
    truth = np.asarray(as_array(labels)).reshape(-1)
    width = scores.shape[1]
    if len(truth) != len(scores) or width > MAX_CLASSES:
        return None
    classes = _classes(truth, width)
    if classes is None:
        return None
    index = {c: i for i, c in enumerate(classes)}
    columns = np.asarray([index.get(v.item() if hasattr(v, "item") else v, -1) for v in truth])
    scored = [1] if width == 2 else list(range(width))
    maps, edges = [], []
    for k in scored:
        x, y = isotonic(scores[:, k], (columns == k).astype(np.float64))
        maps.append({"x": x, "y": y})
        quantiles = np.quantile(scores[:, k], np.arange(1, QUANTILES) / QUANTILES)
        edges.append([float(q) for q in np.unique(quantiles)])
    predicted = scores.argmax(axis=1)
    return {
        "task": "classification",
        "method": "isotonic",
        "classes": classes,
        "calibration": maps,
        "edges": edges,
        "reference": {"rows": len(scores), "accuracy": float(np.mean(predicted == columns))},
    }
