"""The ``torch`` entry point: which objects the plugin claims, and the torch import guard."""

from __future__ import annotations

import sys
import warnings
from types import ModuleType
from typing import Any

from aither import MissingDependencyError
from aither.integrations import Integration, ModelLogger, WrapOptions

__all__ = ["SUPPORTED_TORCH", "TorchIntegration", "integration", "is_wrapped", "require_torch", "unwrap"]

#: The torch versions this plugin supports (``forward hooks with_kwargs`` and ``always_call`` need 2.0+).
SUPPORTED_TORCH = ">=2.1,<3"
_MINIMUM = (2, 1)
_BELOW = (3, 0)
_warned: set[str] = set()


def _release(version: str) -> tuple[int, int]:
    parts = version.split("+")[0].split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def check_version(version: str) -> bool:
    """Whether ``version`` is supported; warns once (``RuntimeWarning``) when it is not."""
    release = _release(version)
    if _MINIMUM <= release < _BELOW:
        return True
    if version not in _warned:
        _warned.add(version)
        warnings.warn(
            f"aither-torch supports torch{SUPPORTED_TORCH}, but torch {version} is installed: logging may "
            "break or miss calls. Install a supported torch (pip install 'aither-torch[instruments]').",
            RuntimeWarning,
            stacklevel=3,
        )
    return False


def require_torch() -> ModuleType:
    """The ``torch`` module; a clear :class:`aither.MissingDependencyError` when it is not installed."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            f"aither-torch needs PyTorch (torch{SUPPORTED_TORCH}), which is not installed. "
            "Install it with pip install 'aither-torch[instruments]' (or your own torch build); "
            "the plugin itself comes with pip install 'aither[torch]'."
        ) from exc
    check_version(str(torch.__version__))
    return torch


def _is_scripted(torch: ModuleType, model: Any) -> bool:
    return isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction))


class TorchIntegration(Integration):
    """Claims ``torch.nn.Module`` instances (hooked) and TorchScript modules and functions (call-wrapped)."""

    name = "torch"
    modules = ("torch",)

    def claims(self, model: Any) -> bool:
        torch = sys.modules.get("torch")  # the model's existence proves torch is imported: never import it here
        if torch is None:
            return False
        from ._tracked import TrackedCall, TrackedModule

        if isinstance(model, (TrackedModule, TrackedCall)):
            return True
        return isinstance(model, torch.nn.Module) or _is_scripted(torch, model)

    def wrap(self, model: Any, options: WrapOptions) -> Any:
        torch = require_torch()
        from ._tracked import TrackedCall, TrackedModule

        if isinstance(model, (TrackedModule, TrackedCall)):
            model = model.model
        logger = ModelLogger(options, "torch")
        if _is_scripted(torch, model):  # TorchScript has no Python hooks: log the wrapper's own calls
            return TrackedCall(model, logger)
        return TrackedModule(model, logger)


integration = TorchIntegration()


def unwrap(module: Any) -> Any:
    """Remove every aither hook from ``module`` (for instance one loaded with ``torch.load``); returns it."""
    require_torch()
    from ._hooks import detach

    detach(module)
    return module


def is_wrapped(module: Any) -> bool:
    """Whether ``module`` carries aither's hooks (``model(x)`` is logged)."""
    require_torch()
    from ._hooks import find_hooks

    return bool(find_hooks(module))
