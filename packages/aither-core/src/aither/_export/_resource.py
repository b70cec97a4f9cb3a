"""The OTLP resource attributes: who is sending (kept apart from _otlp so it imports no protobuf)."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping

from .._version import __version__

__all__ = ["resource_attributes"]


def resource_attributes(service_name: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The resource: ``OTEL_RESOURCE_ATTRIBUTES``, then the SDK's own keys, then ``service.name``
    (``service_name`` as given to ``init``, else ``OTEL_SERVICE_NAME``)."""
    env = os.environ if environ is None else environ
    attributes: dict[str, str] = {}
    for item in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    attributes.update(
        {
            "telemetry.sdk.name": "aither",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": __version__,
        }
    )
    # ``init(service_name=...)`` first, as for every setting; then the OTel variables; then aither's default.
    attributes["service.name"] = (
        service_name or env.get("OTEL_SERVICE_NAME") or attributes.get("service.name") or "aither"
    )
    return attributes
