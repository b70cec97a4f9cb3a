"""Capturing a model's output: up to ``max_prediction_rows`` rows, by the type of the output, never raising.

Predictions are kept whole up to the row cap (features are a sample of a few rows and columns), and an output
cut at the cap is marked with the wire contract's ``truncated_rows``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._json import plain_list
from .._types import is_numpy
from ._captured import Captured, capture_failed, render, render_as_is, truncated_rows
from ._schema import unique_names
from ._tensors import tensorflow_rows

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import tensorflow as tf
    import torch

    from .._types import Array

__all__ = ["capture_prediction"]

logger = logging.getLogger("aither")


def _render_prediction(data: tuple[object, int, int]) -> object:
    # No JSON walk here: the encoder (``_json.dumps``) applies the contract's conversions.
    head, total, limit = data
    if isinstance(head, Captured):
        values = render(head)
    elif hasattr(head, "tolist") or hasattr(head, "numpy") or hasattr(head, "to_list"):
        values = _to_python(head)
    else:
        values = head
    if total <= limit:
        return values
    return truncated_rows(values, total)


def _to_python(value: object) -> object:
    if hasattr(value, "to_list"):  # polars
        return value.to_list()
    if hasattr(value, "cpu") and hasattr(value, "detach"):  # torch
        return value.detach().cpu().tolist()
    if hasattr(value, "tolist"):  # numpy, pandas
        return plain_list(value) if is_numpy(value) else value.tolist()
    if hasattr(value, "numpy"):  # tensorflow, tinygrad
        return value.numpy().tolist()
    raise TypeError(f"{type(value).__name__} has neither tolist() nor numpy()")


def capture_prediction(value: object, limit: int) -> Captured:
    """Capture up to ``limit`` rows of a model output; never raises."""
    try:
        capturer = _prediction_capturers.get(type(value))  # the hot path: a type seen before, one dict lookup
        if capturer is None:
            capturer = _prediction_capturers[type(value)] = _prediction_capturer(type(value))
        return capturer(value, limit)
    except Exception as exc:
        logger.debug("aither: capturing a prediction of type %s failed", type(value).__name__, exc_info=True)
        return capture_failed(value, exc)


def _predict_scalar(value: object, limit: int) -> Captured:
    return Captured(render_as_is, value, 1, _item_nbytes(value))


def _item_nbytes(item: object) -> int:
    """Roughly what an output value keeps alive while queued: text by its length, containers shallowly."""
    if isinstance(item, (str, bytes)):
        return 49 + len(item)
    if isinstance(item, Mapping):
        return 64 + sum(49 + len(v) if isinstance(v, (str, bytes)) else 32 for v in item.values())
    if isinstance(item, (list, tuple)):
        return 56 + 8 * len(item)
    return 32


def _items_nbytes(items: list[object]) -> int:
    """:func:`_item_nbytes` of a list, from at most 16 evenly spaced items (the cost stays bounded)."""
    count = len(items)
    if not count:
        return 64
    sampled = items[:: max(1, count // 16)][:16]
    return 64 + sum(map(_item_nbytes, sampled)) * count // len(sampled)


def _predict_sequence(value: list[object] | tuple[object, ...], limit: int) -> Captured:
    total = len(value)
    head = value[:limit]
    if head and not isinstance(head[0], (str, bytes)) and hasattr(head[0], "shape"):
        # A tuple of output tensors (logits, hidden states...): each one bounded on its own, never kept whole.
        items = [capture_prediction(item, limit) for item in head]
        return Captured(_render_captured_list, items, total, sum(item.nbytes for item in items))
    kept = list(head)
    # The items are kept by reference until the worker encodes them: count them by their size, so that long
    # texts fill the queue's byte bound as they fill memory.
    return Captured(_render_prediction, (kept, total, limit), total, _items_nbytes(kept))


def _render_captured_list(items: list[Captured]) -> object:
    return [render(item) for item in items]


def _predict_tinygrad(value: object, limit: int) -> Captured:
    # tinygrad is not thread-safe: its tensors must not be realised on the worker, and realising a lazy output
    # here would change the caller's computation. The aither-tinygrad plugin reads realised outputs itself.
    shape = [d if isinstance(d, int) else -1 for d in getattr(value, "shape", ())]
    meta = {"type": "tinygrad.Tensor", "shape": shape, "dtype": str(getattr(value, "dtype", "")), "realized": False}
    return Captured(render_as_is, {"_meta": meta}, shape[0] if shape else 1, 128)


def _predict_mapping(value: Mapping[object, object], limit: int) -> Captured:
    items = {str(key): capture_prediction(item, limit) for key, item in value.items()}
    return Captured(_render_prediction_mapping, items, 1, sum(c.nbytes for c in items.values()))


def _predict_numpy(value: Array, limit: int) -> Captured:
    if value.ndim == 0:
        return Captured(render_as_is, value[()], 1, 16)  # a numpy scalar: encoded by the contract, not item()
    total = value.shape[0]
    head = value.copy() if total <= limit else value[:limit].copy()
    return Captured(_render_prediction, (head, total, limit), total, head.nbytes + 64)


def _predict_torch(value: torch.Tensor, limit: int) -> Captured:
    if value.dim() == 0:
        return Captured(render_as_is, value.item(), 1, 16)
    total = int(value.shape[0])
    head = value.detach()[:limit].clone()  # on an accelerator: queued on the device, copied to host later
    return Captured(_render_prediction, (head, total, limit), total, head.element_size() * head.nelement() + 64)


def _predict_frame(value: pd.DataFrame | pd.Series | pl.DataFrame | pl.Series, limit: int) -> Captured:
    """pandas and polars outputs: a frame is its rows (a dict per row, by column name), a Series, Index or
    Categorical its values, a scalar (Timestamp, NA...) its value as the contract encodes it."""
    if hasattr(value, "columns") and len(getattr(value, "shape", ())) == 2:
        total = len(value)
        return Captured(_render_frame_rows, (value.head(limit), total, limit), total, 64 * min(total, limit))
    if not hasattr(value, "__len__") or not hasattr(value, "__getitem__"):
        return Captured(render_as_is, value, 1, 64)
    total = len(value)
    return Captured(_render_prediction, (value[:limit], total, limit), total, 64 * min(total, limit))


def _render_frame_rows(data: tuple[pd.DataFrame | pl.DataFrame, int, int]) -> object:
    head, total, limit = data
    if hasattr(head, "itertuples"):  # pandas: every column by a name of its own, even where names repeat
        names = unique_names(head.columns)
        values: list[dict[str, object]] = [
            dict(zip(names, row, strict=True)) for row in head.itertuples(index=False, name=None)
        ]
    else:  # polars: names are unique already
        values = head.rows(named=True)
    return values if total <= limit else truncated_rows(values, total)


def _predict_tensorflow(value: tf.Tensor, limit: int) -> Captured:
    if len(value.shape) == 0:
        return Captured(render_as_is, value.numpy().item(), 1, 16)
    total = int(value.shape[0])
    head = tensorflow_rows(value, limit).copy()
    return Captured(_render_prediction, (head, total, limit), total, head.nbytes + 64)


def _predict_other(value: object, limit: int) -> Captured:
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "__getitem__"):
        if len(shape) == 0:
            return Captured(render_as_is, _to_python(value), 1, 16)
        total = int(shape[0])
        return Captured(_render_prediction, (value[:limit], total, limit), total, 256)
    return Captured(_render_prediction, (value, 1, limit), 1, 256)


# Found by the output's type, so each capturer takes the type it was registered for.
_PredictionCapturer = Callable[[Any, int], Captured]
_prediction_capturers: dict[type, _PredictionCapturer] = {}
_PREDICTION_BY_ROOT: dict[str, _PredictionCapturer] = {
    "numpy": _predict_numpy,
    "torch": _predict_torch,
    "pandas": _predict_frame,
    "polars": _predict_frame,
    "tensorflow": _predict_tensorflow,
    "tinygrad": _predict_tinygrad,
}


def _prediction_capturer(cls: type) -> _PredictionCapturer:
    if issubclass(cls, (bool, int, float, str, type(None))):
        return _predict_scalar
    if issubclass(cls, (list, tuple)):
        return _predict_sequence
    if issubclass(cls, Mapping):
        return _predict_mapping
    for klass in cls.__mro__:
        found = _PREDICTION_BY_ROOT.get(klass.__module__.partition(".")[0])
        if found is not None:
            return found
    return _predict_other


def _render_prediction_mapping(items: dict[str, Captured]) -> object:
    return {key: render(captured) for key, captured in items.items()}
