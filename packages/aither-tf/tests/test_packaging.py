"""Importing, dispatch, version checks, and the torch backend of Keras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import aither_tf
import keras
import pytest
from aither.integrations import find_integration
from aither_tf._integration import check_version
from keras_helpers import make_mlp


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment)


def test_importing_aither_and_the_plugin_imports_neither_keras_nor_tensorflow() -> None:
    result = _run("import sys, aither, aither_tf; print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"


def test_missing_keras_raises_missing_dependency_error_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['keras'] = None\n"
        "import aither, aither_tf\n"
        "try:\n"
        "    aither_tf.Callback\n"
        "except aither.MissingDependencyError as exc:\n"
        "    print(isinstance(exc, ImportError), exc)\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True ")
    assert "pip install 'aither-tf[instruments]'" in result.stdout and "aither[tf]" in result.stdout


def test_unsupported_versions_warn_once_and_supported_ones_do_not() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_version("keras", keras.__version__)
        assert check_version("tensorflow", "2.21.0")
        assert check_version("tensorflow", "2.16.1")
    with pytest.warns(RuntimeWarning, match=r"keras>=3,<4.*2\.15\.0"):
        assert not check_version("keras", "2.15.0")
    with pytest.warns(RuntimeWarning, match=r"tensorflow>=2.16,<3"):
        assert not check_version("tensorflow", "2.15.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not check_version("keras", "2.15.0")  # once per version


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
    result = _run(code, KERAS_BACKEND="torch")
    assert result.returncode == 0, result.stderr[-3000:]
    *spans, out = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(name, size, error) for name, size, _, error in spans] == [
        ("predict", 5, False),
        ("__call__", 3, False),
        ("predict", 2, False),
    ]
    assert spans[0][2] == out
    assert len(spans[1][2]) == 3
