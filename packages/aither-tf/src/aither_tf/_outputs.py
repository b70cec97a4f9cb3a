"""What ``tracked.predict`` and the hand-placed callback both need: bounded copies of numpy outputs, and inputs
that cannot be sampled described by their type and rows. numpy only: importing this module imports no keras."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aither.integrations import Captured, bounded_prediction, render_as_is, truncated_rows

__all__ = ["capture_returned", "is_sampleable", "render_structured", "unseen_features"]


def _to_python(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    return value


def render_structured(data: tuple[object, int, int]) -> object:
    """A dict or list of outputs: ``{"values": {...}, "_meta"}`` when rows were left out (rows, not items)."""
    head, kept, total = data
    values = _to_python(head)
    if total <= kept:
        return values
    return truncated_rows(values, total)


def _rows(leaf: object) -> int:
    shape = getattr(leaf, "shape", None)
    return int(shape[0]) if shape else 1


def _head(value: object, limit: int, depth: int = 0) -> object:
    """The first ``limit`` rows of every array in a (nested) dict/list/tuple, copied: the caller owns the
    returned arrays and may write into them before the worker renders the span."""
    if isinstance(value, np.ndarray):
        return value[:limit].copy() if value.ndim else value.item()
    if depth < 8 and isinstance(value, Mapping):
        return {k: _head(v, limit, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, (list, tuple)):
        return [_head(v, limit, depth + 1) for v in value]
    return value


def _first_leaf(value: object, depth: int = 0) -> object:
    if depth < 8 and isinstance(value, Mapping):
        return _first_leaf(next(iter(value.values())), depth + 1) if value else None
    if depth < 8 and isinstance(value, (list, tuple)):
        return _first_leaf(value[0], depth + 1) if value else None
    return value


def _nbytes(value: object) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, Mapping):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_nbytes(v) for v in value)
    return 16


def capture_returned(output: object, limit: int) -> Captured:
    """``model.predict``'s return value (numpy, or a dict/list of numpy arrays), bounded to ``limit`` rows.

    Rendered exactly as the callback renders the batches it assembled: one array as the wire contract's
    bounded prediction, a structure as ``{"values", "_meta"}`` when rows were left out.
    """
    if isinstance(output, np.ndarray) and output.ndim:
        head = output[:limit].copy()
        return bounded_prediction(head, int(output.shape[0]), int(head.nbytes) + 64)
    leaf = _first_leaf(output)
    if leaf is None or not isinstance(output, (Mapping, list, tuple)):
        return Captured(render_as_is, _head(output, limit), 1, 64)
    total = _rows(leaf)
    head = _head(output, limit)
    return Captured(render_structured, (head, min(total, limit), total), total, _nbytes(head) + 64)


def _render_unseen(data: tuple[str, int, str, int | None]) -> dict[str, object]:
    kind, rows, note, batches = data
    meta: dict[str, object] = {"type": kind, "shape": [rows]}
    if batches is not None:
        meta["batches"] = batches
    meta["note"] = note
    return {"_meta": meta}


def unseen_features(kind: str, rows: int, note: str, batches: int | None = None) -> Captured:
    """An input aither cannot sample (a dataset, a generator, or none in sight): its type and rows only (and the
    batches it came in, where the callback counted them)."""
    return Captured(_render_unseen, (kind, rows, note, batches), rows, 128)


def is_sampleable(inputs: object) -> bool:
    """Inputs aither samples directly: arrays, tensors, frames, dicts and lists; not datasets or generators."""
    if isinstance(inputs, (np.ndarray, Mapping, list, tuple)):
        return True
    root = type(inputs).__module__.partition(".")[0]
    if root in ("pandas", "polars", "torch", "jax", "jaxlib"):
        return True
    return root == "tensorflow" and hasattr(inputs, "shape") and hasattr(inputs, "dtype")
