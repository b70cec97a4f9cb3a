"""aither plugin for Keras 3 and TensorFlow.

Registered under the ``aither.integrations`` entry points ``keras`` and ``tensorflow``. ``aither.wrap(model)``
returns a tracked model whose ``predict`` is logged from its arguments and return value (no callback is added,
so Keras keeps its asynchronous dispatch); direct calls ``tracked(x)`` are logged too. A Keras callback is
there for hand-placed use: ``model.predict(x, callbacks=[aither_tf.Callback("name")])``.

Importing this package imports neither keras nor tensorflow; ``aither_tf.Callback`` loads keras on first use.
Supported: keras >= 3, < 4 with tensorflow >= 2.16, < 3 (the ``instruments`` extra); Keras' torch backend works
too. Other versions work but warn once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._integration import KerasIntegration, integration
from ._version import __version__

if TYPE_CHECKING:
    from ._callback import Callback
    from ._tracked import TrackedKerasModel

__all__ = [
    "Callback",
    "KerasIntegration",
    "TrackedKerasModel",
    "__version__",
    "integration",
]


def __getattr__(name: str) -> type[Callback] | type[TrackedKerasModel]:
    if name == "Callback":  # a subclass of keras.callbacks.Callback: importing it imports keras
        from ._callback import Callback

        return Callback
    if name == "TrackedKerasModel":
        from ._tracked import TrackedKerasModel

        return TrackedKerasModel
    raise AttributeError(f"module 'aither_tf' has no attribute {name!r}")
