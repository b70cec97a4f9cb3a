"""What importing aither-hf costs: nothing from transformers until a pipeline is wrapped."""

from __future__ import annotations

from aither.testing import assert_imports_no_framework, missing_framework_error


def test_importing_aither_hf_and_wrapping_other_models_does_not_import_transformers() -> None:
    assert_imports_no_framework("aither_hf", ["transformers"], then="aither.wrap(lambda x: x, name='f')(1)")


def test_missing_transformers_raises_missing_dependency_error_naming_the_extra() -> None:
    message = missing_framework_error("aither_hf", ["transformers"], "aither_hf.wrap(object(), name='x')")
    assert message == (
        "aither-hf needs transformers>=4.40,<6, which is not installed: pip install 'transformers>=4.40,<6'"
    )
