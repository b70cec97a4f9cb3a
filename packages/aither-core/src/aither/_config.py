"""Settings from ``aither.init`` arguments and ``AITHER_*`` variables, validated once."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "Settings", "load_settings"]

DEFAULT_BASE_URL = "https://aither.computer"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the client needs. ``api_key`` never shows in ``repr``."""

    api_key: str | None = dataclasses.field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    flush_interval: float = 1.0
    batch_size: int = 100
    disabled: bool = False
    service_name: str | None = None
    #: Records waiting for the worker; above it new records are dropped and counted.
    max_queue_size: int = 10_000
    #: Approximate bytes of the records waiting for the worker; same policy as ``max_queue_size``.
    max_queue_bytes: int = 64 * 1024 * 1024
    #: Uncompressed size of one export request; kept well under the Collector's 20 MiB default cap.
    max_batch_bytes: int = 8 * 1024 * 1024
    #: One attribute value above this many bytes is truncated and marked.
    max_attribute_bytes: int = 64 * 1024
    #: Rows of a prediction kept in ``ml.prediction``.
    max_prediction_rows: int = 1000
    #: Trace ids remembered per wrapped model (``tracked.trace_ids``).
    max_trace_ids: int = 10_000
    #: Seconds for one HTTP request.
    export_timeout: float = 10.0
    #: Seconds one batch may spend in retries before it is dropped.
    max_retry_time: float = 60.0
    initial_backoff: float = 1.0
    max_backoff: float = 32.0
    compression: str = "gzip"
    #: Deadline for the flush ``atexit`` runs.
    exit_timeout: float = 5.0
    #: Extra HTTP headers sent with every export request.
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name != "api_key"
        )
        key = "None" if self.api_key is None else "'***'"
        return f"Settings(api_key={key}, {shown})"

    @property
    def traces_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1/traces"

    @property
    def metrics_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1/metrics"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_POSITIVE_NUMBERS = {
    "flush_interval",
    "batch_size",
    "max_queue_size",
    "max_queue_bytes",
    "max_batch_bytes",
    "max_attribute_bytes",
    "max_prediction_rows",
    "max_trace_ids",
    "export_timeout",
    "initial_backoff",
    "max_backoff",
    "exit_timeout",
}


def _env_bool(name: str, environ: Mapping[str, str]) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def load_settings(environ: Mapping[str, str] | None = None, **options: Any) -> Settings:
    """Build settings: explicit options (not ``None``) win over the environment, which wins over defaults.

    Unknown options raise ``TypeError`` naming them; invalid values raise ``ConfigurationError``.
    """
    env = os.environ if environ is None else environ
    unknown = sorted(set(options) - set(_FIELDS))
    if unknown:
        raise TypeError(f"aither.init() got unexpected option(s): {', '.join(unknown)}")
    values: dict[str, Any] = {k: v for k, v in options.items() if v is not None}

    values.setdefault("api_key", env.get("AITHER_API_KEY") or None)
    values.setdefault("base_url", env.get("AITHER_BASE_URL") or DEFAULT_BASE_URL)
    if "disabled" not in values:
        values["disabled"] = _env_bool("AITHER_DISABLED", env)
    values.setdefault("service_name", env.get("OTEL_SERVICE_NAME") or None)

    for name in _POSITIVE_NUMBERS & values.keys():
        value = values[name]
        expected = _FIELDS[name].type
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(f"{name} must be a number, got {value!r}")
        if expected == "int" and not isinstance(value, int):
            raise ConfigurationError(f"{name} must be an integer, got {value!r}")
        if value <= 0:
            raise ConfigurationError(f"{name} must be positive, got {value!r}")
    if "max_retry_time" in values and (
        isinstance(values["max_retry_time"], bool)
        or not isinstance(values["max_retry_time"], (int, float))
        or values["max_retry_time"] < 0
    ):
        raise ConfigurationError(f"max_retry_time must be a number >= 0, got {values['max_retry_time']!r}")
    base_url = values["base_url"]
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, got {base_url!r}")
    if values.get("compression", "gzip") not in ("gzip", "none"):
        raise ConfigurationError(f"compression must be 'gzip' or 'none', got {values['compression']!r}")
    api_key = values["api_key"]
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError("api_key must be a string")
    return Settings(**values)
