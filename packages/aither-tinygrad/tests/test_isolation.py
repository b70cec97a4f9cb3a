"""What importing aither-tinygrad costs: nothing from tinygrad until a model is wrapped."""

from __future__ import annotations

from aither.testing import assert_imports_no_framework, missing_framework_error


def test_importing_aither_tinygrad_and_wrapping_other_models_does_not_import_tinygrad() -> None:
    assert_imports_no_framework("aither_tinygrad", ["tinygrad"], then="aither.wrap(lambda x: x, name='f')(1)")


def test_missing_tinygrad_raises_missing_dependency_error_naming_the_extra() -> None:
    message = missing_framework_error("aither_tinygrad", ["tinygrad"], "aither_tinygrad.wrap(lambda x: x, name='x')")
    assert message == (
        "aither-tinygrad needs tinygrad>=0.10,<0.15, which is not installed: pip install 'tinygrad>=0.10,<0.15'"
    )
