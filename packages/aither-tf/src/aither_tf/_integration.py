"""The ``keras`` and ``tensorflow`` entry points, and the framework import guard."""

from __future__ import annotations

import sys
import warnings
from types import ModuleType
from typing import Any

from aither import MissingDependencyError
from aither.integrations import Integration, ModelLogger, TrackedModel, WrapOptions

__all__ = ["FRAMEWORK", "SUPPORTED_KERAS", "SUPPORTED_TENSORFLOW", "KerasIntegration", "integration", "require_keras"]

#: ``ml.framework`` of every span this plugin records (Keras on any backend, and plain TensorFlow).
FRAMEWORK = "tensorflow"
SUPPORTED_KERAS = ">=3,<4"
SUPPORTED_TENSORFLOW = ">=2.16,<3"
_RANGES = {"keras": ((3, 0), (4, 0), SUPPORTED_KERAS), "tensorflow": ((2, 16), (3, 0), SUPPORTED_TENSORFLOW)}
_warned: set[tuple[str, str]] = set()


def _release(version: str) -> tuple[int, int]:
    parts = version.split("+")[0].split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def check_version(package: str, version: str) -> bool:
    """Whether ``package`` (``keras``/``tensorflow``) at ``version`` is supported; warns once when it is not."""
    low, high, spec = _RANGES[package]
    if low <= _release(version) < high:
        return True
    if (package, version) not in _warned:
        _warned.add((package, version))
        warnings.warn(
            f"aither-tf supports {package}{spec}, but {package} {version} is installed: logging may break "
            "or miss calls. Install a supported version (pip install 'aither-tf[instruments]').",
            RuntimeWarning,
            stacklevel=3,
        )
    return False


def require_keras() -> ModuleType:
    """The ``keras`` module (Keras 3); a clear :class:`aither.MissingDependencyError` when it is missing."""
    try:
        import keras
    except ImportError as exc:
        raise MissingDependencyError(
            f"aither-tf needs Keras 3 (keras{SUPPORTED_KERAS}, with tensorflow{SUPPORTED_TENSORFLOW}), which is "
            "not installed. Install it with pip install 'aither-tf[instruments]'; the plugin itself comes with "
            "pip install 'aither[tf]'."
        ) from exc
    check_version("keras", str(keras.__version__))
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None and hasattr(tensorflow, "__version__"):
        check_version("tensorflow", str(tensorflow.__version__))
    module: ModuleType = keras
    return module


def _is_keras_layer(model: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.layers.Layer)  # keras.Model is a Layer


class KerasIntegration(Integration):
    """Claims Keras models and layers (callback + logged calls) and callable TensorFlow objects (logged calls)."""

    name = "tf"
    modules = ("keras", "tensorflow")

    def claims(self, model: Any) -> bool:
        if not super().claims(model):
            return False
        return _is_keras_layer(model) or callable(model)

    def wrap(self, model: Any, options: WrapOptions) -> Any:
        logger = ModelLogger(options, FRAMEWORK)
        if _is_keras_layer(model):
            require_keras()
            from ._tracked import TrackedKerasModel

            return TrackedKerasModel(model, logger)
        # tf.Module, a loaded SavedModel: no callbacks to hook; its calls through the wrapper are logged.
        return TrackedModel(model, logger)


integration = KerasIntegration()
