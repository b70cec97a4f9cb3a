"""Samplers of tables and arrays: numpy arrays, pandas and polars frames and series."""

from __future__ import annotations

from typing import Any

from ._captured import Captured, render_as_is

__all__ = [
    "capture_numpy",
    "capture_numpy_scalar",
    "capture_pandas_frame",
    "capture_pandas_series",
    "capture_polars_frame",
    "capture_polars_series",
    "numpy_head",
    "width",
]


_numpy_meta: dict[tuple[Any, ...], dict[str, Any]] = {}


def _render_numpy(data: tuple[Any, tuple[int, ...], bool]) -> Any:
    # Runs on the worker for every tabular prediction. ``_meta`` only depends on the shapes and the dtype, so
    # it is built once per kind of input and shared (the encoder only reads it).
    head, shape, tabular = data
    key = (shape, head.shape, head.dtype, tabular)
    meta = _numpy_meta.get(key)
    if meta is None:
        meta = _numpy_meta_for(head, shape, tabular)
        if len(_numpy_meta) >= 1024:
            _numpy_meta.clear()
        _numpy_meta[key] = meta
    values = head.tolist()
    if tabular:
        names = meta["columns"]
        return {"sample": list(map(dict, map(zip, [names] * len(values), values))), "_meta": meta}
    return {"sample": values, "_meta": meta}


def _numpy_meta_for(head: Any, shape: tuple[int, ...], tabular: bool) -> dict[str, Any]:
    dtype = str(head.dtype)
    if head.ndim == 2:
        truncated = shape[0] > head.shape[0] or width(shape) > head.shape[1]
    else:
        truncated = bool(shape) and shape[0] > head.shape[0]
    meta: dict[str, Any] = {"type": "numpy.ndarray", "shape": list(shape), "dtype": dtype, "truncated": truncated}
    if tabular:
        names = [str(j) for j in range(head.shape[1])]
        meta["columns"] = names
        meta["dtypes"] = dict.fromkeys(names, dtype)
    return meta


def width(shape: tuple[int, ...]) -> int:
    width = 1
    for size in shape[1:]:
        width *= size
    return width


def numpy_head(first_rows: Any, columns: int) -> Any:
    """``first_rows`` (already cut to the sampled rows) flattened per row and cut to ``columns``, as a copy."""
    if first_rows.ndim == 1:
        return first_rows.copy()
    return first_rows.reshape(first_rows.shape[0], -1)[:, :columns].copy()


def capture_numpy(value: Any, rows: int, columns: int) -> Captured:
    # The first rows, each cut (or, above 2-D, flattened and cut) to ``columns`` values: one small copy,
    # whatever the input's size. This is the hot path of every tabular model: keep it to a few numpy calls.
    ndim = value.ndim
    if ndim == 2:
        head = value[:rows, :columns].copy()
    elif ndim == 1:
        head = value[:rows].copy()
    elif ndim == 0:
        return Captured(render_as_is, value.item(), 1, 16)
    else:
        first = value[:rows]
        head = first.reshape(first.shape[0], width(value.shape))[:, :columns].copy()
    return Captured(_render_numpy, (head, value.shape, ndim == 2), value.shape[0], head.nbytes + 64)


def capture_numpy_scalar(value: Any, rows: int, columns: int) -> Captured:
    return Captured(render_as_is, value.item(), 1, 16)


def _render_pandas_frame(data: tuple[Any, tuple[int, int], int]) -> Any:
    head, shape, columns = data
    sub = head.iloc[:, :columns]
    names = [str(c) for c in sub.columns]
    records = [dict(zip(names, row, strict=True)) for row in sub.itertuples(index=False, name=None)]
    return {
        "sample": records,
        "_meta": {
            "type": "pandas.DataFrame",
            "shape": list(shape),
            "columns": names,
            "dtypes": {name: str(dtype) for name, dtype in zip(names, sub.dtypes, strict=True)},
            "truncated": shape[0] > len(head) or shape[1] > columns,
        },
    }


def capture_pandas_frame(value: Any, rows: int, columns: int) -> Captured:
    # head() is O(rows asked); with copy-on-write (pandas >= 3, or enabled) later edits to the caller's frame
    # do not leak into the slice, and column selection happens on the worker.
    head = value.head(rows)
    shape = value.shape
    return Captured(_render_pandas_frame, (head, shape, columns), shape[0], 2048 + 64 * rows * min(columns, shape[1]))


def _render_pandas_series(data: tuple[Any, int]) -> Any:
    head, total = data
    return {
        "sample": head.tolist(),
        "_meta": {
            "type": "pandas.Series",
            "shape": [total],
            "name": None if head.name is None else str(head.name),
            "dtype": str(head.dtype),
            "truncated": total > len(head),
        },
    }


def capture_pandas_series(value: Any, rows: int, columns: int) -> Captured:
    total = len(value)
    return Captured(_render_pandas_series, (value.head(rows), total), total, 64 * rows)


def _render_polars_frame(data: tuple[Any, tuple[int, int]]) -> Any:
    head, shape = data
    names = [str(c) for c in head.columns]
    return {
        "sample": head.rows(named=True),
        "_meta": {
            "type": "polars.DataFrame",
            "shape": list(shape),
            "columns": names,
            "dtypes": {name: str(dtype) for name, dtype in zip(names, head.dtypes, strict=True)},
            "truncated": shape[0] > head.height or shape[1] > head.width,
        },
    }


def capture_polars_frame(value: Any, rows: int, columns: int) -> Captured:
    # Polars frames are immutable Arrow data: a slice is zero-copy and cannot change under us.
    shape = value.shape
    head = value[:rows, :columns]
    return Captured(_render_polars_frame, (head, shape), shape[0], 64 * rows * min(columns, shape[1]))


def _render_polars_series(data: tuple[Any, int]) -> Any:
    head, total = data
    return {
        "sample": head.to_list(),
        "_meta": {
            "type": "polars.Series",
            "shape": [total],
            "name": head.name,
            "dtype": str(head.dtype),
            "truncated": total > len(head),
        },
    }


def capture_polars_series(value: Any, rows: int, columns: int) -> Captured:
    total = len(value)
    return Captured(_render_polars_series, (value[:rows], total), total, 64 * rows)
