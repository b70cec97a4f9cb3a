"""The shared plugin contract, for each way a hooked module is called."""

from __future__ import annotations

from typing import Any

import torch
from torch_helpers import make_mlp

from aither.testing.contract import PluginContract


class TestContractThroughPredict(PluginContract):
    framework = "torch"
    plugin_module = "aither_torch"
    framework_modules = ("torch",)
    framework_module = "torch"
    framework_distribution = "torch"
    missing_framework_call = "aither_torch.unwrap(object())"
    method = "forward"
    passthrough_attribute = "training"

    def make_model(self) -> Any:
        return make_mlp()

    def make_input(self) -> Any:
        return torch.randn(4, 4)

    def make_failing_input(self) -> Any:
        return torch.randn(2, 99)  # wrong width: the first Linear raises

    def call_model(self, model: Any, inputs: Any) -> Any:
        return model(inputs)


class TestContractThroughTrackedCall(TestContractThroughPredict):
    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked(inputs)


class TestContractThroughTheOriginalModule(TestContractThroughPredict):
    """Existing serving code calls the module itself, never the tracked object: the hook still logs."""

    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked.model(inputs)
