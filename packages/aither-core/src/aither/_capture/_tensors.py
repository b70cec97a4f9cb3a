"""Samplers of tensors: torch (on any device, without synchronising it) and TensorFlow."""

from __future__ import annotations

from typing import Any

from ._captured import Captured, render_as_is
from ._tables import numpy_head, width

__all__ = ["capture_tensorflow", "capture_torch", "tensorflow_rows", "torch_copy_ready_event"]


def _render_tensor(data: tuple[Any, str, list[int], str, str]) -> Any:
    head, type_name, shape, dtype, device = data
    values = head.tolist()  # torch (from any device) and numpy both copy to host Python values here
    rows_kept = len(values) if isinstance(values, list) else 1
    width_kept = len(values[0]) if rows_kept and isinstance(values, list) and isinstance(values[0], list) else 0
    truncated = bool(shape) and (shape[0] > rows_kept or (len(shape) > 1 and width(tuple(shape)) > width_kept))
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


def capture_torch(value: Any, rows: int, columns: int) -> Captured:
    shape = list(value.shape)
    device = str(value.device)
    dtype = str(value.dtype).removeprefix("torch.")
    if shape and device == "cpu":
        try:
            # On the CPU a tensor's numpy view is free, and numpy's slicing and copying cost a fraction of
            # torch's per-operation dispatch; dtypes numpy lacks (bfloat16) raise and take the torch path.
            array = numpy_head(value.detach()[:rows].numpy(), columns)
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


def tensorflow_rows(value: Any, rows: int) -> Any:
    """The first ``rows`` rows of a TensorFlow tensor as numpy, without copying the rest to the host.

    On the CPU ``.numpy()`` is a view of the tensor's buffer, and numpy slicing is free, where a TensorFlow
    slice op costs tens of microseconds. On an accelerator, slice on the device first, then copy the slice.
    """
    device = str(getattr(value, "device", ""))
    if "GPU" not in device and "TPU" not in device:
        return value.numpy()[:rows]
    return value[:rows].numpy()


def capture_tensorflow(value: Any, rows: int, columns: int) -> Captured:
    shape = [int(d) if d is not None else -1 for d in value.shape]
    if not shape:
        return Captured(render_as_is, value.numpy().item(), 1, 16)
    head = tensorflow_rows(value, rows)
    head = head.reshape(head.shape[0], -1)[:, :columns] if head.ndim > 1 else head
    captured = (head.copy(), "tensorflow.Tensor", shape, value.dtype.name, str(getattr(value, "device", "")))
    return Captured(_render_tensor, captured, max(shape[0], 0), head.nbytes + 64)
