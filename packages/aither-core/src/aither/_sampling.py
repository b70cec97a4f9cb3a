"""Feature and prediction sampling.

Sampling is split in two so the caller's thread does almost nothing:

* ``capture`` runs on the calling thread. It takes a bounded slice of the input (the first ``sample_rows`` rows,
  the first ``sample_columns`` columns), copies only that slice, and notes the shape. Its cost does not depend
  on the number of rows.
* ``render`` runs on the worker thread and turns the captured slice into plain JSON-able data with ``_meta``.

Types are recognised by the module and name of their class (``numpy.ndarray``, ``pandas...DataFrame``), never
by importing a framework, so sampling a numpy array does not import pandas and ``import aither`` imports neither.
Plugins add samplers for their own types with :func:`register_sampler`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

__all__ = [
    "Captured",
    "Sampler",
    "capture_failed",
    "capture_features",
    "capture_prediction",
    "register_sampler",
    "render",
    "render_as_is",
    "truncated_rows",
]

logger = logging.getLogger("aither")

MAX_STRING_CHARS = 1000


class Captured(NamedTuple):
    """A bounded copy of some data, and how to turn it into JSON-able data later (on the worker)."""

    render: Callable[[Any], Any]
    data: Any
    #: Rows in the whole input (``ml.batch_size``).
    rows: int
    #: Rough size of ``data`` in bytes, for the queue's byte bound.
    nbytes: int


def render_as_is(data: Any) -> Any:
    """The renderer of data that is already plain JSON-able Python (a scalar, a marker dict)."""
    return data


def truncated_rows(values: Any, total_rows: int) -> dict[str, Any]:
    """The wire contract's marker of an output whose rows were cut: ``{"values", "_meta": {truncated, total_rows}}``."""
    return {"values": values, "_meta": {"truncated": True, "total_rows": total_rows}}


def capture_failed(value: object, exc: BaseException) -> Captured:
    """What is recorded when capturing ``value`` raised: its type and the exception's name, never the value."""
    return Captured(render_as_is, {"_meta": {"type": _type_name(value), "error": type(exc).__name__}}, 1, 64)


def render(captured: Captured) -> Any:
    """Turn a capture into JSON-able data; a failing renderer yields an error marker instead of raising."""
    try:
        return captured.render(captured.data)
    except Exception as exc:  # a sampler bug must never lose the prediction
        logger.debug("aither: rendering a sample failed", exc_info=True)
        return {"_meta": {"error": f"{type(exc).__name__}: sample could not be rendered"}}


#: ``sampler(value, sample_rows, sample_columns) -> Captured``
Sampler = Callable[[Any, int, int], Captured]

_by_name: dict[tuple[str, str], Sampler] = {}
_by_type: dict[type, Sampler | None] = {}


def register_sampler(module: str, qualname: str, sampler: Sampler) -> None:
    """Use ``sampler`` for instances of the class ``qualname`` whose module starts with ``module``.

    ``module`` is the top-level package (``"PIL"``), so the class is recognised wherever it is defined inside
    that package; subclasses are recognised through their MRO.
    """
    _by_name[(module, qualname)] = sampler
    _by_type.clear()


def _lookup(cls: type) -> Sampler | None:
    try:
        return _by_type[cls]
    except KeyError:
        pass
    found: Sampler | None = None
    for klass in cls.__mro__:
        found = _by_name.get((klass.__module__.partition(".")[0], klass.__qualname__))
        if found is not None:
            break
    _by_type[cls] = found
    return found


def _type_name(value: object) -> str:
    cls = type(value)
    root = cls.__module__.partition(".")[0]
    return cls.__qualname__ if root == "builtins" else f"{root}.{cls.__qualname__}"


# --------------------------------------------------------------------------------------------------- scalars


def _cut_string(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_STRING_CHARS:
        return text, False
    return text[:MAX_STRING_CHARS], True


def _render_string(data: tuple[str, bool]) -> Any:
    text, truncated = data
    if not truncated:
        return text
    return {"sample": text, "_meta": {"type": "str", "truncated": True}}


def _capture_string(value: str, rows: int, columns: int) -> Captured:
    cut = _cut_string(value)
    return Captured(_render_string, cut, 1, len(cut[0]))


def _capture_scalar(value: Any, rows: int, columns: int) -> Captured:
    return Captured(render_as_is, value, 1, 16)


def _capture_bytes(value: bytes | bytearray | memoryview, rows: int, columns: int) -> Captured:
    return Captured(render_as_is, {"_type": "bytes", "size": len(value)}, 1, 16)


# --------------------------------------------------------------------------------------------------- numpy


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
        truncated = shape[0] > head.shape[0] or _width(shape) > head.shape[1]
    else:
        truncated = bool(shape) and shape[0] > head.shape[0]
    meta: dict[str, Any] = {"type": "numpy.ndarray", "shape": list(shape), "dtype": dtype, "truncated": truncated}
    if tabular:
        names = [str(j) for j in range(head.shape[1])]
        meta["columns"] = names
        meta["dtypes"] = dict.fromkeys(names, dtype)
    return meta


def _width(shape: tuple[int, ...]) -> int:
    width = 1
    for size in shape[1:]:
        width *= size
    return width


def _numpy_head(first_rows: Any, columns: int) -> Any:
    """``first_rows`` (already cut to the sampled rows) flattened per row and cut to ``columns``, as a copy."""
    if first_rows.ndim == 1:
        return first_rows.copy()
    return first_rows.reshape(first_rows.shape[0], -1)[:, :columns].copy()


def _capture_numpy(value: Any, rows: int, columns: int) -> Captured:
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
        head = first.reshape(first.shape[0], _width(value.shape))[:, :columns].copy()
    return Captured(_render_numpy, (head, value.shape, ndim == 2), value.shape[0], head.nbytes + 64)


def _capture_numpy_scalar(value: Any, rows: int, columns: int) -> Captured:
    return Captured(render_as_is, value.item(), 1, 16)


# --------------------------------------------------------------------------------------------------- pandas


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


def _capture_pandas_frame(value: Any, rows: int, columns: int) -> Captured:
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


def _capture_pandas_series(value: Any, rows: int, columns: int) -> Captured:
    total = len(value)
    return Captured(_render_pandas_series, (value.head(rows), total), total, 64 * rows)


# --------------------------------------------------------------------------------------------------- polars


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


def _capture_polars_frame(value: Any, rows: int, columns: int) -> Captured:
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


def _capture_polars_series(value: Any, rows: int, columns: int) -> Captured:
    total = len(value)
    return Captured(_render_polars_series, (value[:rows], total), total, 64 * rows)


# --------------------------------------------------------------------------------------------------- tensors


def _render_tensor(data: tuple[Any, str, list[int], str, str]) -> Any:
    head, type_name, shape, dtype, device = data
    values = head.tolist()  # torch (from any device) and numpy both copy to host Python values here
    rows_kept = len(values) if isinstance(values, list) else 1
    width_kept = len(values[0]) if rows_kept and isinstance(values, list) and isinstance(values[0], list) else 0
    truncated = bool(shape) and (shape[0] > rows_kept or (len(shape) > 1 and _width(tuple(shape)) > width_kept))
    return {
        "sample": values,
        "_meta": {
            "type": type_name,
            "shape": shape,
            "dtype": dtype,
            "device": device,
            "truncated": truncated,
        },
    }


def torch_copy_ready_event(head: Any) -> Any:
    """What the worker must wait for before reading ``head``, a copy just queued on the caller's CUDA stream.

    None off CUDA, and on the device's default stream: the worker's device-to-host copy runs on that same
    (legacy default) stream, so it is ordered after the copy already. On another stream, an event recorded
    behind the copy (no synchronisation here); the worker waits on it. Every CUDA call counts on the caller's
    thread (each is tens of microseconds on some virtualised GPUs), so the common case makes none.
    """
    if head.device.type != "cuda":
        return None
    import torch  # loaded already: ``head`` is a torch tensor

    cuda: Any = torch.cuda
    if cuda.current_stream(head.device) == cuda.default_stream(head.device):
        return None
    event = cuda.Event()
    event.record()
    return event


def _render_torch(data: tuple[Any, str, list[int], str, str, Any]) -> Any:
    event = data[5]
    if event is not None:
        event.synchronize()  # the worker waits for the caller's stream, whichever stream that was
    if not data[2]:
        return data[0].tolist()
    return _render_tensor(data[:5])


def _capture_torch(value: Any, rows: int, columns: int) -> Captured:
    shape = list(value.shape)
    device = str(value.device)
    dtype = str(value.dtype).removeprefix("torch.")
    if shape and device == "cpu":
        try:
            # On the CPU a tensor's numpy view is free, and numpy's slicing and copying cost a fraction of
            # torch's per-operation dispatch; dtypes numpy lacks (bfloat16) raise and take the torch path.
            array = _numpy_head(value.detach()[:rows].numpy(), columns)
        except (TypeError, RuntimeError):
            pass
        else:
            captured = (array, "torch.Tensor", shape, dtype, device, None)
            return Captured(_render_torch, captured, shape[0], array.nbytes + 64)
    if not shape:
        head = value.detach().clone()  # .item() would synchronise an accelerator: the worker reads it
        return Captured(
            _render_torch, (head, "torch.Tensor", shape, dtype, device, torch_copy_ready_event(head)), 1, 16
        )
    head = value.detach()[:rows]
    if head.dim() > 1:
        head = head.reshape(head.shape[0], -1)[:, :columns]
    # clone(): later in-place edits of the caller's tensor must not change the sample. On an accelerator the
    # clone is queued on the device (no synchronisation); the worker copies it to the host.
    head = head.clone()
    captured = (head, "torch.Tensor", shape, dtype, device, torch_copy_ready_event(head))
    return Captured(_render_torch, captured, shape[0], head.element_size() * head.nelement() + 64)


def _tensorflow_rows(value: Any, rows: int) -> Any:
    """The first ``rows`` rows of a TensorFlow tensor as numpy, without copying the rest to the host.

    On the CPU ``.numpy()`` is a view of the tensor's buffer, and numpy slicing is free, where a TensorFlow
    slice op costs tens of microseconds. On an accelerator, slice on the device first, then copy the slice.
    """
    device = str(getattr(value, "device", ""))
    if "GPU" not in device and "TPU" not in device:
        return value.numpy()[:rows]
    return value[:rows].numpy()


def _capture_tensorflow(value: Any, rows: int, columns: int) -> Captured:
    shape = [int(d) if d is not None else -1 for d in value.shape]
    if not shape:
        return Captured(render_as_is, value.numpy().item(), 1, 16)
    head = _tensorflow_rows(value, rows)
    head = head.reshape(head.shape[0], -1)[:, :columns] if head.ndim > 1 else head
    captured = (head.copy(), "tensorflow.Tensor", shape, value.dtype.name, str(getattr(value, "device", "")))
    return Captured(_render_tensor, captured, max(shape[0], 0), head.nbytes + 64)


# --------------------------------------------------------------------------------------------------- containers


def _render_mapping(data: tuple[dict[str, Captured], list[str], int]) -> Any:
    items, keys, total_keys = data
    return {
        "sample": {key: render(captured) for key, captured in items.items()},
        "_meta": {"type": "dict", "keys": keys, "truncated": total_keys > len(items)},
    }


def _capture_mapping(value: Mapping[Any, Any], rows: int, columns: int) -> Captured:
    items: dict[str, Captured] = {}
    for key, item in itertools.islice(value.items(), columns):
        items[str(key)] = capture_value(item, rows, columns)
    batch = 1
    for captured in items.values():
        batch = captured.rows
        break
    keys = [str(k) for k in itertools.islice(value.keys(), 1000)]
    return Captured(_render_mapping, (items, keys, len(value)), batch, sum(c.nbytes for c in items.values()) + 64)


def _render_records(data: tuple[list[dict[str, Any]], int, bool]) -> Any:
    records, total, cut_columns = data
    names: list[str] = []
    for record in records:
        for key in record:
            if key not in names:
                names.append(key)
    sample = [
        {key: render(value) if isinstance(value, Captured) else value for key, value in record.items()}
        for record in records
    ]
    return {
        "sample": sample,
        "_meta": {
            "type": "list[dict]",
            "shape": [total, len(names)],
            "columns": names,
            "truncated": total > len(records) or cut_columns,
        },
    }


def _render_sequence(data: tuple[list[Any], str, int]) -> Any:
    items, type_name, total = data
    sample = [render(item) if isinstance(item, Captured) else item for item in items]
    return {"sample": sample, "_meta": {"type": type_name, "shape": [total], "truncated": total > len(items)}}


def _capture_sequence(value: list[Any] | tuple[Any, ...], rows: int, columns: int) -> Captured:
    total = len(value)
    head = value[:rows]
    if head and all(isinstance(item, Mapping) for item in head):
        records = []
        cut = False
        for item in head:
            # Each value as a bounded copy, like a list's items: a record's array or text is not kept whole.
            record = {
                str(k): v if type(v) in _PLAIN else _sample_item(v, rows, columns)
                for k, v in itertools.islice(item.items(), columns)
            }
            cut = cut or len(item) > columns
            records.append(record)
        return Captured(_render_records, (records, total, cut), total, 64 * rows * columns)
    items = [item if type(item) in _PLAIN else _sample_item(item, rows, columns) for item in head]
    return Captured(_render_sequence, (items, type(value).__name__, total), total, 64 * rows * columns)


_PLAIN = frozenset({float, int, bool, type(None)})


def _sample_item(item: Any, rows: int, columns: int) -> Any:
    """One value of a list or record: a scalar as it is, a string cut, anything else captured (bounded)."""
    if item is None or isinstance(item, (bool, int, float)):
        return item
    if isinstance(item, str):
        return _render_string(_cut_string(item))
    return capture_value(item, rows, columns)


# --------------------------------------------------------------------------------------------------- fallback


def _render_unknown(data: tuple[str, Any]) -> Any:
    type_name, value = data
    from ._json import jsonable

    return {"sample": jsonable(value), "_meta": {"type": type_name}}


def _capture_unknown(value: Any, rows: int, columns: int) -> Captured:
    # An unknown object is kept by reference and rendered on the worker (repr, tolist...): no cost here.
    batch = 1
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[0], int):
        batch = shape[0]
        try:
            value = value[:rows]
        except Exception:
            pass
    return Captured(_render_unknown, (_type_name(value), value), batch, 256)


for _module, _name, _sampler in (
    ("numpy", "ndarray", _capture_numpy),
    ("numpy", "generic", _capture_numpy_scalar),
    ("pandas", "DataFrame", _capture_pandas_frame),
    ("pandas", "Series", _capture_pandas_series),
    ("polars", "DataFrame", _capture_polars_frame),
    ("polars", "Series", _capture_polars_series),
    ("torch", "Tensor", _capture_torch),
    ("tensorflow", "EagerTensor", _capture_tensorflow),
    ("tensorflow", "Tensor", _capture_tensorflow),
    ("builtins", "str", _capture_string),
    ("builtins", "bytes", _capture_bytes),
    ("builtins", "bytearray", _capture_bytes),
    ("builtins", "memoryview", _capture_bytes),
    ("builtins", "bool", _capture_scalar),
    ("builtins", "int", _capture_scalar),
    ("builtins", "float", _capture_scalar),
    ("builtins", "NoneType", _capture_scalar),
    ("builtins", "complex", _capture_scalar),
    ("datetime", "datetime", _capture_scalar),
    ("datetime", "date", _capture_scalar),
    ("datetime", "time", _capture_scalar),
    ("datetime", "timedelta", _capture_scalar),
    ("decimal", "Decimal", _capture_scalar),
    ("builtins", "dict", _capture_mapping),
    ("builtins", "list", _capture_sequence),
    ("builtins", "tuple", _capture_sequence),
):
    register_sampler(_module, _name, _sampler)


def capture_value(value: Any, rows: int, columns: int) -> Captured:
    sampler = _lookup(type(value))
    if sampler is None:
        sampler = _capture_mapping if isinstance(value, Mapping) else _capture_unknown
    return sampler(value, rows, columns)


def capture_features(value: Any, rows: int, columns: int) -> Captured:
    """Capture a bounded sample of a model input; never raises."""
    try:
        sampler = _by_type.get(type(value))  # the hot path: a type seen before, one dict lookup
        if sampler is None:
            return capture_value(value, rows, columns)
        return sampler(value, rows, columns)
    except Exception as exc:
        logger.debug("aither: sampling %s failed", type(value).__name__, exc_info=True)
        return capture_failed(value, exc)


# --------------------------------------------------------------------------------------------------- predictions


def _render_prediction(data: tuple[Any, int, int]) -> Any:
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


def _to_python(value: Any) -> Any:
    if hasattr(value, "to_list"):  # polars
        return value.to_list()
    if hasattr(value, "cpu") and hasattr(value, "detach"):  # torch
        return value.detach().cpu().tolist()
    if hasattr(value, "tolist"):  # numpy, pandas
        return value.tolist()
    return value.numpy().tolist()  # tensorflow, tinygrad


def capture_prediction(value: Any, limit: int) -> Captured:
    """Capture up to ``limit`` rows of a model output; never raises."""
    try:
        capturer = _prediction_capturers.get(type(value))
        if capturer is None:
            return _capture_prediction(value, limit)
        return capturer(value, limit)
    except Exception as exc:
        logger.debug("aither: capturing a prediction of type %s failed", type(value).__name__, exc_info=True)
        return capture_failed(value, exc)


def _predict_scalar(value: Any, limit: int) -> Captured:
    return Captured(render_as_is, value, 1, _item_nbytes(value))


def _item_nbytes(item: Any) -> int:
    """Roughly what an output value keeps alive while queued: text by its length, containers shallowly."""
    if isinstance(item, (str, bytes)):
        return 49 + len(item)
    if isinstance(item, Mapping):
        return 64 + sum(49 + len(v) if isinstance(v, (str, bytes)) else 32 for v in item.values())
    if isinstance(item, (list, tuple)):
        return 56 + 8 * len(item)
    return 32


def _items_nbytes(items: list[Any]) -> int:
    """:func:`_item_nbytes` of a list, from at most 16 evenly spaced items (the cost stays bounded)."""
    count = len(items)
    if not count:
        return 64
    sampled = items[:: max(1, count // 16)][:16]
    return 64 + sum(map(_item_nbytes, sampled)) * count // len(sampled)


def _predict_sequence(value: Any, limit: int) -> Captured:
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


def _render_captured_list(items: list[Captured]) -> Any:
    return [render(item) for item in items]


def _predict_tinygrad(value: Any, limit: int) -> Captured:
    # tinygrad is not thread-safe: its tensors must not be realised on the worker, and realising a lazy output
    # here would change the caller's computation. The aither-tinygrad plugin reads realised outputs itself.
    shape = [d if isinstance(d, int) else -1 for d in getattr(value, "shape", ())]
    meta = {"type": "tinygrad.Tensor", "shape": shape, "dtype": str(getattr(value, "dtype", "")), "realized": False}
    return Captured(render_as_is, {"_meta": meta}, shape[0] if shape else 1, 128)


def _predict_mapping(value: Any, limit: int) -> Captured:
    items = {str(key): capture_prediction(item, limit) for key, item in value.items()}
    return Captured(_render_prediction_mapping, items, 1, sum(c.nbytes for c in items.values()))


def _predict_numpy(value: Any, limit: int) -> Captured:
    if value.ndim == 0:
        return Captured(render_as_is, value.item(), 1, 16)
    total = value.shape[0]
    head = value.copy() if total <= limit else value[:limit].copy()
    return Captured(_render_prediction, (head, total, limit), total, head.nbytes + 64)


def _predict_torch(value: Any, limit: int) -> Captured:
    if value.dim() == 0:
        return Captured(render_as_is, value.item(), 1, 16)
    total = int(value.shape[0])
    head = value.detach()[:limit].clone()  # on an accelerator: queued on the device, copied to host later
    return Captured(_render_prediction, (head, total, limit), total, head.element_size() * head.nelement() + 64)


def _predict_frame(value: Any, limit: int) -> Captured:
    total = len(value)
    return Captured(_render_prediction, (value.head(limit), total, limit), total, 64 * min(total, limit))


def _predict_tensorflow(value: Any, limit: int) -> Captured:
    if len(value.shape) == 0:
        return Captured(render_as_is, value.numpy().item(), 1, 16)
    total = int(value.shape[0])
    head = _tensorflow_rows(value, limit).copy()
    return Captured(_render_prediction, (head, total, limit), total, head.nbytes + 64)


def _predict_other(value: Any, limit: int) -> Captured:
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "__getitem__"):
        if len(shape) == 0:
            return Captured(render_as_is, _to_python(value), 1, 16)
        total = int(shape[0])
        return Captured(_render_prediction, (value[:limit], total, limit), total, 256)
    return Captured(_render_prediction, (value, 1, limit), 1, 256)


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


def _capture_prediction(value: Any, limit: int) -> Captured:
    cls = type(value)
    capturer = _prediction_capturers.get(cls)
    if capturer is None:
        capturer = _prediction_capturers[cls] = _prediction_capturer(cls)
    return capturer(value, limit)


def _render_prediction_mapping(items: dict[str, Captured]) -> Any:
    return {key: render(captured) for key, captured in items.items()}
