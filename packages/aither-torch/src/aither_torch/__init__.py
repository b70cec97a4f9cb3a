"""aither plugin for PyTorch: ``aither.wrap(module, name=...)`` logs every call of a ``torch.nn.Module``.

Registered under the ``aither.integrations`` entry point ``torch``. The plugin puts a forward hook (and a
forward pre-hook, for the start time) on the module itself, so the tracked object, ``tracked.predict(x)`` and
the original ``module(x)`` are all logged, once per call. Importing this package does not import torch: it
loads when a module is wrapped (and a module's existence means torch is loaded already).

Supported: torch >= 2.1, < 3 (the ``instruments`` extra). Another version works but warns once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._embeddings import embeddings
from ._integration import TorchIntegration, integration, is_wrapped, unwrap
from ._version import __version__

if TYPE_CHECKING:
    from ._tracked import TrackedCall, TrackedModule

__all__ = [
    "TorchIntegration",
    "TrackedCall",
    "TrackedModule",
    "__version__",
    "embeddings",
    "integration",
    "is_wrapped",
    "unwrap",
]


def __getattr__(name: str) -> type[TrackedModule] | type[TrackedCall]:
    if name in ("TrackedModule", "TrackedCall"):
        from . import _tracked

        tracked_class: type[TrackedModule] | type[TrackedCall] = getattr(_tracked, name)
        return tracked_class
    raise AttributeError(f"module 'aither_torch' has no attribute {name!r}")
