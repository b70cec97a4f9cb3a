"""The exceptions aither raises into user code.

Telemetry never raises into a model call: these come only from our own API (a bad argument, a management
call). The tree::

    AitherError
    ├── ConfigurationError          bad option or environment value (also a ValueError)
    ├── PluginError                 an integration could not wrap the model
    │   └── MissingDependencyError  the framework or plugin is not installed; names the extra to install
    └── APIError                    the server answered a management call with an error status
        ├── AuthenticationError     401: missing, unknown or revoked API key
        ├── PermissionDeniedError   403: the key lacks the scope
        ├── NotFoundError           404
        ├── RateLimitError          429, with ``retry_after`` seconds
        └── APIConnectionError      no answer: connection refused, DNS, timeout

Arguments of the wrong kind raise the builtin ``TypeError`` / ``ValueError`` (``ConfigurationError`` is a
``ValueError`` too), so ``except ValueError`` keeps working for callers who validate input.
"""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "APIError",
    "AitherError",
    "AuthenticationError",
    "ConfigurationError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "RateLimitError",
]


class AitherError(Exception):
    """Base class of every exception aither raises on purpose."""


class ConfigurationError(AitherError, ValueError):
    """An option passed to ``aither.init`` / ``aither.wrap`` or an ``AITHER_*`` variable is invalid."""


class PluginError(AitherError):
    """An integration could not wrap the model."""


class MissingDependencyError(PluginError, ImportError):
    """A framework or plugin needed for this model is not installed."""


class APIError(AitherError):
    """The aither server answered with an error status.

    ``status_code`` is the HTTP status (``None`` for connection errors), ``message`` the server's explanation.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class AuthenticationError(APIError):
    """401: the API key is missing, unknown or revoked."""


class PermissionDeniedError(APIError):
    """403: the API key does not have the scope this call needs."""


class NotFoundError(APIError):
    """404: the resource does not exist."""


class RateLimitError(APIError):
    """429: too many requests. ``retry_after`` is the server's hint in seconds, when it gave one."""

    def __init__(self, message: str, *, status_code: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class APIConnectionError(APIError):
    """The server could not be reached (connection refused, DNS failure, timeout)."""
