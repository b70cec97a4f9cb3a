"""Sampling tinygrad Tensors, entirely on the calling thread.

tinygrad is not thread-safe: realising a Tensor on aither's worker while the caller builds or realises other
Tensors corrupts tinygrad's global state (verified with tinygrad 0.14: wrong-view errors on the worker and
assertion errors in the caller). So every read of tinygrad data happens here, on the caller's thread, and the
worker only turns the resulting numpy arrays into JSON.

* Inputs: only the first ``sample_rows`` rows are read (rendered by core as any array's sampled rows: one
  column per feature of a 2-D Tensor, descriptors of images and sequences). When the Tensor is backed by a
  realised buffer (a Tensor made from numpy, a realised Tensor, or a reshape of one) those rows are copied
  straight out of the buffer (microseconds, no kernel); otherwise those rows alone are realised as a private
  Tensor (one small kernel; tinygrad's scheduling makes it cost a millisecond or more), never the whole input,
  and the caller's Tensor stays lazy.
* Outputs are returned untouched and stay lazy. A realised output (``TinyJit`` returns realised Tensors) is
  recorded with its values; a lazy one by its shape, dtype and device only, unless the model was wrapped with
  ``realize_output=True``, which realises the whole output once on the calling thread (no extra compute: the
  caller's later ``.numpy()`` reuses the buffer, but the output can no longer fuse into the caller's next ops).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, TypedDict, TypeGuard, overload

from aither.integrations import (
    Captured,
    bounded_prediction,
    capture_prediction,
    column_window,
    render_as_is,
    render_fields,
    render_items,
    sampled_array,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tinygrad import Tensor
    from tinygrad.device import Buffer
    from tinygrad.dtype import DType
    from tinygrad.uop import Ops
    from tinygrad.uop.ops import UOp

    #: A Tensor's values read into numpy (tinygrad's dtypes are numbers and booleans).
    _Values = npt.NDArray[np.number | np.bool_]

__all__ = ["capture_output", "capture_tensor", "is_tensor"]


def is_tensor(value: object) -> TypeGuard[Tensor]:
    cls = type(value)
    return cls.__name__ == "Tensor" and cls.__module__.partition(".")[0] == "tinygrad"


def _shape(tensor: Tensor) -> list[int]:
    """The shape, with symbolic dimensions (``Variable``) as -1."""
    return [d if isinstance(d, int) else -1 for d in tensor.shape]


# tinygrad DType -> (numpy dtype or None, name for ``_meta``): looked up on every call, computed once per dtype.
_dtypes: dict[DType, tuple[type | None, str]] = {}


def _np_dtype(dtype: DType) -> tuple[type | None, str]:
    known = _dtypes.get(dtype)
    if known is not None:
        return known
    np_dtype: type | None = None
    np = _tinygrad().np
    try:
        from tinygrad.dtype import _to_np_dtype

        np_dtype = _to_np_dtype(dtype)
    except Exception:
        pass
    # numpy's canonical name ("int64", not the scalar type's "longlong")
    name = np.dtype(np_dtype).name if np_dtype is not None else str(getattr(dtype, "name", dtype))
    known = (np_dtype, name)
    if len(_dtypes) < 256:
        _dtypes[dtype] = known
    return known


class _Meta(TypedDict):
    """``_meta`` of a sampled or described Tensor."""

    type: str
    shape: list[int]
    dtype: str
    device: str


def _meta(tensor: Tensor, shape: list[int]) -> _Meta:
    return {"type": "tinygrad.Tensor", "shape": shape, "dtype": _np_dtype(tensor.dtype)[1], "device": _device(tensor)}


class _Tinygrad:
    """tinygrad's names used on every call, imported once (the first time a Tensor is sampled: tinygrad is
    loaded by then) instead of by an import statement per call."""

    def __init__(self) -> None:
        import numpy
        from tinygrad.uop import Ops

        self.np = numpy
        self.buffer_op = Ops.BUFFER
        self.views = (Ops.RESHAPE, Ops.COPY)
        # Ops whose device tinygrad does not take from their first source with a device (UOp.device): left to
        # tinygrad's own property. getattr: not every supported version has every op.
        names = ("PARAM", "STAGE", "AFTER", "MSELECT", "MSTACK", "BUFFER", "COPY", "ALLREDUCE", "UNSHARD")
        self.own_device = frozenset(op for op in (getattr(Ops, name, None) for name in names) if op is not None)
        self.contiguous = Ops.CONTIGUOUS
        # tinygrad's realise without its pass over every live Tensor, where available
        self.realize: Callable[[UOp, dict[str, int]], object] | None = None
        try:
            from tinygrad.dtype import dtypes
            from tinygrad.engine import realize as engine
            from tinygrad.schedule import create_linear_with_vars
            from tinygrad.tensor import transform_to_call
            from tinygrad.uop import GroupOp

            # Ops without side effects or realisation points of their own: elementwise math, movement,
            # reductions, constants and buffers. Not AFTER/STORE (an assign, Tensor.rand's counter), COPY or
            # CONTIGUOUS (a buffer the caller's own realise would then compute again), CALL, multi-device.
            plain = ("BUFFER", "CONST", "STACK", "CAST", "BITCAST", "REDUCE", "DETACH")
            named = frozenset(op for op in (getattr(Ops, name, None) for name in plain) if op is not None)
            self.private_ops = frozenset(GroupOp.ALU | GroupOp.Movement) | named
            self.weaks = frozenset(dtypes.weaks)
            self.engine = engine
            self.transform = transform_to_call
            self.schedule = create_linear_with_vars
            self.realize = engine.run_linear
        except (ImportError, AttributeError, TypeError):
            pass


_DEVICE_CACHE = "_RECURSIVE_PROPERTY_device"  # where tinygrad 0.14 caches UOp.device on each node
_DEVICE_DEPTH = 256


def _device(tensor: Tensor) -> str:
    """``str(tensor.device)`` without its cost on a fresh lazy graph.

    ``UOp.device`` is a cached recursive property: on a graph the model just built it walks every new node
    (~90 µs for a 3-layer MLP, per call, as every call builds a new graph). tinygrad's rule is "the device of
    the first source that has one" for all but a few ops, so following sources depth-first until a node whose
    device is known gives the same answer in a few nodes (typically down to the input's buffer).
    """
    try:
        found = _first_device(tensor.uop, _tinygrad().own_device, 0)
    except Exception:  # another tinygrad version: its own property
        found = _NO_ANSWER
    return str(tensor.device if found is _NO_ANSWER else found)


_NO_ANSWER = object()


def _first_device(uop: UOp, own_device: frozenset[Ops], depth: int) -> object:
    cached = getattr(uop, "__dict__", {}).get(_DEVICE_CACHE, _NO_ANSWER)
    if cached is not _NO_ANSWER:
        return cached
    if uop.op in own_device or depth > _DEVICE_DEPTH:
        return uop.device  # tinygrad's own property (cheap here: a buffer, a copy, or a deep graph's rare case)
    for source in uop.src:
        device = _first_device(source, own_device, depth + 1)
        if device is not None:
            return device
    return None


_names: list[_Tinygrad] = []


def _tinygrad() -> _Tinygrad:
    if not _names:
        _names.append(_Tinygrad())
    return _names[0]


def _is_buffer(value: object) -> TypeGuard[Buffer]:
    """A single device's buffer (one that can be viewed), not a multi-device one."""
    return hasattr(value, "view")


def _buffer_prefix(tensor: Tensor, rows: int, columns: int | None) -> _Values | None:
    """The first ``rows`` rows (each cut to ``columns`` values) read straight from a realised buffer, or None.

    Only when the Tensor is its buffer seen through reshapes and device copies (row-major, offset 0), so its
    first rows are the buffer's first bytes; anything else (a slice, a permute, a lazy computation) gives None.
    Schedules no kernel: a host-visible buffer (CPU, numpy-backed) is read in place through its memoryview
    and only the kept values are copied; on other devices only the first rows' bytes are copied to the host.
    """
    tg = _tinygrad()
    uop = tensor.uop
    while uop.op in tg.views:
        uop = uop.src[0]
    if uop.op is not tg.buffer_op:
        return None
    buffer = uop.realized
    np_dtype = _np_dtype(tensor.dtype)[0]
    shape = tensor.shape
    if buffer is None or not _is_buffer(buffer) or np_dtype is None or buffer.dtype != tensor.dtype:
        return None
    if not all(isinstance(d, int) for d in shape) or buffer.size != math.prod(shape):
        return None
    width = math.prod(shape[1:]) if len(shape) > 1 else 1
    count = rows * width
    if count == 0:
        empty: _Values = tg.np.zeros((0, *shape[1:]), dtype=np_dtype)
        return empty
    flat = _read(buffer, count, np_dtype)
    if columns is None:
        head: _Values = flat.reshape(rows, *shape[1:]).copy()
    elif len(shape) == 1:
        head = flat.copy()
    else:
        head = flat.reshape(rows, width)[:, :columns].copy()
    return head


def _read(buffer: Buffer, count: int, np_dtype: type) -> _Values:
    """The first ``count`` values of a realised buffer, as a numpy view valid while ``buffer`` lives."""
    if hasattr(buffer.allocator, "_as_buffer"):
        # Zero-copy: the whole buffer as a memoryview (after the device finished writing it), no Buffer view
        # allocated; np.frombuffer reads only ``count`` values of it.
        memory = buffer.as_memoryview(allow_zero_copy=True)
    else:
        # A device buffer: copy only the first rows' bytes to the host, never the whole input.
        memory = buffer.view(count, buffer.dtype, 0).ensure_allocated().as_memoryview()
    values: _Values = _tinygrad().np.frombuffer(memory, dtype=np_dtype, count=count)
    return values


def _realize_private(rows: Tensor) -> _Values | None:
    """Compute ``rows`` (a CONTIGUOUS Tensor only this module refers to) and read it, or None.

    ``Tensor.realize`` ends with a pass over every live Tensor of the process, to point those that share
    realised nodes at the new buffers; its cost grows with the caller's program (about 0.7 ms with a small MLP,
    several ms with a few hundred parameter Tensors). No other Tensor can share a node worth pointing at when
    the rows' graph has no side effects and no realisation point but their own CONTIGUOUS, so that pass is
    skipped there: the same schedule is built and run, one kernel. Anything else (an assign, Tensor.rand, a
    copy, a JIT capture in progress, another tinygrad version) gives None, and the public realise is used.
    """
    tg = _tinygrad()
    if tg.realize is None or tg.engine.capturing or rows.dtype in tg.weaks:
        return None
    root = rows.uop
    np_dtype = _np_dtype(rows.dtype)[0]
    if root.op is not tg.contiguous or np_dtype is None:
        return None
    private = tg.private_ops
    if any(node.op not in private for node in root.toposort() if node is not root):
        return None
    sink, buffers = tg.transform(root.sink())  # builds the kernel call; nothing runs or changes yet
    target = buffers.get(root)
    if target is None or len(buffers) != 1:  # a buffer for anything but the rows: leave it to Tensor.realize
        return None
    linear, var_vals = tg.schedule(sink)
    tg.realize(linear, var_vals)
    buffer = target.buffer
    shape = [d for d in rows.shape if isinstance(d, int)]
    # A multi-device buffer, a symbolic dimension: not read here (the caller takes tinygrad's public way).
    if not _is_buffer(buffer) or len(shape) != len(rows.shape):
        raise TypeError(f"cannot read a {type(buffer).__name__} of shape {rows.shape}")
    values: _Values = _read(buffer, math.prod(shape), np_dtype).reshape(shape).copy()
    return values


def _computed_head(tensor: Tensor, rows: int, columns: int | None) -> _Values:
    """The first rows of a lazy Tensor, computed: one small kernel for those rows only, here on the caller's
    thread. ``shrink`` rather than ``tensor[:rows]`` (tinygrad's indexing costs ~0.5 ms of Python), and the
    realised rows are read from their own buffer rather than by ``.numpy()`` (another contiguous + realise
    pass). The caller's Tensor is not realised: realising it in place would stop it fusing into the model."""
    shape = tensor.shape
    if rows == 0:  # an empty batch: nothing to compute (tinygrad's reshape(0, -1) would divide by zero)
        np_dtype = _np_dtype(tensor.dtype)[0]
        if columns is not None and len(shape) > 1:
            empty: _Values = _tinygrad().np.zeros((0, min(columns, math.prod(shape[1:]))), dtype=np_dtype)
        else:
            empty = _tinygrad().np.zeros((0, *shape[1:]), dtype=np_dtype)
        return empty
    sliced = tensor.shrink(((0, rows),) + (None,) * (len(shape) - 1))
    if columns is not None and len(shape) > 1:
        width = math.prod(shape[1:])
        sliced = sliced.reshape(rows, width)
        if columns < width:
            sliced = sliced.shrink((None, (0, columns)))
    sliced = sliced.contiguous()
    head = _realize_private(sliced)
    if head is not None:
        return head
    sliced = sliced.realize()
    head = _buffer_prefix(sliced, rows, None)
    return head if head is not None else sliced.numpy()  # e.g. bfloat16: no numpy view of the buffer


@overload
def _head(tensor: Tensor, rows: int, columns: int | None, *, compute: Literal[True]) -> _Values: ...
@overload
def _head(tensor: Tensor, rows: int, columns: int | None, *, compute: bool) -> _Values | None: ...
def _head(tensor: Tensor, rows: int, columns: int | None, *, compute: bool) -> _Values | None:
    """First rows as numpy: from the buffer when possible, else by realising the slice (if ``compute``)."""
    try:
        head = _buffer_prefix(tensor, rows, columns)
    except Exception:  # tinygrad internals differ (another version): take the documented way
        head = None
    if head is not None or not compute:
        return head
    try:
        head = _computed_head(tensor, rows, columns)
    except Exception:  # another tinygrad version, a weak dtype: the plain public way, as before
        head = None
    if head is None:
        sliced = tensor[:rows]
        if columns is not None and len(tensor.shape) > 1:
            sliced = sliced.reshape(rows, -1)[:, :columns]
        values: _Values = sliced.numpy()  # realises these rows only, here on the calling thread
        return values
    return head


def capture_tensor(tensor: Tensor, rows: int, columns: int) -> Captured:
    """The sampler registered for ``tinygrad.Tensor``: its first ``rows`` rows, as core renders any array's
    sampled rows (``sampled_array``): a 2-D Tensor one column per feature (a window of ``columns`` of them),
    images and sequences their descriptors. A 1-D Tensor keeps its first values."""
    shape = _shape(tensor)
    meta = _meta(tensor, shape)
    if not shape:
        return Captured(render_as_is, {"sample": tensor.item(), "_meta": meta}, 1, 64)
    if shape[0] < 0:  # symbolic batch dimension: no sample
        return Captured(render_as_is, {"sample": [], "_meta": dict(meta, truncated=True)}, 1, 64)
    kept = min(shape[0], rows)
    if len(shape) == 1:
        head = _head(tensor, kept, columns, compute=True)
        return Captured(
            render_as_is, {"sample": head.tolist(), "_meta": dict(meta, truncated=shape[0] > kept)}, shape[0], 64
        )
    start, stop = (0, 0)
    if len(shape) == 2:
        start, stop = column_window(shape[1], columns)
    # Whole rows (a table's are cut to the window below): the descriptors of an image need all of it.
    head = _head(tensor, kept, None, compute=True)
    if len(shape) == 2:
        head = head[:, start:stop]
    return sampled_array(head, "tinygrad.Tensor", shape, meta["dtype"], meta["device"], list(range(kept)), start)


def _capture_tensor_output(tensor: Tensor, limit: int, realize: bool) -> Captured:
    if realize:
        tensor.realize()  # in place: the caller's Tensor keeps its identity, now backed by a buffer
    shape = _shape(tensor)
    if not tensor.uop.is_realized:
        meta = dict(_meta(tensor, shape), realized=False)
        return Captured(render_as_is, {"_meta": meta}, max(shape[0], 1) if shape else 1, 64)
    if not shape:
        return Captured(render_as_is, tensor.item(), 1, 16)
    rows = min(shape[0], limit) if shape[0] >= 0 else 0
    # Realised: a copy out of its buffer, or (a view of one) a copy kernel; the model is never run again.
    head = _head(tensor, rows, None, compute=True)
    return bounded_prediction(head, max(shape[0], 0), int(head.nbytes) + 64)


def capture_output(output: object, limit: int, realize: bool, depth: int = 0) -> Captured:
    """A model output: Tensors per the module docstring, containers item by item, anything else as core does."""
    if is_tensor(output):
        return _capture_tensor_output(output, limit, realize)
    if depth < 3 and isinstance(output, (list, tuple)):
        items = [capture_output(item, limit, realize, depth + 1) for item in output[:limit]]
        rows = items[0].rows if items and is_tensor(output[0]) else len(output)
        return Captured(render_items, (items, len(items)), rows, sum(c.nbytes for c in items) + 64)
    if depth < 3 and isinstance(output, Mapping):
        mapped = {str(k): capture_output(v, limit, realize, depth + 1) for k, v in output.items()}
        rows = next(iter(mapped.values())).rows if mapped else 1
        return Captured(render_fields, mapped, rows, sum(c.nbytes for c in mapped.values()) + 64)
    return capture_prediction(output, limit)
