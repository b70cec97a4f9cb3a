"""Importing torch through core's guard (a leaf: the modules that need torch import it from here)."""

from __future__ import annotations

from types import ModuleType

from aither.integrations import require_framework

__all__ = ["require_torch"]


def require_torch() -> ModuleType:
    """The ``torch`` module (``forward hooks with_kwargs`` and ``always_call`` need 2.0+): core's import guard."""
    return require_framework("torch", plugin="aither-torch")
