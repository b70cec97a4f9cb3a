"""The one call path every integration goes through: the wrap options, how inputs are named, how outputs are
captured, and the versions a plugin supports."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import aither
from aither import _frameworks
from aither._tracking import ALL_COLUMNS
from aither.integrations import (
    WRAP_OPTIONS,
    Captured,
    Integration,
    ModelLogger,
    WrapOptions,
    supported_versions,
    truncated_rows,
)
from aither.testing import SpanCapture, assert_wrap_options_signature


@pytest.mark.parametrize("function", [aither.wrap, aither.track, Integration.wrap_model])
def test_every_public_signature_spells_the_wrap_options(function: Callable[..., Any]) -> None:
    assert_wrap_options_signature(function)


def test_the_wrap_options_are_the_fields_of_wrap_options() -> None:
    assert tuple(field.name for field in dataclasses.fields(WrapOptions)) == WRAP_OPTIONS
    assert WRAP_OPTIONS[0] == "name"


def test_wrap_options_built_directly_take_sample_columns_none_as_every_column(aither_capture: SpanCapture) -> None:
    # A plugin building its options itself (aither-sklearn's estimator) passes the value as the user gave it.
    options = WrapOptions("wide", sample_columns=None)
    assert options == WrapOptions("wide", sample_columns=ALL_COLUMNS)
    model_logger = ModelLogger(options, "custom")
    model_logger.call("predict", lambda x: x.sum(axis=1), (np.ones((2, 40)),), {})
    (span,) = aither_capture.predictions()
    assert set(span.features["sample"][0]) == {str(j) for j in range(40)}


def test_a_signature_missing_an_option_fails_the_check() -> None:
    def wrap(model: Any, name: str, version: str | None = None) -> Any:
        return model

    with pytest.raises(AssertionError, match="environment"):
        assert_wrap_options_signature(wrap)


def test_a_call_with_several_arguments_names_them_by_position_and_keyword(aither_capture: SpanCapture) -> None:
    @aither.track("blend")
    def blend(a: float, b: float, *, weight: float = 0.5) -> float:
        return a * weight + b * (1 - weight)

    assert blend(1.0, 3.0, weight=0.25) == 2.5
    (span,) = aither_capture.predictions()
    assert span.features["_meta"]["keys"] == ["0", "1", "weight"]
    assert span.features["sample"] == {"0": 1.0, "1": 3.0, "weight": 0.25}


def test_an_async_function_is_one_span_covering_the_await(aither_capture: SpanCapture) -> None:
    import asyncio

    @aither.track("later")
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    assert asyncio.run(later(1)) == 2
    (span,) = aither_capture.predictions()
    assert span.features == 1
    assert span.prediction == 2


def test_an_output_capture_that_raises_is_recorded_as_a_marker_and_the_output_returned(
    aither_capture: SpanCapture,
) -> None:
    model_logger = aither.wrap(lambda x: x, name="f")._aither

    def broken(output: Any, limit: int) -> Captured:
        raise RuntimeError("no")

    assert model_logger.call("predict", lambda x: [x], (1,), {}, capture_output=broken) == [1]
    (span,) = aither_capture.predictions()
    assert span.prediction == {"_meta": {"type": "list", "error": "RuntimeError"}}


def test_features_known_only_from_the_output_get_the_rows_predicted(aither_capture: SpanCapture) -> None:
    model_logger = aither.wrap(lambda x: x, name="f")._aither
    seen: list[int] = []

    def describe(rows: int) -> Captured:
        seen.append(rows)
        return Captured(lambda data: data, {"_meta": {"type": "stream", "shape": [rows]}}, rows, 64)

    model_logger.call("predict", lambda: np.zeros(7), (), {}, features=describe)
    (span,) = aither_capture.predictions()
    assert seen == [7]
    assert span.attributes["ml.batch_size"] == 7
    assert span.features == {"_meta": {"type": "stream", "shape": [7]}}


def test_the_truncation_marker_has_the_wire_contract_shape() -> None:
    assert truncated_rows([1, 2], 9) == {"values": [1, 2], "_meta": {"truncated": True, "total_rows": 9}}


def test_supported_versions_are_the_instruments_extra_of_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    requires = {
        "aither-fake": [
            "aither-core<0.2,>=0.1",
            'fakelib<3,>=2.1; extra == "instruments"',
            "otherlib[fast]>=1; extra == 'instruments'",
            'pytest; extra == "test"',
        ]
    }
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: requires[name])
    supported_versions.cache_clear()
    try:
        assert supported_versions("aither-fake") == {"fakelib": ">=2.1,<3", "otherlib": ">=1"}
    finally:
        supported_versions.cache_clear()


def test_a_framework_outside_the_instruments_extra_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_frameworks, "supported_versions", lambda plugin: {"numpy": ">=999"})
    monkeypatch.setattr(_frameworks, "_checked", set())
    with pytest.warns(RuntimeWarning, match=r"aither-fake supports numpy>=999"):
        _frameworks.require_framework("numpy", plugin="aither-fake")
    _frameworks.require_framework("numpy", plugin="aither-fake")  # once per version: no second warning


def test_a_test_that_says_nothing_sends_only_to_a_closed_local_port() -> None:
    from urllib.parse import urlsplit

    from aither import _client

    assert urlsplit(_client.get_client().settings.base_url).hostname == "127.0.0.1"
