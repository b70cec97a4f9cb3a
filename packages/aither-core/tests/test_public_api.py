"""The public surface: pinned exports, the exception tree, and what ``import aither`` costs."""

from __future__ import annotations

import subprocess
import sys

import aither
import aither.integrations
import aither.testing


def test_exported_members_are_pinned() -> None:
    assert sorted(aither.__all__) == sorted(
        [
            "APIConnectionError",
            "APIError",
            "AitherError",
            "ApiKey",
            "AuthenticationError",
            "ConfigurationError",
            "MissingDependencyError",
            "Monitor",
            "NotFoundError",
            "Organization",
            "PermissionDeniedError",
            "PluginError",
            "RateLimitError",
            "TrackedModel",
            "Usage",
            "User",
            "__version__",
            "api_keys",
            "close",
            "entity",
            "entity_key",
            "flush",
            "init",
            "last_trace_id",
            "log_label",
            "log_prediction",
            "log_reference",
            "models",
            "monitors",
            "org",
            "server_privacy",
            "stats",
            "track",
            "user",
            "wrap",
        ]
    )
    for name in aither.__all__:
        assert getattr(aither, name) is not None
    for module in (aither.integrations, aither.testing):
        for name in module.__all__:
            assert hasattr(module, name)


def test_exception_tree() -> None:
    for error in (
        aither.AuthenticationError,
        aither.PermissionDeniedError,
        aither.NotFoundError,
        aither.RateLimitError,
        aither.APIConnectionError,
    ):
        assert issubclass(error, aither.APIError)
    assert issubclass(aither.APIError, aither.AitherError)
    assert issubclass(aither.ConfigurationError, ValueError)
    assert issubclass(aither.MissingDependencyError, ImportError)
    assert aither.RateLimitError("slow down", retry_after=3.0).retry_after == 3.0


def test_import_aither_imports_no_framework_pandas_http_client_or_protobuf() -> None:
    code = (
        "import sys, aither, aither.integrations\n"
        "heavy = ['numpy', 'pandas', 'polars', 'torch', 'tensorflow', 'keras', 'sklearn', 'transformers',\n"
        "         'tinygrad', 'httpx', 'google.protobuf', 'opentelemetry', 'datasketches', 'scipy']\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_settings_repr_hides_the_api_key() -> None:
    from aither._config import load_settings

    settings = load_settings({}, api_key="aith_super_secret")
    assert "aith_super_secret" not in repr(settings)
    assert "aith_super_secret" not in str(settings)
