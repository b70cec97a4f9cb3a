"""Importing, dispatch, and what happens without (or with an unsupported) torch."""

from __future__ import annotations

import subprocess
import sys
import warnings

import aither
import aither_torch
import pytest
import torch
from aither.integrations import find_integration


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_aither_and_the_plugin_does_not_import_torch() -> None:
    result = _run("import sys, aither, aither_torch; print('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_missing_torch_raises_missing_dependency_error_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import aither, aither_torch\n"
        "try:\n"
        "    aither_torch.unwrap(object())\n"
        "except aither.MissingDependencyError as exc:\n"
        "    print(isinstance(exc, ImportError), exc)\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True ")
    assert "pip install 'aither-torch[instruments]'" in result.stdout
    assert "aither[torch]" in result.stdout
    assert "torch>=2.1,<3" in result.stdout


def test_an_unsupported_torch_version_warns_once_and_a_supported_one_does_not() -> None:
    from aither_torch._integration import check_version

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_version(torch.__version__)
        assert check_version("2.1.0")
    with pytest.warns(RuntimeWarning, match=r"torch>=2.1,<3.*1\.13\.1"):
        assert not check_version("1.13.1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not check_version("1.13.1")  # once per version
    with pytest.warns(RuntimeWarning, match="3.0.0"):
        assert not check_version("3.0.0")


def test_wrap_dispatches_modules_to_the_torch_plugin(mlp: torch.nn.Module) -> None:
    assert find_integration(mlp) is aither_torch.integration
    tracked = aither.wrap(mlp, name="m")
    assert isinstance(tracked, aither_torch.TrackedModule)
    assert isinstance(tracked, aither.TrackedModel)
    assert tracked.model is mlp
    assert aither_torch.is_wrapped(mlp)
    tracked.unwrap()


def test_tensors_are_not_claimed_as_models() -> None:
    assert not aither_torch.integration.claims(torch.zeros(2))
