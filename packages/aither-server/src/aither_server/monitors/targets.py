"""Where a webhook may go: http(s) URLs whose host resolves only to public addresses, unless the server was
started with ``--allow-private-webhooks``. A monitor is created by an admin key, but a server that posts to
any address it is given is a way into the network it runs in (SSRF): loopback, private, link-local (cloud
metadata at 169.254.169.254), multicast and reserved addresses are refused. The check runs when a monitor is
saved and again before each delivery, since a name may resolve elsewhere later."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["UnsafeTarget", "check_target"]


class UnsafeTarget(ValueError):
    """A webhook URL that may not be used; the message says why."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_target(url: str, *, allow_private: bool) -> None:
    """Raise :class:`UnsafeTarget` unless ``url`` is an http(s) URL with a host this server may post to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"webhook_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("webhook_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeTarget("webhook_url must not hold credentials; the signature authenticates the server")
    if allow_private:
        return
    try:
        found = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    except OSError:
        raise UnsafeTarget(f"webhook_url's host {parts.hostname!r} does not resolve") from None
    for *_, sockaddr in found:
        if not _public(str(sockaddr[0])):
            raise UnsafeTarget(
                f"webhook_url's host {parts.hostname!r} is a private or loopback address; start the server "
                "with --allow-private-webhooks to allow it"
            )
