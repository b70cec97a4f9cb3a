"""Checking that a public function spells the wrap options exactly as :class:`aither.integrations.WrapOptions`."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from .._tracking import WrapOptions

__all__ = ["assert_wrap_options_signature"]


def assert_wrap_options_signature(function: Callable[..., object], *, optional_name: bool = False) -> None:
    """Assert that ``function`` takes every wrap option by its name, in order, with :class:`WrapOptions`' defaults.

    ``optional_name``: ``name`` may default to None (a scikit-learn meta-estimator needs a default for every
    parameter; it then names the model after the estimator's class).
    """
    parameters = inspect.signature(function).parameters
    names = [name for name in parameters if name in {field.name for field in dataclasses.fields(WrapOptions)}]
    for field in dataclasses.fields(WrapOptions):
        assert field.name in parameters, f"{function.__qualname__} lacks the wrap option {field.name!r}"
        default = parameters[field.name].default
        expected = field.default  # ``name`` has none: MISSING, which a signature spells ``empty``
        if field.name == "name":
            expected = None if optional_name else inspect.Parameter.empty
        assert default == expected, (
            f"{function.__qualname__}: {field.name} defaults to {default!r}, WrapOptions to {expected!r}"
        )
    assert names == [field.name for field in dataclasses.fields(WrapOptions)], (
        f"{function.__qualname__} spells the wrap options in another order: {names}"
    )
