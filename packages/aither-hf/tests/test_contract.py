"""aither-core's plugin contract, run against a text-classification pipeline."""

from __future__ import annotations

from typing import Any

from hf_tiny import TEXTS, text_pipeline

from aither.testing.contract import PluginContract


class TestTransformersPipelineContract(PluginContract):
    framework = "transformers"
    plugin_module = "aither_hf"
    framework_modules = ("transformers",)
    framework_module = "transformers"
    framework_distribution = "transformers"
    missing_framework_call = "aither_hf.wrap(object(), name='x')"
    method = "__call__"
    passthrough_attribute = "task"
    # Pipelines pickle (model, tokenizer and all); the tracked subclass is rebuilt from the pipeline's own class.
    supports_pickle = True
    batch_size = len(TEXTS)

    def make_model(self) -> Any:
        return text_pipeline("text-classification")

    def make_input(self) -> Any:
        return list(TEXTS)

    def make_failing_input(self) -> Any:
        return 123  # the pipeline raises ValueError: text input must be of type `str`...

    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked(inputs)

    def assert_same_output(self, tracked_output: Any, bare_output: Any) -> None:
        assert tracked_output == bare_output
