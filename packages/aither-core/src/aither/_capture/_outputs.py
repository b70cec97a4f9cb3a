"""What a network's output means to the quality metrics: class probabilities, or one number per row.

torch, Keras and tinygrad models return raw arrays, and ``ml.method`` (``forward``, ``predict``) does not say
whether they are logits, probabilities or regression values. For those frameworks, and for any model wrapped
with ``task=``, the worker rewrites the rendered output (never the caller's thread) into the form the server
scores (docs/wire-contract.md, "ml.prediction"):

* rows of two or more numbers (batch, classes) are class scores: ``"probabilities"`` when every row is
  non-negative and sums to 1, else ``"logits"``. The values are sent as the model returned them, as
  ``{"values": rows, "_meta": {"output": ..., "total_rows": N, "truncated": bool}}``; the server scores them
  like ``predict_proba`` (arg-max class, ROC AUC), through a softmax for logits;
* with ``task="classification"``, one number per row is the probability of class 1 (a sigmoid output), or
  its logit when any is outside [0, 1]: the row becomes ``[1 - p, p]`` (``"probabilities"``) or ``[0, v]``
  (``"logits"``);
* with ``task="regression"``, one number per row (``(batch,)`` or ``(batch, 1)``) is sent as
  ``{"values": numbers, "_meta": {"output": "regression", ...}}``: every row is a regression value, ``3.0``
  too; ``task="regression"`` also keeps rows of several numbers from being read as class scores;
* anything else (a dict or tuple of tensors, a lazy tinygrad output described by its shape) is left as it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ._captured import Captured, render

__all__ = ["TASKS", "interpreted_output", "output_as_prediction"]

#: The values of ``wrap(..., task=)``.
TASKS = ("classification", "regression")
#: How far from 1 a row of probabilities may sum (float32 outputs of a softmax).
_TOLERANCE = 1e-3


def interpreted_output(prediction: Captured, task: str | None) -> Captured:
    """``prediction`` rendered as :func:`output_as_prediction` says (a tuple more on the caller's thread)."""
    return Captured(_render_interpreted, (prediction, task), prediction.rows, prediction.nbytes)


def _render_interpreted(data: tuple[Captured, str | None]) -> object:
    prediction, task = data
    return output_as_prediction(render(prediction), task)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def output_as_prediction(value: object, task: str | None) -> object:
    """A rendered output (JSON rows, or the contract's ``{"values", "_meta"}``) as the prediction to score."""
    meta: dict[str, object] = {}
    rows = value
    if isinstance(value, Mapping):
        found = value.get("_meta")
        if not isinstance(found, Mapping) or not isinstance(value.get("values"), list) or "output" in found:
            return value
        meta = dict(found)
        rows = value["values"]
    if not isinstance(rows, list) or not rows:
        return value
    total = meta.get("total_rows", len(rows))
    first = rows[0]
    if isinstance(first, list) and len(first) == 1 and all(isinstance(r, list) and len(r) == 1 for r in rows):
        rows = [r[0] for r in rows]  # (batch, 1): one number per row
        first = rows[0]
    if isinstance(first, list):
        if task == "regression" or len(first) < 2:
            return value
        if not all(isinstance(r, list) and len(r) == len(first) and all(map(_number, r)) for r in rows):
            return value
        return _tagged(rows, "probabilities" if _are_probabilities(rows) else "logits", total, meta)
    if not all(map(_number, rows)):
        return value
    if task == "regression":
        return _tagged([float(v) for v in rows], "regression", total, meta)
    if task == "classification":
        if all(isinstance(v, int) for v in rows):
            return value  # classes already
        if any(v < 0 or v > 1 for v in rows):  # one logit per row: the logits of (class 0, class 1) are (0, v)
            return _tagged([[0.0, float(v)] for v in rows], "logits", total, meta)
        return _tagged([[1.0 - v, float(v)] for v in rows], "probabilities", total, meta)
    return value


def _tagged(values: Sequence[object], output: str, total: object, meta: Mapping[str, object]) -> dict[str, object]:
    return {
        "values": values,
        "_meta": {"output": output, "total_rows": total, "truncated": bool(meta.get("truncated"))},
    }


def _are_probabilities(rows: list[list[float]]) -> bool:
    return all(min(r) >= 0 and abs(sum(r) - 1.0) <= _TOLERANCE for r in rows)
