"""Samplers of tables and arrays: numpy arrays, pandas and polars frames and series."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._json import plain_list
from ._captured import Captured, render_as_is
from ._columns import positional_names
from ._schema import schema_meta, schema_names
from ._tensors import sampled_array
from ._window import column_window, random_rows

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from .._types import Array

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


_numpy_meta: dict[tuple[object, ...], dict[str, object]] = {}


def _render_numpy(data: tuple[Array, tuple[int, ...], bool]) -> object:
    # Runs on the worker for every non-tabular array: ``_meta`` only depends on the shapes and the dtype, so
    # it is built once per kind of input and shared (the encoder only reads it).
    head, shape, tabular = data
    key = (shape, head.shape, head.dtype, tabular)
    meta = _numpy_meta.get(key)
    if meta is None:
        meta = _numpy_meta_for(head, shape)
        if len(_numpy_meta) >= 1024:
            _numpy_meta.clear()
        _numpy_meta[key] = meta
    return {"sample": plain_list(head), "_meta": meta}


def _numpy_meta_for(head: Array, shape: tuple[int, ...]) -> dict[str, object]:
    truncated = bool(shape) and shape[0] > head.shape[0]
    if head.ndim == 2:
        truncated = truncated or width(shape) > head.shape[1]
    return {"type": "numpy.ndarray", "shape": list(shape), "dtype": str(head.dtype), "truncated": truncated}


_dtype_names: dict[object, str] = {}


def dtype_name(dtype: object) -> str:
    """``str(dtype)``, remembered: numpy builds the name in Python each time, a cost paid per span otherwise."""
    name = _dtype_names.get(dtype)
    if name is None:
        if len(_dtype_names) >= 256:  # structured dtypes are without end; plain ones are a handful
            _dtype_names.clear()
        name = _dtype_names[dtype] = str(dtype)
    return name


def _render_numpy_table(data: tuple[Array, tuple[int, int], list[int], int]) -> object:
    # A 2-D array is a table: its rows were drawn at random and its columns are one window of the whole width.
    head, shape, rows, start = data
    dtype = dtype_name(head.dtype)
    names = positional_names(shape[1])[start : start + head.shape[1]]
    values = plain_list(head)
    meta: dict[str, object] = {"type": "numpy.ndarray", "shape": list(shape), "dtype": dtype, "rows": rows}
    meta.update(schema_meta(("numpy", shape[1], dtype), positional_names(shape[1]), [dtype] * shape[1]))
    meta["truncated"] = shape[0] > len(rows) or shape[1] > head.shape[1]
    return {"sample": list(map(dict, map(zip, [names] * len(values), values))), "_meta": meta}


def width(shape: tuple[int, ...]) -> int:
    width = 1
    for size in shape[1:]:
        width *= size
    return width


def numpy_head(first_rows: Array, columns: int) -> Array:
    """``first_rows`` (already cut to the sampled rows) flattened per row and cut to ``columns``, as a copy."""
    head: Array = (
        first_rows.copy() if first_rows.ndim == 1 else first_rows.reshape(first_rows.shape[0], -1)[:, :columns].copy()
    )
    return head


def capture_numpy(value: Array, rows: int, columns: int) -> Captured:
    # This is the hot path of every tabular model: keep it to a few numpy calls. A 2-D array is a table:
    # random rows, one window of columns, one small copy whatever the input's size. Other ranks keep their
    # first rows, each flattened and cut to ``columns`` values, like tensors.
    ndim = value.ndim
    if ndim == 2:
        total, count = value.shape
        picked = random_rows(total, rows)
        start, stop = column_window(count, columns)
        # Advanced indexing (random rows) already copies; a plain slice (every row) needs its own copy.
        head = value[:, start:stop].copy() if len(picked) == total else value[picked, start:stop]
        return Captured(_render_numpy_table, (head, value.shape, picked, start), total, head.nbytes + 64)
    if ndim == 1:
        head = value[:rows].copy()
    elif ndim == 0:
        return Captured(render_as_is, value[()], 1, 16)  # a numpy scalar (immutable), encoded by the contract
    else:  # images, sequences: the sampled rows whole, described on the worker (``_columns``)
        picked = random_rows(value.shape[0], rows)
        head = value[picked] if len(picked) < value.shape[0] else value.copy()
        return sampled_array(head, "numpy.ndarray", value.shape, str(value.dtype), "cpu", picked)
    return Captured(_render_numpy, (head, value.shape, False), value.shape[0], head.nbytes + 64)


def capture_numpy_scalar(value: object, rows: int, columns: int) -> Captured:
    # Kept as it is (numpy scalars are immutable): ``item()`` would make a nanosecond datetime64 an integer.
    return Captured(render_as_is, value, 1, 16)


def _render_pandas_frame(data: tuple[pd.DataFrame, tuple[int, int], list[int], int, int, pd.Index]) -> object:
    taken, shape, rows, start, stop, columns = data
    sub = taken.iloc[:, start:stop]
    dtypes = tuple(taken.dtypes)
    # The caller's column index is immutable: its identity (held by the cache) and the dtypes key the schema.
    key = ("pandas", id(columns), dtypes)
    names = schema_names(key, columns, dtypes, anchor=columns)[start:stop]
    records = [dict(zip(names, row, strict=True)) for row in sub.itertuples(index=False, name=None)]
    meta: dict[str, object] = {"type": "pandas.DataFrame", "shape": list(shape), "rows": rows}
    meta.update(schema_meta(key, columns, dtypes, anchor=columns))
    meta["truncated"] = shape[0] > len(rows) or shape[1] > stop - start
    return {"sample": records, "_meta": meta}


def _render_pandas_array(data: tuple[Array, tuple[int, int], list[int], int, int, pd.Index]) -> object:
    # The drawn rows of a one-block frame, as a numpy copy: every column has the array's dtype.
    head, shape, rows, start, stop, columns = data
    dtype = dtype_name(head.dtype)
    key = ("pandas", id(columns), dtype)
    names = schema_names(key, columns, [dtype] * shape[1], anchor=columns)[start:stop]
    values = plain_list(head[:, start:stop])
    meta: dict[str, object] = {"type": "pandas.DataFrame", "shape": list(shape), "rows": rows}
    meta.update(schema_meta(key, columns, [dtype] * shape[1], anchor=columns))
    meta["truncated"] = shape[0] > len(rows) or shape[1] > stop - start
    return {"sample": list(map(dict, map(zip, [names] * len(values), values))), "_meta": meta}


def _one_numpy_block(frame: pd.DataFrame) -> bool:
    """True when the frame's columns share one numpy block, so ``to_numpy()`` is a view, not a copy.

    Reads pandas' block manager (private): anything unexpected answers False, and the general path is taken."""
    try:
        manager = frame._mgr
        return bool(manager.nblocks == 1 and not manager.blocks[0].is_extension)
    except Exception:
        return False


def capture_pandas_frame(value: pd.DataFrame, rows: int, columns: int) -> Captured:
    # The common ML input, one float block: the drawn rows straight from the numpy view (a few microseconds).
    # Otherwise take() copies the drawn rows (every column: a few rows are cheap), so later edits of the
    # caller's frame do not leak in. The column window is cut on the worker either way.
    shape = value.shape
    picked = random_rows(shape[0], rows)
    start, stop = column_window(shape[1], columns)
    nbytes = 2048 + 64 * len(picked) * shape[1]
    if _one_numpy_block(value):
        array = value.to_numpy()
        head = array[: len(picked)].copy() if len(picked) == shape[0] else array[picked]
        return Captured(_render_pandas_array, (head, shape, picked, start, stop, value.columns), shape[0], nbytes)
    taken = value.head(rows) if len(picked) == shape[0] else value.take(picked)
    data = (taken, shape, picked, start, stop, value.columns)
    return Captured(_render_pandas_frame, data, shape[0], nbytes)


def _render_series(data: tuple[pd.Series | pl.Series, int, str]) -> object:
    # A pandas or a polars Series: its first rows, named and typed.
    head, total, type_name = data
    return {
        "sample": head.to_list(),  # pandas' to_list is its tolist
        "_meta": {
            "type": type_name,
            "shape": [total],
            "name": None if head.name is None else str(head.name),
            "dtype": str(head.dtype),
            "truncated": total > len(head),
        },
    }


def capture_pandas_series(value: pd.Series, rows: int, columns: int) -> Captured:
    total = len(value)
    return Captured(_render_series, (value.head(rows), total, "pandas.Series"), total, 64 * rows)


def _render_polars_frame(data: tuple[pl.DataFrame, tuple[int, int], list[int], int, int]) -> object:
    taken, shape, rows, start, stop = data
    names = taken.columns
    dtypes = [str(dtype) for dtype in taken.dtypes]
    meta: dict[str, object] = {"type": "polars.DataFrame", "shape": list(shape), "rows": rows}
    meta.update(schema_meta(("polars", tuple(names), tuple(dtypes)), names, dtypes))
    meta["truncated"] = shape[0] > len(rows) or shape[1] > stop - start
    return {"sample": taken[:, start:stop].rows(named=True), "_meta": meta}


def capture_polars_frame(value: pl.DataFrame, rows: int, columns: int) -> Captured:
    # Polars frames are immutable Arrow data: the gathered rows cannot change under us.
    shape = value.shape
    picked = random_rows(shape[0], rows)
    taken = value.head(rows) if len(picked) == shape[0] else value[picked]
    start, stop = column_window(shape[1], columns)
    return Captured(_render_polars_frame, (taken, shape, picked, start, stop), shape[0], 64 * len(picked) * shape[1])


def capture_polars_series(value: pl.Series, rows: int, columns: int) -> Captured:
    total = len(value)
    return Captured(_render_series, (value[:rows], total, "polars.Series"), total, 64 * rows)
