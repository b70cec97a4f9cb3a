"""Importing, dispatch, and what happens without (or with an unsupported) torch."""

from __future__ import annotations

import importlib.metadata
import logging
import warnings

import pytest
import torch

import aither
import aither_torch
from aither import _frameworks  # its once-per-version memory, reset for this test
from aither.integrations import find_integration
from aither.testing import SpanCapture


def test_an_unsupported_torch_version_warns_once_and_a_supported_one_does_not(
    mlp: torch.nn.Module, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, aither_capture: SpanCapture
) -> None:
    monkeypatch.setattr(_frameworks, "_checked", set())
    installed = {"version": str(torch.__version__)}
    version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: installed["version"] if name == "torch" else version(name)
    )
    for supported in (torch.__version__, "2.1.0"):
        installed["version"] = supported
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert not aither_torch.is_wrapped(mlp)
    installed["version"] = "1.13.1"
    with (
        caplog.at_level(logging.WARNING, logger="aither"),
        pytest.warns(RuntimeWarning, match=r"torch>=2.1,<3.*1\.13\.1"),
    ):
        assert not aither_torch.is_wrapped(mlp)
    assert any("1.13.1" in r.getMessage() and "torch>=2.1,<3" in r.getMessage() for r in caplog.records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aither.wrap(mlp, name="m").unwrap()  # once per version
    installed["version"] = "3.0.0"
    with pytest.warns(RuntimeWarning, match="3.0.0"):
        assert not aither_torch.is_wrapped(mlp)


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
