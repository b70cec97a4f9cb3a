"""Embeddings of a wrapped pipeline (``aither.wrap(pipe, name=..., embeddings=True)``), from its own forward passes.

A forward hook on one module of the pipeline's torch model keeps references to that module's hidden states (and
the attention mask it was given) while a tracked call runs; nothing is computed or copied there. When the call
returns, core's ``capture_embeddings`` indexes the sampled rows out of them (a copy of those rows) and the worker
pools them (the mean over the tokens the mask keeps) and projects them. Which module:

* ``embeddings=True``: the model's ``base_model`` (the encoder under the task head: ``bert`` of a
  ``BertForSequenceClassification``), its ``last_hidden_state`` averaged over the real tokens;
* ``embeddings="bert.pooler"``: that submodule's output (``model.get_submodule``), its first tensor.

A pipeline runs one forward pass per batch (``batch_size``, 1 by default): the hook keeps at most
``sample_rows`` passes per call (a reservoir over the passes), so a call on 10,000 texts holds a few tensors,
not 10,000. :func:`embeddings` computes the same vectors for a reference set. torch models only: a TensorFlow
pipeline is logged without embeddings (a warning says so).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeGuard, cast

from aither.integrations import (
    Captured,
    capture_embeddings,
    first_tensor,
    is_torch_tensor,
    pooled,
    remove_forward_hooks,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from torch import Tensor
    from torch.nn import Module
    from torch.utils.hooks import RemovableHandle
    from transformers import Pipeline

__all__ = ["EmbeddingCollector", "attach", "detach", "embeddings"]


def _is_torch_model(model: object) -> TypeGuard[Module]:
    return hasattr(model, "register_forward_hook")


def _layer(model: object, choice: bool | str) -> Module:
    if not _is_torch_model(model):
        raise ValueError(f"embeddings need a torch model, and this pipeline's is {type(model).__name__}")
    if isinstance(choice, str):
        return model.get_submodule(choice)
    base: Module = getattr(model, "base_model", model)
    return base


class EmbeddingCollector:
    """The forward hook (``with_kwargs=True``) and what it keeps, per thread, during a tracked call."""

    __slots__ = ("_local", "keep")

    def __init__(self, keep: int) -> None:
        self.keep = max(1, keep)
        self._local = threading.local()

    def start(self) -> None:
        self._local.parts = []
        self._local.seen = 0

    def stop(self) -> None:
        self._local.parts = None

    def take(self, rows: int) -> Captured | None:
        """The sampled rows of the passes kept since :meth:`start` (caller's thread), and stop keeping."""
        parts: list[tuple[Tensor, Tensor | None]] | None = getattr(self._local, "parts", None)
        self._local.parts = None
        if not parts:
            return None
        return capture_embeddings(parts, rows)

    def __call__(self, module: Module, args: tuple[object, ...], kwargs: dict[str, object], output: object) -> None:
        local = self._local
        parts = getattr(local, "parts", None)
        if parts is None:  # not inside a tracked call of this thread
            return
        try:
            hidden = first_tensor(output)
            if hidden is None:
                return
            given = kwargs.get("attention_mask") if getattr(hidden, "ndim", 0) == 3 else None
            mask = given if is_torch_tensor(given) else None
            local.seen += 1
            if len(parts) < self.keep:
                parts.append((hidden, mask))
            else:  # a reservoir over the passes: each stays with probability keep / seen
                slot = random.randrange(local.seen)
                if slot < self.keep:
                    parts[slot] = (hidden, mask)
        except Exception:  # telemetry never breaks a forward pass
            pass

    # torch.save(pipe.model) pickles its hooks: keep the setting, not the thread's tensors.
    def __reduce__(self) -> tuple[type[EmbeddingCollector], tuple[int]]:
        return (type(self), (self.keep,))


def detach(model: object) -> None:
    """Remove every aither embedding hook from ``model`` and its submodules."""
    if not _is_torch_model(model):  # no torch model (TensorFlow, none): no hooks to remove
        return
    for sub in model.modules():
        remove_forward_hooks(sub, EmbeddingCollector)


def attach(pipe: object, choice: bool | str, keep: int) -> EmbeddingCollector:
    """Hook the embedding module of ``pipe``'s model, replacing an earlier wrap's hook; ValueError without one."""
    model = getattr(pipe, "model", None)
    layer = _layer(model, choice)
    detach(model)
    collector = EmbeddingCollector(keep)
    layer.register_forward_hook(collector, with_kwargs=True)
    return collector


def embeddings(
    pipe: Pipeline, inputs: Sequence[object], layer: bool | str = True, **call_options: object
) -> npt.NDArray[np.float64]:
    """The pooled vectors (a numpy array, one row per input) a pipeline wrapped with ``embeddings=layer``
    captures, for every input: for ``aither.log_reference(..., embeddings=)``. Runs the pipeline itself (its own
    preprocessing and batching: ``batch_size=`` and other options pass through); these calls are not logged."""
    import numpy as np

    from ._tracked import TrackedPipeline

    plain = pipe.unwrap() if isinstance(pipe, TrackedPipeline) else pipe
    target = _layer(plain.model, layer)
    found: list[npt.NDArray[np.float64]] = []

    def keep(_: Module, args: tuple[object, ...], kwargs: dict[str, object], output: object) -> None:
        hidden = first_tensor(output)
        if hidden is not None:
            # transformers passes the token mask as a tensor (or not at all)
            mask = cast("Tensor | None", kwargs.get("attention_mask")) if hidden.ndim == 3 else None
            found.append(pooled(hidden.detach().float().cpu().numpy(), None if mask is None else mask.cpu().numpy()))

    handle: RemovableHandle = target.register_forward_hook(keep, with_kwargs=True)
    try:
        plain(list(inputs), **call_options)
    finally:
        handle.remove()
    if not found:
        raise ValueError("the embedding layer did not run on these inputs")
    return np.concatenate(found)
