"""The hooks aither puts on a module, and what they record.

Two picklable hook objects share one :class:`HookState` (``torch.save`` of a whole module pickles its hooks, so
no lambdas or closures): a forward pre-hook notes the start time, a forward hook registered with
``always_call=True`` records the span, also when ``forward`` raised (torch then calls it from inside its
``except`` block with ``output=None``, and the exception is the one being handled).

This module does not import torch at import time.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

from aither.integrations import (
    Captured,
    ModelLogger,
    Synchronizable,
    bounded_prediction,
    capture_embeddings,
    capture_failed,
    capture_prediction,
    inputs_of,
    remove_forward_hooks,
    render_fields,
    render_items,
    torch_copy_ready_event,
)

if TYPE_CHECKING:
    from torch import Tensor
    from torch.nn import Module
    from torch.utils.hooks import RemovableHandle

__all__ = [
    "AitherForwardHook",
    "AitherPreHook",
    "HookState",
    "attach",
    "capture_output",
    "detach",
    "find_hooks",
]

logger = logging.getLogger("aither")

#: Span name of a module call (``model(x)``, ``tracked(x)`` and ``tracked.predict(x)`` alike).
METHOD = "forward"
#: Most tensor elements one output keeps (on top of the row cap): an attribute over 64 KiB is cut anyway, and
#: the copy on the caller's thread must not grow with, say, a language model's vocabulary.
ELEMENT_BUDGET = 4096
#: Most items of a tuple/list/dict output that are captured.
MAX_ITEMS = 32
#: Frames left open by a BaseException (KeyboardInterrupt) are dropped past this depth.
_MAX_DEPTH = 64

_T = TypeVar("_T")


class HookState:
    """What the two hooks of one wrapped module share: its logger, and the open calls of each thread."""

    __slots__ = ("_local", "logger")

    def __init__(self, logger: ModelLogger) -> None:
        self.logger = logger
        self._local = threading.local()

    def embedding_parts(self) -> list[tuple[Tensor, Tensor | None]]:
        """The embedding layer's tensors seen in this thread's open call (``_embeddings.EmbeddingHook``)."""
        try:
            parts: list[tuple[Tensor, Tensor | None]] = self._local.parts
        except AttributeError:
            parts = self._local.parts = []
        return parts

    def frames(self) -> list[tuple[int, BaseException | None]]:
        try:
            frames: list[tuple[int, BaseException | None]] = self._local.frames
        except AttributeError:
            frames = self._local.frames = []
        return frames

    # torch.save(module): keep the logger, not the thread-local stacks.
    def __getstate__(self) -> dict[str, ModelLogger]:
        return {"logger": self.logger}

    def __setstate__(self, state: dict[str, ModelLogger]) -> None:
        self.logger = state["logger"]
        self._local = threading.local()


class AitherPreHook:
    """``register_forward_pre_hook(..., with_kwargs=True, prepend=True)``: notes when the call started."""

    __slots__ = ("state",)

    def __init__(self, state: HookState) -> None:
        self.state = state

    def __call__(self, module: Module, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        if _is_compiling():  # under torch.compile: a graph break, then the body runs eagerly on every call
            return _PRE_EAGER(self.state)
        return _pre(self.state)

    def __reduce__(self) -> tuple[type[AitherPreHook], tuple[HookState]]:
        return (type(self), (self.state,))


class AitherForwardHook:
    """``register_forward_hook(..., with_kwargs=True, always_call=True)``: records the call as one span."""

    __slots__ = ("state",)

    def __init__(self, state: HookState) -> None:
        self.state = state

    def __call__(self, module: Module, args: tuple[object, ...], kwargs: dict[str, object], output: object) -> None:
        if _is_compiling():
            return _POST_EAGER(self.state, args, kwargs, output)
        return _post(self.state, args, kwargs, output)

    def __reduce__(self) -> tuple[type[AitherForwardHook], tuple[HookState]]:
        return (type(self), (self.state,))


def _pre(state: HookState) -> None:
    try:
        frames = state.frames()
        if len(frames) >= _MAX_DEPTH:
            frames.clear()
        # The exception being handled around the call, if any: a *different* one at the end means forward raised.
        frames.append((time.time_ns(), sys.exc_info()[1]))
    except Exception:  # telemetry never breaks a forward pass
        logger.debug("aither: forward pre-hook failed", exc_info=True)


def _post(state: HookState, args: tuple[object, ...], kwargs: dict[str, object], output: object) -> None:
    try:
        frames = state.frames()
        if not frames:
            return
        start_ns, handled_before = frames.pop()
        active = sys.exc_info()[1]
        error = active if output is None and active is not None and active is not handled_before else None
        embeddings = None
        if state.logger.options.embeddings and not frames:  # the outermost call takes the layer's tensors
            parts = state.embedding_parts()
            if parts:
                embeddings = capture_embeddings(parts, state.logger.options.sample_rows)
                parts.clear()
        state.logger.record(
            METHOD,
            inputs_of(args, kwargs),
            output,
            start_ns,
            error=error,
            capture_output=capture_output,
            embeddings=embeddings,
        )
    except Exception:
        logger.debug("aither: forward hook failed", exc_info=True)


def _not_compiling() -> bool:
    return False


# torch.compile: the hook bodies must run eagerly on every call (a traced ``time.time_ns()`` would be a constant).
# While Dynamo traces, ``torch.compiler.is_compiling()`` is True and the hooks call ``torch.compiler.disable``-d
# copies of their bodies: a graph break, so they run as plain Python on every compiled call. In eager mode the
# check is one cheap call and the bodies run directly (the disable wrapper costs ~8 us a call in eager mode).
_is_compiling: Callable[[], bool] = _not_compiling
_PRE_EAGER: Callable[[HookState], None] = _pre
_POST_EAGER: Callable[[HookState, tuple[object, ...], dict[str, object], object], None] = _post
_guarded = False


def install_compiler_guard(torch: ModuleType) -> None:
    global _PRE_EAGER, _POST_EAGER, _guarded, _is_compiling
    if _guarded:
        return
    compiler = getattr(torch, "compiler", None)
    disable = getattr(compiler, "disable", None)
    is_compiling = getattr(compiler, "is_compiling", None)
    if disable is not None and is_compiling is not None:
        _PRE_EAGER = disable(_pre)
        _POST_EAGER = disable(_post)
        _is_compiling = is_compiling
    _guarded = True


def record_call(
    model_logger: ModelLogger, function: Callable[..., _T], args: tuple[object, ...], kwargs: dict[str, object]
) -> _T:
    """Call ``function`` and record it (TorchScript, which has no hooks); its exceptions pass through unchanged."""
    return model_logger.call(METHOD, function, args, kwargs, capture_output=capture_output)


# ------------------------------------------------------------------------------------------------ hooks on modules


def find_hooks(module: Module) -> list[int]:
    """Ids of the aither hooks on ``module``."""
    ids = [i for i, hook in module._forward_pre_hooks.items() if isinstance(hook, AitherPreHook)]
    ids += [i for i, hook in module._forward_hooks.items() if isinstance(hook, AitherForwardHook)]
    return ids


def detach(module: Module) -> None:
    """Remove every aither hook from ``module``."""
    remove_forward_hooks(module, (AitherPreHook, AitherForwardHook))


def attach(
    torch: ModuleType, module: Module, model_logger: ModelLogger
) -> tuple[HookState, tuple[RemovableHandle, RemovableHandle]]:
    """Hook ``module`` for ``model_logger``, replacing earlier aither hooks (wrapping twice logs once): the state
    the two hooks share, and their handles."""
    install_compiler_guard(torch)
    detach(module)
    state = HookState(model_logger)
    pre = module.register_forward_pre_hook(AitherPreHook(state), with_kwargs=True, prepend=True)
    post = module.register_forward_hook(AitherForwardHook(state), with_kwargs=True, always_call=True)
    return state, (pre, post)


# ------------------------------------------------------------------------------------------------ outputs


def capture_output(value: object, limit: int) -> Captured:
    """A bounded copy of a module's output: tensors (sliced on their device, then copied), tuples, lists, dicts."""
    try:
        return _capture_output(value, limit, 0)
    except Exception as exc:
        logger.debug("aither: capturing a %s output failed", type(value).__name__, exc_info=True)
        return capture_failed(value, exc)


def _capture_output(value: object, limit: int, depth: int) -> Captured:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _capture_tensor(torch, value, limit)
    if depth < 3 and isinstance(value, (tuple, list)):
        items = [_capture_output(item, limit, depth + 1) for item in value[:MAX_ITEMS]]
        return Captured(render_items, (items, len(value)), 1, sum(c.nbytes for c in items) + 64)
    if depth < 3 and isinstance(value, Mapping):  # dicts, and transformers-style ModelOutput
        fields = {str(k): _capture_output(v, limit, depth + 1) for k, v in itertools.islice(value.items(), MAX_ITEMS)}
        return Captured(render_fields, fields, 1, sum(c.nbytes for c in fields.values()) + 64)
    return capture_prediction(value, limit)


def _capture_tensor(torch: ModuleType, value: Tensor, limit: int) -> Captured:
    detached = value.detach()
    if detached.dim() == 0:
        head = detached.clone()  # .item() would synchronise an accelerator; the worker reads it
        return _when_ready(head, bounded_prediction(head, 1, 16))
    total = int(detached.shape[0])
    width = 1
    for size in detached.shape[1:]:
        width *= int(size)
    rows = min(total, limit, max(1, ELEMENT_BUDGET // max(width, 1)))
    if detached.device.type == "cpu":
        try:  # numpy's copy of the slice costs a fraction of torch's dispatch; bfloat16 has no numpy view
            array = detached[:rows].numpy().copy()
        except (TypeError, RuntimeError):
            pass
        else:
            return bounded_prediction(array, total, array.nbytes + 64)
    head = detached[:rows].clone()  # slice first, then copy only the slice (queued on the device, no sync)
    return _when_ready(head, bounded_prediction(head, total, head.element_size() * head.nelement() + 64))


def _when_ready(head: Tensor, prediction: Captured) -> Captured:
    """``prediction`` (of ``head``), rendered only once the device copy of ``head`` is done (see core's rule)."""
    event = torch_copy_ready_event(head)
    if event is None:
        return prediction
    return Captured(_render_when_ready, (prediction, event), prediction.rows, prediction.nbytes)


def _render_when_ready(data: tuple[Captured, Synchronizable]) -> object:
    prediction, event = data
    event.synchronize()  # on the worker thread, never the caller's
    return prediction.render(prediction.data)
