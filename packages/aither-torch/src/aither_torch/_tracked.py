"""The objects ``aither.wrap`` returns for torch models."""

from __future__ import annotations

import logging
from typing import Any

from aither.integrations import ModelLogger, TrackedModel

from ._embeddings import attach_embeddings, detach_embeddings
from ._hooks import attach, record_call
from ._require import require_torch

__all__ = ["TrackedCall", "TrackedModule"]

logger_ = logging.getLogger("aither")


class TrackedModule(TrackedModel):
    """A hooked ``torch.nn.Module``: every call of the module is logged, through this object or not.

    ``tracked(x)``, ``tracked.predict(x)`` and ``module(x)`` each log one ``forward`` span. Every other
    attribute is the module's (``tracked.model`` is the module itself). ``unwrap()`` removes the hooks.
    """

    _logged_methods = frozenset()  # the hooks log; passthrough methods must not log a second time

    def __init__(self, model: Any, logger: ModelLogger) -> None:
        torch = require_torch()
        super().__init__(model, logger)
        handles: tuple[Any, ...] = attach(torch, model, logger)
        detach_embeddings(model)  # wrapping again replaces an earlier wrap's embedding hook
        if logger.options.embeddings:
            state = model._forward_hooks[handles[1].id].state  # the HookState the two hooks share
            try:
                handles = (*handles, attach_embeddings(model, state, logger.options.embeddings))
            except (ValueError, AttributeError) as exc:  # no such layer: the calls are logged, without embeddings
                logger_.warning("aither: %r is logged without embeddings: %s", logger.identity.name, exc)
        object.__setattr__(self, "_handles", handles)

    _handles: tuple[Any, ...]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """The module's own ``predict`` if it has one, else ``module(*args, **kwargs)``: logged once either way."""
        own = getattr(self.model, "predict", None)
        if callable(own):
            return own(*args, **kwargs)
        return self.model(*args, **kwargs)

    def unwrap(self) -> Any:
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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return record_call(self._aither, self.model, args, kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        return record_call(self._aither, self.model, args, kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return record_call(self._aither, self.model.forward, args, kwargs)

    def __repr__(self) -> str:
        return (
            f"<aither tracked {self._aither.identity.name!r} (TorchScript, calls through the wrapper): {self.model!r}>"
        )
