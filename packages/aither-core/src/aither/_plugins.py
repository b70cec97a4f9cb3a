"""Plugins: the integration protocol, entry-point discovery, and ``wrap()`` dispatch.

Dispatch never imports a framework to find out what a model is. ``wrap(model)`` walks ``type(model).__mro__``
and maps each class's top-level module (``sklearn``, ``torch``...) to the entry point of that name in the group
``aither.integrations``; the model's existence proves its framework is imported already. Objects no class
matches (a tinygrad model is a plain class, a function is a function) are offered to the plugins whose
framework module is already in ``sys.modules``, which decide by duck typing.
"""

from __future__ import annotations

import abc
import functools
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import PluginError
from ._tracked import TrackedModel
from ._tracking import FeaturesFn, ModelLogger, WrapOptions

if TYPE_CHECKING:
    import importlib.metadata

__all__ = ["PLUGIN_API_VERSION", "ENTRY_POINT_GROUP", "Integration", "find_integration", "wrap_model"]

logger = logging.getLogger("aither")

ENTRY_POINT_GROUP = "aither.integrations"
#: Bumped when the contract between core and plugins changes; a plugin built for another version is skipped.
PLUGIN_API_VERSION = 1


class Integration(abc.ABC):
    """Base class of a plugin: which models it claims, and how it wraps them.

    A plugin module exposes an instance and registers it under ``aither.integrations``, once per top-level
    module it claims (``sklearn = "aither_sklearn:integration"``). Its module must not import the framework at
    import time: do that inside ``wrap``.
    """

    #: Short name, used in logs and ``AITHER_DISABLE_PLUGINS``.
    name: str = ""
    #: Top-level modules whose classes this plugin claims.
    modules: tuple[str, ...] = ()
    api_version: int = PLUGIN_API_VERSION

    def claims(self, model: object) -> bool:
        """Whether this plugin wraps ``model``. Default: some class in its MRO comes from one of ``modules``."""
        return any(klass.__module__.partition(".")[0] in self.modules for klass in type(model).__mro__)

    @abc.abstractmethod
    def wrap(self, model: Any, options: WrapOptions) -> Any:  # a plugin's own model type; the tracked stand-in
        """The tracked model: ``model`` with its framework's hook, recording calls through a ``ModelLogger``."""

    def wrap_model(
        self,
        model: object,
        name: str,
        version: str | None = None,
        environment: str | None = None,
        sample_rows: int = 5,
        sample_columns: int | None = 10,
        features_fn: FeaturesFn | None = None,
        feature_names: Sequence[str] | None = None,
        task: str | None = None,
        column_policies: Mapping[str, str] | None = None,
        embeddings: bool | str = False,
        **plugin_options: Any,  # the plugin's own options, passed on to its wrap() as they are
    ) -> Any:  # the tracked model stands in for the user's
        """``aither.wrap`` through this plugin alone, skipping discovery (for objects it cannot recognise by
        type, or for its own options: ``aither_tinygrad.wrap(fn, name="f", realize_output=True)``)."""
        options = WrapOptions(
            name,
            version,
            environment,
            sample_rows,
            sample_columns,
            features_fn,
            feature_names,
            task,
            column_policies,
            embeddings,
        )
        return self.wrap(model, options, **plugin_options)

    def __repr__(self) -> str:
        return f"<aither integration {self.name!r}>"


def _disabled_names() -> set[str] | None:
    """``AITHER_DISABLE_PLUGINS``: ``1``/``all`` disables every plugin (returns None); else a comma list."""
    raw = os.environ.get("AITHER_DISABLE_PLUGINS", "").strip().lower()
    if raw in ("1", "all", "true", "*"):
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


@functools.lru_cache(maxsize=1)
def _entry_points() -> dict[str, list[importlib.metadata.EntryPoint]]:
    import importlib.metadata  # 20 ms: only when the first model is wrapped, not at ``import aither``

    found: dict[str, list[importlib.metadata.EntryPoint]] = {}
    seen: set[tuple[str, str]] = set()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (entry_point.name, entry_point.value)
        if key in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add(key)
        found.setdefault(entry_point.name, []).append(entry_point)
    return found


_loaded: dict[str, Integration | None] = {}


def _load(name: str) -> Integration | None:
    """Load the integration registered as ``name``; a broken one is logged once and skipped."""
    if name in _loaded:
        return _loaded[name]
    disabled = _disabled_names()
    integration: Integration | None = None
    if disabled is not None and name not in disabled:
        for entry_point in _entry_points().get(name, []):
            try:
                loaded = entry_point.load()
                candidate = loaded() if isinstance(loaded, type) else loaded
            except Exception:
                logger.warning(
                    "aither: the plugin %r (%s) failed to load; models of %s get the generic wrapper",
                    name,
                    entry_point.value,
                    name,
                    exc_info=True,
                )
                continue
            if getattr(candidate, "api_version", None) != PLUGIN_API_VERSION:
                logger.warning(
                    "aither: the plugin %r targets plugin API %r but aither-core %s speaks %d; skipping it",
                    name,
                    getattr(candidate, "api_version", None),
                    _core_version(),
                    PLUGIN_API_VERSION,
                )
                continue
            if disabled is not None and getattr(candidate, "name", name) in disabled:
                continue
            integration = candidate
            break
    _loaded[name] = integration
    return integration


def _core_version() -> str:
    from ._version import __version__

    return __version__


def reset_cache() -> None:
    """Forget loaded plugins and entry points (tests, or after installing a plugin at run time)."""
    _loaded.clear()
    _entry_points.cache_clear()


def find_integration(model: object) -> Integration | None:
    """The plugin that claims ``model``, or None for the generic wrapper."""
    entry_points = _entry_points()
    if not entry_points:
        return None
    tried: set[str] = set()
    for klass in type(model).__mro__:
        root = klass.__module__.partition(".")[0]
        if root in tried or root not in entry_points:
            continue
        tried.add(root)
        integration = _load(root)
        if integration is not None and integration.claims(model):
            return integration
    # Duck typing, only among plugins whose framework is already imported (never import one to find out).
    for name in sorted(entry_points):
        if name in tried or name not in sys.modules:
            continue
        integration = _load(name)
        if integration is not None and integration.claims(model):
            return integration
    return None


_missing_warned: set[str] = set()


def _warn_if_plugin_missing(model: object) -> None:
    """A model of a framework aither has a plugin for, but that plugin is not installed: say which, once."""
    from ._install import PLUGIN_FOR_FRAMEWORK, install_command

    installed = _entry_points()
    for klass in type(model).__mro__:
        root = klass.__module__.partition(".")[0]
        plugin = PLUGIN_FOR_FRAMEWORK.get(root)
        if plugin is None or root in installed:
            continue
        if root not in _missing_warned:
            _missing_warned.add(root)
            logger.warning(
                "aither: %s is a %s model, but %s is not installed, so it gets the generic wrapper (only its "
                "predict-like methods are logged, and %s features such as clone or hooks do not apply): %s",
                type(model).__name__,
                root,
                plugin,
                root,
                install_command(plugin),
            )
        return


def wrap_model(model: object, options: WrapOptions) -> object:
    """Dispatch to the plugin that claims ``model``; fall back to the generic wrapper."""
    if isinstance(model, TrackedModel):  # wrapping a wrapper would log every call twice
        model = model.model
    integration = find_integration(model)
    if integration is None:
        _warn_if_plugin_missing(model)
    if integration is not None:
        try:
            return integration.wrap(model, options)
        except PluginError:
            raise
        except Exception:
            logger.warning(
                "aither: plugin %r failed to wrap %s; using the generic wrapper",
                integration.name,
                type(model).__name__,
                exc_info=True,
            )
    return TrackedModel(model, ModelLogger(options, "generic"))
