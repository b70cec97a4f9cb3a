"""Removing a plugin's forward hooks from a torch module by their type, for hooks that came without handles.

``torch.save`` of a whole module pickles its hooks and ``torch.load`` brings them back without their
``RemovableHandle``: wrapping such a module again must find the old hooks by type to replace them. torch is
never imported here; ``module`` is one already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.nn import Module

__all__ = ["remove_forward_hooks"]


def remove_forward_hooks(module: Module, kind: type | tuple[type, ...]) -> None:
    """Remove the forward (pre-)hooks of type ``kind`` from ``module`` (what ``RemovableHandle.remove`` does, by
    type), with their ``with_kwargs`` and ``always_call`` entries."""
    for hook_id, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, kind):
            del module._forward_pre_hooks[hook_id]
            getattr(module, "_forward_pre_hooks_with_kwargs", {}).pop(hook_id, None)
    for hook_id, hook in list(module._forward_hooks.items()):
        if isinstance(hook, kind):
            del module._forward_hooks[hook_id]
            getattr(module, "_forward_hooks_with_kwargs", {}).pop(hook_id, None)
            getattr(module, "_forward_hooks_always_called", {}).pop(hook_id, None)
