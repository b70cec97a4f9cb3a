"""aither integration for tinygrad: models (classes with ``__call__``) and functions on ``tinygrad.Tensor``.

``aither.wrap(model, name=...)`` claims objects holding tinygrad parameters and functions that refer to
tinygrad; :func:`wrap` wraps any callable explicitly. ``tracked(x)`` and ``tracked.predict(x)`` log one span each.
Only the sampled rows of the input are read; outputs are returned untouched (still lazy). tinygrad is imported
only when a model is wrapped.
"""

from __future__ import annotations

from ._integration import TinygradIntegration, integration, is_tinygrad_model, wrap
from ._tracked import TrackedTinygradModel
from ._version import __version__

__all__ = [
    "TinygradIntegration",
    "TrackedTinygradModel",
    "__version__",
    "integration",
    "is_tinygrad_model",
    "wrap",
]
