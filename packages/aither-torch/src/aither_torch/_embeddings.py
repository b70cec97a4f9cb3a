"""Embeddings of a wrapped module (``aither.wrap(model, name=..., embeddings=True)``), from its own forward pass.

A hook on one layer keeps a reference to that layer's tensor while a logged call runs (nothing is computed or
copied there); when the call ends the forward hook of ``_hooks`` draws the sampled rows (core's
``capture_embeddings``: an index into the tensor) and the worker pools and projects them. Which tensor:

* ``embeddings=True``: the input of the module's last ``nn.Linear`` (in registration order): the features
  the output head reads, for a classifier or a regressor.
* ``embeddings="encoder.layer2"``: the output of that submodule (``module.get_submodule``): its first tensor
  when it returns a tuple, ``last_hidden_state`` when it returns a transformers ``ModelOutput``. A 3-D output
  (rows, tokens, width) is averaged over its tokens on the worker.

:func:`embeddings` computes the same vectors for a reference set, for ``aither.log_reference(..., embeddings=)``.
Like ``_hooks``, this module does not import torch at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aither.integrations import first_tensor, pooled, remove_forward_hooks

from ._hooks import HookState

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from torch import Tensor
    from torch.nn import Module
    from torch.utils.hooks import RemovableHandle

    from ._tracked import TrackedModule

__all__ = ["EmbeddingHook", "attach_embeddings", "detach_embeddings", "embedding_layer", "embeddings"]

#: Rows run at a time by :func:`embeddings`.
CHUNK_ROWS = 256


def embedding_layer(module: Module, choice: bool | str) -> tuple[Module, bool]:
    """``(layer, take_input)``: the layer whose tensor is the embedding, and whether it is the layer's input."""
    import torch

    if isinstance(choice, str):
        return module.get_submodule(choice), False
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError(
            f"embeddings=True takes the input of the last nn.Linear, and {type(module).__name__} has none:"
            " name a layer (embeddings='encoder')"
        )
    return linears[-1], True


class EmbeddingHook:
    """A forward pre-hook (input) or forward hook (output) on the embedding layer; picklable, like ``_hooks``'."""

    __slots__ = ("state",)

    def __init__(self, state: HookState) -> None:
        self.state = state

    def __call__(self, module: Module, args: tuple[object, ...], output: object = None) -> None:
        try:
            state = self.state
            if not state.frames():  # only inside a logged call of the wrapped module
                return
            tensor = first_tensor(args if output is None else output)
            if tensor is not None:
                state.embedding_parts().append((tensor, None))
        except Exception:  # telemetry never breaks a forward pass
            pass

    def __reduce__(self) -> tuple[type[EmbeddingHook], tuple[HookState]]:
        return (type(self), (self.state,))


def attach_embeddings(module: Module, state: HookState, choice: bool | str) -> RemovableHandle:
    """Hook the embedding layer of ``module`` for ``state`` (a ``HookState``); returns the handle."""
    layer, take_input = embedding_layer(module, choice)
    detach_embeddings(module)
    hook = EmbeddingHook(state)
    if take_input:
        return layer.register_forward_pre_hook(hook, prepend=True)
    return layer.register_forward_hook(hook, prepend=True)


def detach_embeddings(module: Module) -> None:
    """Remove every aither embedding hook from ``module`` and its submodules."""
    for sub in module.modules():
        remove_forward_hooks(sub, EmbeddingHook)


def embeddings(
    model: Module | TrackedModule, data: Tensor | npt.ArrayLike, layer: bool | str = True
) -> npt.NDArray[np.float64]:
    """The pooled vectors (a numpy array, rows by width) a model wrapped with ``embeddings=layer`` captures, for
    every row of ``data`` (a tensor or array, rows first): for ``aither.log_reference(..., embeddings=)``.

    Runs the module's ``forward`` under ``torch.no_grad()``, :data:`CHUNK_ROWS` rows at a time; these calls are
    not logged as predictions. ``model`` may be the tracked model or the module."""
    import numpy as np
    import torch

    module = model if isinstance(model, torch.nn.Module) else model.model
    target, take_input = embedding_layer(module, layer)
    tensor = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    found: list[Tensor] = []

    def keep(_: Module, args: tuple[object, ...], output: object = None) -> None:
        value = first_tensor(args if output is None else output)
        if value is not None:
            found.append(value.detach().cpu())

    chunks = []
    with torch.no_grad():
        for start in range(0, int(tensor.shape[0]), CHUNK_ROWS):
            batch = tensor[start : start + CHUNK_ROWS]
            found.clear()
            if target is module:  # the module is the layer: its own input or output, no hook needed
                value = first_tensor(batch if take_input else module.forward(batch))
                if value is not None:
                    found.append(value.detach().cpu())
            else:
                handle = target.register_forward_pre_hook(keep) if take_input else target.register_forward_hook(keep)
                try:
                    module.forward(batch)  # forward(), not __call__: the wrapper's hooks do not log it
                finally:
                    handle.remove()
            if found:
                chunks.append(pooled(found[-1].float().numpy()))
    if not chunks:
        raise ValueError("the embedding layer did not run on data")
    return np.concatenate(chunks)
