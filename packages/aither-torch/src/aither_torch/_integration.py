"""The ``torch`` entry point: which objects the plugin claims, and the torch import guard."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

from aither.integrations import Integration, ModelLogger, WrapOptions

from ._require import require_torch

if TYPE_CHECKING:
    from torch.nn import Module

    from ._tracked import TrackedCall, TrackedModule

__all__ = ["TorchIntegration", "integration", "is_wrapped", "require_torch", "unwrap"]


def _is_scripted(torch: ModuleType, model: object) -> bool:
    return isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction))


class TorchIntegration(Integration):
    """Claims ``torch.nn.Module`` instances (hooked) and TorchScript modules and functions (call-wrapped)."""

    name = "torch"
    modules = ("torch",)

    def claims(self, model: object) -> bool:
        torch = sys.modules.get("torch")  # the model's existence proves torch is imported: never import it here
        if torch is None:
            return False
        from ._tracked import TrackedCall, TrackedModule

        if isinstance(model, (TrackedModule, TrackedCall)):
            return True
        return isinstance(model, torch.nn.Module) or _is_scripted(torch, model)

    def wrap(self, model: object, options: WrapOptions) -> TrackedModule | TrackedCall:
        torch = require_torch()
        from ._tracked import TrackedCall, TrackedModule

        if isinstance(model, (TrackedModule, TrackedCall)):
            model = model.model
        logger = ModelLogger(options, "torch")
        if _is_scripted(torch, model):  # TorchScript has no Python hooks: log the wrapper's own calls
            return TrackedCall(model, logger)
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"aither-torch wraps torch.nn.Module instances and TorchScript, not {type(model).__name__}")
        return TrackedModule(model, logger)


integration = TorchIntegration()


def unwrap(module: Module) -> Module:
    """Remove every aither hook from ``module`` (for instance one loaded with ``torch.load``); returns it."""
    require_torch()
    from ._embeddings import detach_embeddings
    from ._hooks import detach

    detach(module)
    detach_embeddings(module)
    return module


def is_wrapped(module: Module) -> bool:
    """Whether ``module`` carries aither's hooks (``model(x)`` is logged)."""
    require_torch()
    from ._hooks import find_hooks

    return bool(find_hooks(module))
