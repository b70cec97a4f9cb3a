"""The ``transformers`` entry point: claims pipelines, wraps them in their tracked subclass."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import warnings
from typing import Any

from aither import MissingDependencyError
from aither.integrations import Integration, ModelLogger, WrapOptions, register_sampler

from ._sampling import PipelineInputs, sampled_inputs
from ._tracked import TrackedPipeline, _pipeline_state, rebuild

__all__ = ["SUPPORTED", "TransformersIntegration", "integration", "wrap"]

logger = logging.getLogger("aither")

#: transformers versions this plugin is tested with: ``>=4.40,<6`` (the ``instruments`` extra).
SUPPORTED = ((4, 40), (6, 0))
INSTALL_HINT = "pip install 'aither[hf]'"

_checked = False


def _is_pipeline(model: Any) -> bool:
    return any(
        klass.__name__ == "Pipeline" and klass.__module__.startswith("transformers.pipelines")
        for klass in type(model).__mro__
    )


def _check_transformers() -> None:
    """Import transformers (it is, if a pipeline exists) and warn once outside the supported versions."""
    global _checked
    if _checked:
        return
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            f"aither-hf wraps Hugging Face transformers pipelines, but transformers is not installed: {INSTALL_HINT}"
        ) from exc
    try:
        version = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(transformers, "__version__", "0")
    match = re.match(r"(\d+)\.(\d+)", version)
    found = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    low, high = SUPPORTED
    if not low <= found < high:
        message = (
            f"aither-hf supports transformers >={low[0]}.{low[1]},<{high[0]}; found {version}. "
            "Calls are still logged, but features or predictions may be recorded incompletely."
        )
        warnings.warn(message, RuntimeWarning, stacklevel=4)
        logger.warning("aither: %s", message)
    register_sampler(__name__.partition(".")[0], PipelineInputs.__qualname__, sampled_inputs)
    _checked = True


class TransformersIntegration(Integration):
    """Claims ``transformers`` pipelines (not bare models: those go on to the torch or tensorflow plugin)."""

    name = "transformers"
    modules = ("transformers",)

    def claims(self, model: Any) -> bool:
        return _is_pipeline(model)

    def wrap(self, model: Any, options: WrapOptions) -> Any:
        _check_transformers()
        if not _is_pipeline(model):
            raise TypeError(f"aither-hf wraps transformers pipelines, not {type(model).__name__}")
        if isinstance(model, TrackedPipeline):  # wrapping again replaces the identity, never logs twice
            return rebuild(model._aither_base, _pipeline_state(model), ModelLogger(options, "transformers"))
        return rebuild(type(model), vars(model), ModelLogger(options, "transformers"))


integration = TransformersIntegration()


def wrap(
    pipe: Any,
    name: str,
    version: str | None = None,
    environment: str | None = None,
    sample_rows: int = 5,
    sample_columns: int = 10,
    features_fn: Any = None,
) -> Any:
    """``aither.wrap`` for a pipeline, without going through plugin discovery."""
    options = WrapOptions(name, version, environment, sample_rows, sample_columns, features_fn)
    return integration.wrap(pipe, options)
