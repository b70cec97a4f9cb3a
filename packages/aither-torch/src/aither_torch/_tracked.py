"""The objects ``aither.wrap`` returns for torch models."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aither.integrations import ModelLogger, TrackedModel

from ._embeddings import attach_embeddings, detach_embeddings
from ._hooks import attach, record_call
from ._require import require_torch

if TYPE_CHECKING:
    from torch.nn import Module
    from torch.utils.hooks import RemovableHandle

__all__ = ["TrackedCall", "TrackedModule"]

logger_ = logging.getLogger("aither")


class TrackedModule(TrackedModel):
    """A hooked ``torch.nn.Module``: every call of the module is logged, through this object or not.

    ``tracked(x)``, ``tracked.predict(x)`` and ``module(x)`` each log one ``forward`` span. Every other
    attribute is the module's (``tracked.model`` is the module itself). ``unwrap()`` removes the hooks.
    """

    _logged_methods = frozenset()  # the hooks log; passthrough methods must not log a second time

    model: Module

    def __init__(self, model: Module, logger: ModelLogger) -> None:
        torch = require_torch()
        super().__init__(model, logger)
        state, hook_handles = attach(torch, model, logger)
        handles: tuple[RemovableHandle, ...] = hook_handles
        detach_embeddings(model)  # wrapping again replaces an earlier wrap's embedding hook
        if logger.options.embeddings:
            try:
                handles = (*handles, attach_embeddings(model, state, logger.options.embeddings))
            except (ValueError, AttributeError) as exc:  # no such layer: the calls are logged, without embeddings
                logger_.warning("aither: %r is logged without embeddings: %s", logger.identity.name, exc)
        object.__setattr__(self, "_handles", handles)

    _handles: tuple[RemovableHandle, ...]

    # The module's own output (a tensor, a tuple, a ModelOutput...): the caller reads it, so it stays untyped.
    def __call__(self, *args: object, **kwargs: object) -> Any:
        return self.model(*args, **kwargs)

    def predict(self, *args: object, **kwargs: object) -> Any:
        """The module's own ``predict`` if it has one, else ``module(*args, **kwargs)``: logged once either way."""
        own = getattr(self.model, "predict", None)
        if callable(own):
            return own(*args, **kwargs)
        return self.model(*args, **kwargs)

    def unwrap(self) -> Module:
        """Remove this wrapper's hooks and return the module; ``module(x)`` is no longer logged."""
        for handle in self._handles:
            handle.remove()
        return self.model

    def __repr__(self) -> str:
        return f"<aither tracked {self._aither.identity.name!r} (torch hooks): {self.model!r}>"


class TrackedCall(TrackedModel):
    """A TorchScript module or function, which cannot take Python hooks: only calls through this object log.

    ``tracked(x)``, ``tracked.predict(x)`` and ``tracked.forward(x)`` log a ``forward`` span; calling the
    scripted object directly does not.
    """

    _logged_methods = frozenset()

    def __call__(self, *args: object, **kwargs: object) -> Any:
        return record_call(self._aither, self.model, args, kwargs)

    def predict(self, *args: object, **kwargs: object) -> Any:
        return record_call(self._aither, self.model, args, kwargs)

    def forward(self, *args: object, **kwargs: object) -> Any:
        return record_call(self._aither, self.model.forward, args, kwargs)

    def __repr__(self) -> str:
        return (
            f"<aither tracked {self._aither.identity.name!r} (TorchScript, calls through the wrapper): {self.model!r}>"
        )
