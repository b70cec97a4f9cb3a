"""aither-core's plugin contract, run against a tinygrad model class and a tinygrad function."""

from __future__ import annotations

from typing import Any

import numpy as np
from tg_models import TinyNet, rows, softmax_scores
from tinygrad import Tensor

from aither.testing.contract import PluginContract


class TestTinygradModelContract(PluginContract):
    framework = "tinygrad"
    plugin_module = "aither_tinygrad"
    framework_modules = ("tinygrad",)
    framework_module = "tinygrad"
    framework_distribution = "tinygrad"
    missing_framework_call = "aither_tinygrad.wrap(lambda x: x, name='x')"
    records_the_output = False  # outputs stay lazy: ml.prediction describes them (shape, dtype) unless realised
    method = "__call__"
    passthrough_attribute: str | None = "l1"
    supports_pickle = True  # tinygrad Tensors pickle (their data is realised into the pickle)
    batch_size = 4

    def make_model(self) -> Any:
        return TinyNet()

    def make_input(self) -> Any:
        return Tensor(rows(4))

    def make_failing_input(self) -> Any:
        return Tensor.ones(2, 99)  # RuntimeError: cannot dot (2, 99) and (8, 16)

    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked(inputs)

    def assert_same_output(self, tracked_output: Any, bare_output: Any) -> None:
        # core's helper takes any object with .detach() for a torch tensor; tinygrad's has no .cpu()
        np.testing.assert_allclose(tracked_output.numpy(), bare_output.numpy(), rtol=1e-5, atol=1e-6)


class TestTinygradPredictContract(TestTinygradModelContract):
    method = "predict"

    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked.predict(inputs)

    def call_model(self, model: Any, inputs: Any) -> Any:
        return model(inputs)


class TestTinygradFunctionContract(TestTinygradModelContract):
    passthrough_attribute = None  # a function has no model attributes to pass through
    supports_pickle = True  # a module-level function pickles by reference

    def make_model(self) -> Any:
        return softmax_scores

    def make_failing_input(self) -> Any:
        return "not a tensor"
