"""Samplers of tensors (torch on any device, without synchronising it; TensorFlow) and the sampled rows of any
array rendered as the columns drift profiles (``_columns``).

A tensor of rank 2 is a table: random rows, one window of columns, like a numpy array. Rank 3 and more keep the
sampled rows whole (images, sequences) and the worker turns them into descriptors. Either way the caller's
thread only slices the sampled rows and copies them (on an accelerator the copy is queued on the device); the
device-to-host copy and every computation happen on the worker.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .._types import Synchronizable
from ._captured import Captured, render_as_is
from ._columns import as_array, input_columns, positional_names, records
from ._schema import schema_meta
from ._window import column_window, random_rows

if TYPE_CHECKING:
    import tensorflow as tf
    import torch

    from .._types import Array

    # The sampled rows (a numpy array, or a tensor the worker copies to the host), the input's type, shape,
    # dtype and device, the rows drawn, the first column of the window, and what to wait for before reading.
    _RowsData = tuple[object, str, list[int], str, str, list[int], int, Synchronizable | None]


__all__ = [
    "capture_tensorflow",
    "capture_torch",
    "sampled_array",
    "tensorflow_rows",
    "torch_copy_ready_event",
]


class _RecordedEvent(Synchronizable, Protocol):
    def record(self) -> None: ...


def torch_copy_ready_event(head: torch.Tensor) -> Synchronizable | None:
    """What the worker must wait for before reading ``head``, a copy just queued on the caller's CUDA stream.

    None off CUDA, and on the device's default stream: the worker's device-to-host copy runs on that same
    (legacy default) stream, so it is ordered after the copy already. On another stream, an event recorded
    behind the copy (no synchronisation here); the worker waits on it. Every CUDA call counts on the caller's
    thread (each is tens of microseconds on some virtualised GPUs), so the common case makes none.
    """
    if head.device.type != "cuda":
        return None
    import torch  # loaded already: ``head`` is a torch tensor

    if torch.cuda.current_stream(head.device) == torch.cuda.default_stream(head.device):
        return None
    # ``Event.__init__`` is untyped in torch: the constructor is taken as what it makes.
    new_event: Callable[[], _RecordedEvent] = torch.cuda.Event
    event = new_event()
    event.record()
    return event


def _render_rows(data: _RowsData) -> object:
    head, type_name, shape, dtype, device, rows, start, event = data
    if event is not None:
        event.synchronize()  # the worker waits for the caller's stream, whichever stream that was
    array = as_array(head)
    columns = input_columns(array, start)
    meta: dict[str, object] = {"type": type_name, "shape": shape, "dtype": dtype, "device": device, "rows": rows}
    if len(shape) == 2:
        meta.update(schema_meta((type_name, shape[1], dtype), positional_names(shape[1]), [dtype] * shape[1]))
        meta["truncated"] = shape[0] > len(rows) or shape[1] > array.shape[1]
    else:  # descriptors: every one in every span
        kinds = [str(getattr(values, "dtype", "float64")) for values in columns.values()]
        meta.update(schema_meta((type_name, "descriptors", tuple(columns), tuple(kinds)), columns, kinds))
        meta["truncated"] = shape[0] > len(rows)
    return {"sample": records(columns), "_meta": meta}


def sampled_array(
    head: object, type_name: str, shape: Sequence[int], dtype: str, device: str, rows: list[int], start: int = 0
) -> Captured:
    """The sampled rows ``rows`` of an input of ``shape``, already copied to ``head`` (numpy: all of a row, or
    for a table the window of columns from ``start``), rendered as the columns drift profiles."""
    data = (head, type_name, list(shape), dtype, device, rows, start, None)
    return Captured(_render_rows, data, int(shape[0]), int(getattr(head, "nbytes", 256)) + 64)


def _render_torch_scalar(data: tuple[torch.Tensor, Synchronizable | None]) -> object:
    head, event = data
    if event is not None:
        event.synchronize()
    return head.tolist()


def _render_vector(data: tuple[object, str, list[int], str, str, Synchronizable | None]) -> object:
    head, type_name, shape, dtype, device, event = data
    if event is not None:
        event.synchronize()
    values = as_array(head).tolist()
    meta = {"type": type_name, "shape": shape, "dtype": dtype, "device": device, "truncated": shape[0] > len(values)}
    return {"sample": values, "_meta": meta}


def _device_rows(total: int, rows: int) -> list[int]:
    """Rows of a tensor on an accelerator: a block of consecutive rows at a random offset. A slice costs no
    synchronisation, where gathering scattered rows would copy an index to the device first."""
    if total <= rows:
        return list(range(total))
    offset = random.randrange(total - rows + 1)
    return list(range(offset, offset + rows))


_torch_dtypes: dict[torch.dtype, str] = {}


def _torch_dtype(dtype: torch.dtype) -> str:
    name = _torch_dtypes.get(dtype)
    if name is None:
        name = _torch_dtypes[dtype] = str(dtype).removeprefix("torch.")
    return name


def capture_torch(value: torch.Tensor, rows: int, columns: int) -> Captured:
    try:
        # The common case, a CPU tensor outside autograd: its numpy view is free, and numpy's indexing and
        # copying cost a fraction of torch's per-operation dispatch (and of reading torch's device and shape).
        array = value.numpy()
    except (TypeError, RuntimeError):  # on an accelerator, needing grad, or a dtype numpy lacks (bfloat16)
        array = None
    if array is not None and array.ndim:
        shape = list(array.shape)
        start, stop = column_window(shape[1], columns) if len(shape) == 2 else (0, 0)
        return _array_capture(array, "torch.Tensor", shape, _torch_dtype(value.dtype), "cpu", rows, start, stop)
    shape = list(value.shape)
    device = str(value.device)
    dtype = _torch_dtype(value.dtype)
    detached = value.detach()
    if not shape:
        head = detached.clone()  # .item() would synchronise an accelerator: the worker reads it
        return Captured(_render_torch_scalar, (head, torch_copy_ready_event(head)), 1, 16)
    total = shape[0]
    start, stop = column_window(shape[1], columns) if len(shape) == 2 else (0, 0)
    if device == "cpu":
        try:
            array = detached.numpy()  # a tensor that needs grad
        except (TypeError, RuntimeError):
            pass
        else:
            return _array_capture(array, "torch.Tensor", shape, dtype, device, rows, start, stop)
    if len(shape) == 1:  # a vector: its first values, as numpy's
        picked = list(range(min(total, rows)))
        block = detached[:rows]
    elif device == "cpu":
        picked = random_rows(total, rows)
        block = detached[picked] if len(picked) < total else detached
    else:
        picked = _device_rows(total, rows)
        block = detached[picked[0] : picked[-1] + 1] if picked else detached[:0]
    if len(shape) == 2:
        block = block[:, start:stop]
    # clone(): later in-place edits of the caller's tensor must not change the sample. On an accelerator the
    # clone is queued on the device (no synchronisation); the worker copies it to the host.
    head = block.clone()
    event = torch_copy_ready_event(head)
    nbytes = head.element_size() * head.nelement() + 64
    if len(shape) == 1:
        return Captured(_render_vector, (head, "torch.Tensor", shape, dtype, device, event), total, nbytes)
    return Captured(_render_rows, (head, "torch.Tensor", shape, dtype, device, picked, start, event), total, nbytes)


def _array_capture(
    array: Array, type_name: str, shape: list[int], dtype: str, device: str, rows: int, start: int, stop: int
) -> Captured:
    """The sampled rows of a host array (a numpy view of a tensor): random rows, a table's column window."""
    total = shape[0]
    if array.ndim == 1:
        head = array[:rows].copy()
        return Captured(_render_vector, (head, type_name, shape, dtype, device, None), total, head.nbytes + 64)
    picked = random_rows(total, rows)
    window = array[:, start:stop] if array.ndim == 2 else array
    # take() copies the drawn rows (faster than fancy indexing); every row: one plain copy.
    head = window.copy() if len(picked) == total else window.take(picked, axis=0)
    data = (head, type_name, shape, dtype, device, picked, start, None)
    return Captured(_render_rows, data, total, head.nbytes + 64)


def tensorflow_rows(value: tf.Tensor, rows: int) -> Array:
    """The first ``rows`` rows of a TensorFlow tensor as numpy, without copying the rest to the host.

    On the CPU ``.numpy()`` is a view of the tensor's buffer, and numpy slicing is free, where a TensorFlow
    slice op costs tens of microseconds. On an accelerator, slice on the device first, then copy the slice.
    """
    device = str(getattr(value, "device", ""))
    head: Array = value.numpy()[:rows] if "GPU" not in device and "TPU" not in device else value[:rows].numpy()
    return head


def capture_tensorflow(value: tf.Tensor, rows: int, columns: int) -> Captured:
    shape = [int(d) if d is not None else -1 for d in value.shape]
    if not shape:
        return Captured(render_as_is, value.numpy().item(), 1, 16)
    device = str(getattr(value, "device", ""))
    dtype = value.dtype.name
    start, stop = column_window(shape[1], columns) if len(shape) == 2 else (0, 0)
    if "GPU" not in device and "TPU" not in device:
        return _array_capture(value.numpy(), "tensorflow.Tensor", shape, dtype, device, rows, start, stop)
    picked = _device_rows(shape[0], rows)
    block = value[picked[0] : picked[-1] + 1] if picked else value[:0]
    if len(shape) == 2:
        block = block[:, start:stop]
    head = block.numpy()  # slice on the device, then copy the slice only
    if len(shape) == 1:
        return Captured(_render_vector, (head, "tensorflow.Tensor", shape, dtype, device, None), shape[0], head.nbytes)
    data = (head, "tensorflow.Tensor", shape, dtype, device, picked, start, None)
    return Captured(_render_rows, data, max(shape[0], 0), head.nbytes + 64)
