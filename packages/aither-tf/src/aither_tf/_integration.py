"""The ``keras`` and ``tensorflow`` entry points, and the framework import guard."""

from __future__ import annotations

import sys
from types import ModuleType

from aither.integrations import Integration, ModelLogger, TrackedModel, WrapOptions, require_framework

__all__ = ["FRAMEWORK", "KerasIntegration", "integration", "require_keras"]

#: ``ml.framework`` of every span this plugin records (Keras on any backend, and plain TensorFlow).
FRAMEWORK = "tensorflow"


def require_keras() -> ModuleType:
    """The ``keras`` module (Keras 3), and tensorflow's version checked when it is loaded: core's import guard."""
    keras = require_framework("keras", plugin="aither-tf")
    tensorflow = sys.modules.get("tensorflow")  # checked only when loaded: the torch backend needs none
    if tensorflow is not None and hasattr(tensorflow, "__version__"):
        require_framework("tensorflow", plugin="aither-tf")
    return keras


def _is_keras_layer(model: object) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.layers.Layer)  # keras.Model is a Layer


class KerasIntegration(Integration):
    """Claims Keras models and layers (callback + logged calls) and callable TensorFlow objects (logged calls)."""

    name = "tf"
    modules = ("keras", "tensorflow")

    def claims(self, model: object) -> bool:
        if not super().claims(model):
            return False
        return _is_keras_layer(model) or callable(model)

    def wrap(self, model: object, options: WrapOptions) -> TrackedModel:
        logger = ModelLogger(options, FRAMEWORK)
        if _is_keras_layer(model):
            require_keras()
            from ._tracked import TrackedKerasModel

            return TrackedKerasModel(model, logger)
        # tf.Module, a loaded SavedModel: no callbacks to hook; its calls through the wrapper are logged.
        return TrackedModel(model, logger)


integration = KerasIntegration()
