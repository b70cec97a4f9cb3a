"""Entry-point dispatch with real (temporary) installed distributions: discovery, isolation, failure handling."""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import aither
from aither.integrations import Integration, reset_cache
from aither.testing import SpanCapture

PLUGIN = """
from aither.integrations import Integration, ModelLogger, TrackedModel


class FakeIntegration(Integration):
    name = "fake"
    modules = ("fakeframework",)

    def wrap(self, model, options):
        tracked = TrackedModel(model, ModelLogger(options, "fakeframework"))
        return tracked


class DuckIntegration(Integration):
    name = "duck"
    modules = ("duckframework",)

    def claims(self, model):
        return hasattr(model, "quack")

    def wrap(self, model, options):
        return TrackedModel(model, ModelLogger(options, "duck"))


class OldIntegration(FakeIntegration):
    api_version = 0


class ExplodingIntegration(FakeIntegration):
    def wrap(self, model, options):
        raise RuntimeError("plugin bug")


integration = FakeIntegration()
duck = DuckIntegration()
old = OldIntegration()
exploding = ExplodingIntegration()
"""

FRAMEWORK = """
class Model:
    def predict(self, X):
        return [1 for _ in X]
"""


Install = Callable[[dict[str, str]], None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install a distribution whose entry points name the plugin objects above, on a temporary sys.path entry."""

    def install(entry_points: dict[str, str]) -> None:
        dist = tmp_path / "fake_aither_plugins-0.1.dist-info"
        dist.mkdir(exist_ok=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-aither-plugins\nVersion: 0.1\n")
        lines = "\n".join(f"{name} = {value}" for name, value in entry_points.items())
        (dist / "entry_points.txt").write_text(f"[aither.integrations]\n{lines}\n")
        reset_cache()

    (tmp_path / "fake_aither_plugin.py").write_text(textwrap.dedent(PLUGIN))
    for framework in ("fakeframework", "duckframework", "otherframework"):
        (tmp_path / f"{framework}.py").write_text(textwrap.dedent(FRAMEWORK))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    for module in ("fake_aither_plugin", "fakeframework", "duckframework", "otherframework"):
        sys.modules.pop(module, None)
    reset_cache()


def test_wrap_dispatches_on_the_top_level_module_of_the_models_class(
    install: Install, aither_capture: SpanCapture
) -> None:
    install({"fakeframework": "fake_aither_plugin:integration"})
    import fakeframework  # type: ignore[import-not-found]  # installed by the test

    tracked = aither.wrap(fakeframework.Model(), name="m")
    tracked.predict([1, 2])
    (span,) = aither_capture.predictions()
    assert span.attributes["ml.framework"] == "fakeframework"


def test_a_plugin_is_not_even_imported_for_models_of_other_frameworks(install: Install) -> None:
    install({"fakeframework": "fake_aither_plugin:integration"})
    import otherframework  # type: ignore[import-not-found]  # installed by the test

    tracked = aither.wrap(otherframework.Model(), name="m")
    assert tracked._aither.framework == "generic"
    assert "fake_aither_plugin" not in sys.modules


def test_duck_typed_claims_only_when_the_framework_is_already_imported(install: Install) -> None:
    install({"duckframework": "fake_aither_plugin:duck"})

    class Duck:
        def quack(self) -> str:
            return "quack"

    assert aither.wrap(Duck(), name="d")._aither.framework == "generic"  # duckframework not imported
    import duckframework  # type: ignore[import-not-found]  # noqa: F401  # installed by the test

    reset_cache()
    assert aither.wrap(Duck(), name="d")._aither.framework == "duck"


def test_a_plugin_that_fails_to_load_is_logged_and_skipped(
    install: Install, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    install({"fakeframework": "fake_aither_plugin:does_not_exist"})
    import fakeframework

    with caplog.at_level(logging.WARNING, logger="aither"):
        tracked = aither.wrap(fakeframework.Model(), name="m")
    assert tracked._aither.framework == "generic"
    assert tracked.predict([1]) == [1]
    assert any("failed to load" in r.getMessage() for r in caplog.records)


def test_a_broken_plugin_is_handled_the_same_under_pytest_as_in_a_users_process(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install({"fakeframework": "fake_aither_plugin:does_not_exist"})
    import fakeframework

    frameworks = []
    for under_pytest in (True, False):
        if not under_pytest:
            monkeypatch.delenv("PYTEST_CURRENT_TEST")
        reset_cache()
        frameworks.append(aither.wrap(fakeframework.Model(), name="m")._aither.framework)
    assert frameworks == ["generic", "generic"]


def test_integration_wrap_is_abstract() -> None:
    class Incomplete(Integration):
        name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_a_plugin_for_another_plugin_api_version_is_skipped(install: Install, caplog: pytest.LogCaptureFixture) -> None:
    install({"fakeframework": "fake_aither_plugin:old"})
    import fakeframework

    with caplog.at_level(logging.WARNING, logger="aither"):
        tracked = aither.wrap(fakeframework.Model(), name="m")
    assert tracked._aither.framework == "generic"
    assert any("plugin API" in r.getMessage() for r in caplog.records)


def test_a_plugin_whose_wrap_fails_falls_back_to_the_generic_wrapper(
    install: Install, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    install({"fakeframework": "fake_aither_plugin:exploding"})
    import fakeframework

    with caplog.at_level(logging.WARNING, logger="aither"):
        tracked = aither.wrap(fakeframework.Model(), name="m")
    assert tracked._aither.framework == "generic"
    assert any("failed to wrap" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", ["1", "all", "fake", "fakeframework,other"])
def test_aither_disable_plugins_turns_plugins_off(
    install: Install, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    install({"fakeframework": "fake_aither_plugin:integration"})
    monkeypatch.setenv("AITHER_DISABLE_PLUGINS", value)
    import fakeframework

    assert aither.wrap(fakeframework.Model(), name="m")._aither.framework == "generic"
