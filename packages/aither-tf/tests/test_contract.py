"""The shared plugin contract, through ``tracked.predict`` (logged from its return value) and direct calls."""

from __future__ import annotations

from typing import Any

import numpy as np
from keras_helpers import make_mlp, rows

from aither.testing.contract import PluginContract


class TestContractThroughPredict(PluginContract):
    framework = "tensorflow"
    plugin_module = "aither_tf"
    framework_modules = ("keras", "tensorflow")
    framework_module = "keras"
    framework_distribution = "keras"
    missing_framework_call = "aither_tf.Callback"
    method = "predict"
    passthrough_attribute = "input_shape"

    def make_model(self) -> Any:
        return make_mlp()

    def make_input(self) -> Any:
        return rows(4)

    def make_failing_input(self) -> Any:
        return np.ones((2, 99), dtype=np.float32)  # wrong width: Keras refuses the input

    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked.predict(inputs, verbose=0)


class TestContractThroughDirectCalls(TestContractThroughPredict):
    method = "__call__"

    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked(inputs)
