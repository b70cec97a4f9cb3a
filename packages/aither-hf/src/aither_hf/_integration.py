"""The ``transformers`` entry point: claims pipelines, wraps them in their tracked subclass."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

from aither.integrations import Integration, ModelLogger, WrapOptions, require_framework

from ._tracked import TrackedPipeline, _pipeline_state, rebuild

if TYPE_CHECKING:
    from transformers import Pipeline

__all__ = ["TransformersIntegration", "integration", "wrap"]


def _is_pipeline(model: object) -> TypeGuard[Pipeline]:
    return any(
        klass.__name__ == "Pipeline" and klass.__module__.startswith("transformers.pipelines")
        for klass in type(model).__mro__
    )


class TransformersIntegration(Integration):
    """Claims ``transformers`` pipelines (not bare models: those go on to the torch or tensorflow plugin)."""

    name = "transformers"
    modules = ("transformers",)

    def claims(self, model: object) -> bool:
        return _is_pipeline(model)

    def wrap(self, model: object, options: WrapOptions) -> TrackedPipeline:
        require_framework("transformers", plugin="aither-hf")
        if not _is_pipeline(model):
            raise TypeError(f"aither-hf wraps transformers pipelines, not {type(model).__name__}")
        if isinstance(model, TrackedPipeline):  # wrapping again replaces the identity, never logs twice
            return rebuild(model._aither_base, _pipeline_state(model), ModelLogger(options, "transformers"))
        return rebuild(type(model), vars(model), ModelLogger(options, "transformers"))


integration = TransformersIntegration()


#: ``aither.wrap`` for a pipeline, without going through plugin discovery.
wrap = integration.wrap_model
