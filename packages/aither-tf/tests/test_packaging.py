"""Importing, dispatch, version checks, and the torch backend of Keras."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import warnings

import keras
import pytest
import tensorflow as tf
from keras_helpers import make_mlp

import aither
import aither_tf
from aither import _frameworks  # its once-per-version memory, reset for this test
from aither.integrations import find_integration
from aither.testing import SpanCapture, run_python


def test_unsupported_versions_warn_once_and_supported_ones_do_not(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, aither_capture: SpanCapture
) -> None:
    monkeypatch.setattr(_frameworks, "_checked", set())
    installed = {"keras": keras.__version__, "tensorflow": tf.__version__}
    version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed.get(name) or version(name))

    def wrap() -> None:  # wrapping a Keras model checks keras, and tensorflow as it is loaded
        aither.wrap(make_mlp(), name="m")

    for supported in ("2.21.0", "2.16.1"):
        installed["tensorflow"] = supported
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            wrap()
    installed["keras"] = "2.15.0"
    with (
        caplog.at_level(logging.WARNING, logger="aither"),
        pytest.warns(RuntimeWarning, match=r"keras>=3,<4.*2\.15\.0"),
    ):
        wrap()
    assert any("keras>=3,<4" in r.getMessage() and "2.15.0" in r.getMessage() for r in caplog.records)
    installed["keras"] = keras.__version__
    installed["tensorflow"] = "2.15.0"
    with pytest.warns(RuntimeWarning, match=r"tensorflow>=2.16,<3.*2\.15\.0"):
        wrap()
    installed["keras"] = "2.15.0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wrap()  # once per version


def test_keras_models_dispatch_to_the_tf_plugin() -> None:
    model = make_mlp()
    assert type(model).__module__.startswith("keras.src")
    assert find_integration(model) is aither_tf.integration


def test_keras_with_the_torch_backend_logs_predict_and_direct_calls() -> None:
    code = """
import json, numpy as np, keras, aither, aither_tf
from aither.testing import capture
assert keras.backend.backend() == "torch"
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
with capture() as captured:
    tracked = aither.wrap(model, name="on_torch")
    out = tracked.predict(np.ones((5, 4), dtype="float32"), batch_size=2, verbose=0)
    tracked(np.ones((3, 4), dtype="float32"))
    model.predict(np.ones((2, 4), dtype="float32"), callbacks=[aither_tf.Callback("hand")], verbose=0)
    spans = captured.predictions()
print(json.dumps([[s.name, s.attributes["ml.batch_size"], s.prediction, s.is_error] for s in spans]
                 + [out.tolist()]))
"""
    result = run_python(code, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    assert result.returncode == 0, result.stderr[-3000:]
    *spans, out = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(name, size, error) for name, size, _, error in spans] == [
        ("predict", 5, False),
        ("__call__", 3, False),
        ("predict", 2, False),
    ]
    assert spans[0][2]["values"] == out  # the logits as returned, read as class scores (_meta.output)
    assert len(spans[1][2]["values"]) == 3
