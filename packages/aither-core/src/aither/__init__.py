"""aither: model observability. Wrap a model, and every prediction is logged as an OpenTelemetry span.

    import aither
    aither.init()                                   # AITHER_API_KEY, AITHER_BASE_URL
    tracked = aither.wrap(model, name="fraud")      # any sklearn / torch / keras / transformers / tinygrad model
    tracked.predict(X)
    aither.log_label(tracked.last_trace_id, 1)     # ground truth, joined later by trace id

``import aither`` imports no ML framework, no pandas, no HTTP client and no protobuf: those load on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import close, flush, init, last_trace_id, log_label, log_prediction, stats, track, wrap
from ._entity import entity, entity_key
from ._errors import (
    AitherError,
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConfigurationError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    RateLimitError,
)
from ._tracked import TrackedModel
from ._version import __version__

if TYPE_CHECKING:
    from ._management import ApiKey, Organization, Usage, User, api_keys, org, server_privacy, user
    from ._models import models
    from ._monitors import Monitor, monitors
    from ._reference import log_reference

__all__ = [
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

_MANAGEMENT = frozenset({"ApiKey", "Organization", "Usage", "User", "api_keys", "org", "server_privacy", "user"})


def __getattr__(name: str) -> Any:
    # ``aither.testing.capture()`` works after ``import aither`` alone; loaded on first use (it imports pytest's
    # plugin module lazily too).
    if name == "testing":
        import importlib

        return importlib.import_module("aither.testing")
    # The management client pulls in httpx; load it on first use so ``import aither`` stays light.
    if name == "models":  # the query API's typed reads
        from ._models import models

        globals()[name] = models
        return models
    # Profiling a reference needs numpy and datasketches, imported only when it is called.
    if name == "log_reference":
        from ._reference import log_reference

        return log_reference
    if name in ("Monitor", "monitors"):
        from . import _monitors

        found = getattr(_monitors, name)
        globals()[name] = found
        return found
    if name in _MANAGEMENT:
        from . import _management

        value = getattr(_management, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aither' has no attribute {name!r}")
