"""Settings from ``aither.init`` arguments and ``AITHER_*`` variables, validated once.

Where each setting comes from, first match wins (the one place this order is written):

1. an ``aither.init()`` argument;
2. its ``AITHER_*`` variable;
3. with ``AITHER_USE_OTEL_ENV=true`` (or ``init(use_otel_env=True)``) only, the OpenTelemetry exporter
   variables: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``_METRICS_ENDPOINT`` (used as they are),
   ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces`` and ``/v1/metrics`` appended), ``_HEADERS``, ``_TIMEOUT``
   (milliseconds), ``_COMPRESSION``. Off by default: feature samples are often personal data and must not
   follow an application's trace pipeline by surprise. The aither API key is not sent to an endpoint taken
   from these variables; put it in ``OTEL_EXPORTER_OTLP_HEADERS`` to send it there.
4. the default.

Management calls (``aither.org``, ``aither.api_keys``...) always use ``base_url``.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._privacy._apply import BeforeSend

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
    #: ``"gzip"``, ``"none"``, or ``"auto"``: gzip, except to a loopback address (``127.0.0.1``, ``::1``,
    #: ``localhost``), where compressing only costs CPU (see docs/benchmarks.md).
    compression: str = "auto"
    #: Deadline for the flush ``atexit`` runs.
    exit_timeout: float = 5.0
    #: Extra HTTP headers sent with every export request.
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    #: Take endpoint, headers, timeout and compression from ``OTEL_EXPORTER_OTLP_*`` when not set otherwise.
    use_otel_env: bool = False
    #: Full URL spans are posted to; default ``{base_url}/v1/traces``.
    traces_endpoint: str | None = None
    #: Full URL the per-model aggregates are posted to; default ``{base_url}/v1/metrics``.
    metrics_endpoint: str | None = None
    #: Whether ``api_key`` goes to the export endpoints (not when they came from ``OTEL_*`` variables).
    send_api_key: bool = True
    #: Whether the user chose where spans go (an argument or a variable), not the built-in default.
    endpoint_configured: bool = False
    #: Column policies (``{"email": "drop", "customer_*": "hash", "amount": "round:2"}``), docs/privacy.md.
    column_policies: Mapping[str, str] | None = None
    #: Send no input row of any model: every model is profile-only, as with ``wrap(..., sample_rows=0)``.
    profile_only: bool = False
    #: Replace e-mail addresses, card numbers, IBANs, phone numbers, IPs and SSNs in sampled strings.
    scrub_values: bool = True
    #: ``before_send(model_name, features)``: the last word on a span's features, on the worker; ``None``
    #: sends the span without them.
    before_send: BeforeSend | None = None
    #: Whether busy callers lend the export worker the GIL (docs/sdk.md); never where it cannot help.
    gil_lending: bool = True

    def __repr__(self) -> str:
        # Neither the key nor the headers (which may carry one) are ever shown.
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
        key = "None" if self.api_key is None else "'***'"
        return f"Settings(api_key={key}, {shown})"

    @property
    def traces_url(self) -> str:
        return self.traces_endpoint or self.base_url + "/v1/traces"

    @property
    def metrics_url(self) -> str:
        return self.metrics_endpoint or self.base_url + "/v1/metrics"

    def gzip_for(self, url: str) -> bool:
        """Whether requests to ``url`` are gzipped (``compression="auto"``: all but loopback ones)."""
        if self.compression != "auto":
            return self.compression == "gzip"
        return not _is_loopback(url)

    def is_default_remote(self, url: str) -> bool:
        """Whether ``url`` (the traces or the metrics URL) is the built-in default endpoint's, off this machine:
        nothing chose where that data goes."""
        return not self.endpoint_configured and url.startswith(self.base_url) and not _is_loopback(url)


def _is_loopback(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
#: Derived from other settings, never passed in.
_DERIVED = {"send_api_key", "endpoint_configured"}
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
    unknown = sorted(set(options) - (set(_FIELDS) - _DERIVED))
    if unknown:
        raise TypeError(f"aither.init() got unexpected option(s): {', '.join(unknown)}")
    values: dict[str, Any] = {k: v for k, v in options.items() if v is not None}

    values.setdefault("api_key", env.get("AITHER_API_KEY") or None)
    base_url_given = "base_url" in values or bool(env.get("AITHER_BASE_URL"))
    values.setdefault("base_url", env.get("AITHER_BASE_URL") or DEFAULT_BASE_URL)
    if "disabled" not in values:
        values["disabled"] = _env_bool("AITHER_DISABLED", env)
    if "use_otel_env" not in values:
        values["use_otel_env"] = _env_bool("AITHER_USE_OTEL_ENV", env)
    if "scrub_values" not in values:
        values["scrub_values"] = not env.get("AITHER_SCRUB_VALUES", "").strip() or _env_bool("AITHER_SCRUB_VALUES", env)
    elif not isinstance(values["scrub_values"], bool):
        raise ConfigurationError(f"scrub_values must be True or False, got {values['scrub_values']!r}")
    if "profile_only" not in values:
        values["profile_only"] = _env_bool("AITHER_PROFILE_ONLY", env)
    elif not isinstance(values["profile_only"], bool):
        raise ConfigurationError(f"profile_only must be True or False, got {values['profile_only']!r}")
    if "gil_lending" not in values:
        values["gil_lending"] = not env.get("AITHER_GIL_LENDING", "").strip() or _env_bool("AITHER_GIL_LENDING", env)
    elif not isinstance(values["gil_lending"], bool):
        raise ConfigurationError(f"gil_lending must be True or False, got {values['gil_lending']!r}")
    values.setdefault("service_name", env.get("OTEL_SERVICE_NAME") or None)
    if values["use_otel_env"]:
        _apply_otel_exporter_env(values, env, base_url_given)

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
    values["base_url"] = _base_url(values["base_url"], "base_url")
    values["endpoint_configured"] = base_url_given or values.get("traces_endpoint") is not None
    if values.get("column_policies") is not None:
        from ._privacy import ColumnPolicies, hash_key_from_env

        ColumnPolicies(values["column_policies"], hash_key=hash_key_from_env(env))  # raises PolicyError now
        values["column_policies"] = dict(values["column_policies"])
    if values.get("before_send") is not None and not callable(values["before_send"]):
        raise ConfigurationError(f"before_send must be callable, got {values['before_send']!r}")
    for name in ("traces_endpoint", "metrics_endpoint"):
        if values.get(name) is not None:
            values[name] = _url(values[name], name)
    if values.get("compression", "auto") not in ("auto", "gzip", "none"):
        raise ConfigurationError(f"compression must be 'auto', 'gzip' or 'none', got {values['compression']!r}")
    api_key = values["api_key"]
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError("api_key must be a string")
    headers = values.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigurationError("headers must map header names to string values")
    return Settings(**values)


def _url(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"{name} must start with http:// or https://, got {value!r}")
    parsed = urllib.parse.urlsplit(value)
    if not parsed.hostname:
        raise ConfigurationError(f"{name} has no host: {value!r}")
    return value


def _base_url(value: object, name: str) -> str:
    """The server's base URL. A full OTLP URL is accepted too (``http://127.0.0.1:6006/v1/traces``, as Phoenix
    and collectors print it): its ``/v1/traces`` or ``/v1/metrics`` is taken off."""
    base = _url(value, name).rstrip("/")
    for suffix in ("/v1/traces", "/v1/metrics"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _otel_headers(raw: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: ``key=value,key2=value2``, percent-encoded (the OTel specification)."""
    headers: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers


def _apply_otel_exporter_env(values: dict[str, Any], env: Mapping[str, str], base_url_given: bool) -> None:
    """Fill what arguments and ``AITHER_*`` left unset from ``OTEL_EXPORTER_OTLP_*`` (step 3 of the order)."""
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    metrics = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip()
    from_otel = False
    if not base_url_given:
        if "traces_endpoint" not in values and (traces or endpoint):
            values["traces_endpoint"] = traces or endpoint.rstrip("/") + "/v1/traces"
            from_otel = True
        if "metrics_endpoint" not in values and (metrics or endpoint):
            values["metrics_endpoint"] = metrics or endpoint.rstrip("/") + "/v1/metrics"
            from_otel = True
    if from_otel:
        values["send_api_key"] = False  # the aither key goes only where the user sends it
    if "headers" not in values and env.get("OTEL_EXPORTER_OTLP_HEADERS"):
        values["headers"] = _otel_headers(env["OTEL_EXPORTER_OTLP_HEADERS"])
    if "export_timeout" not in values and env.get("OTEL_EXPORTER_OTLP_TIMEOUT", "").strip():
        try:
            values["export_timeout"] = float(env["OTEL_EXPORTER_OTLP_TIMEOUT"]) / 1000  # milliseconds
        except ValueError:
            raise ConfigurationError(
                f"OTEL_EXPORTER_OTLP_TIMEOUT must be milliseconds, got {env['OTEL_EXPORTER_OTLP_TIMEOUT']!r}"
            ) from None
    if "compression" not in values and env.get("OTEL_EXPORTER_OTLP_COMPRESSION", "").strip():
        values["compression"] = env["OTEL_EXPORTER_OTLP_COMPRESSION"].strip().lower()
