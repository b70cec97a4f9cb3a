"""Where a webhook may go: http(s) URLs whose host resolves only to public addresses, unless the server was
started with ``--allow-private-webhooks``. A monitor is created by an admin key, but a server that posts to
any address it is given is a way into the network it runs in (SSRF): loopback, private, link-local (cloud
metadata at 169.254.169.254), multicast and reserved addresses are refused, and so is every IPv6 form that
embeds or reaches one (IPv4-mapped, -compatible and -translated, NAT64, 6to4, Teredo, site-local).

The check runs when a monitor is saved and again before each delivery, since a name may resolve elsewhere
later; a delivery connects to the very addresses its check accepted (:func:`resolve_target`), never resolving
the name a second time."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Target", "UnsafeTarget", "check_target", "resolve_target"]


#: A resolved address as ``socket.getaddrinfo`` gives it: IPv4 (host, port), IPv6 (host, port, flow, scope).
SockAddr = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]


class UnsafeTarget(ValueError):
    """A webhook URL that may not be used; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (the addresses the check accepted) and what to ask for."""

    scheme: str
    host: str
    port: int
    #: The request target: path and query.
    path: str
    #: ``(family, sockaddr)`` of each address the host resolved to, in the resolver's order.
    addresses: tuple[tuple[int, SockAddr], ...]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: IPv6 ranges refused whatever they embed: IPv4-compatible (deprecated; ``::127.0.0.1``), IPv4-translated
#: (SIIT), local-use NAT64, Teredo (a tunnel to an address it hides), site-local (deprecated, private).
_REFUSED_V6 = tuple(
    ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "2001::/32", "fec0::/10")
)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _REFUSED_V6):
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded.is_global and not embedded.is_multicast
    return ip.is_global and not ip.is_multicast


def _parse(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"webhook_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("webhook_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeTarget("webhook_url must not hold credentials; the signature authenticates the server")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """``url`` resolved once and checked: :class:`UnsafeTarget` unless it is an http(s) URL whose host resolves,
    and only to public addresses (any address with ``allow_private``)."""
    scheme, host, port, path = _parse(url)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise UnsafeTarget(f"webhook_url's host {host!r} does not resolve") from None
    if not allow_private:
        for *_, sockaddr in found:
            if not _public(str(sockaddr[0])):
                raise UnsafeTarget(
                    f"webhook_url's host {host!r} is a private or loopback address; start the server "
                    "with --allow-private-webhooks to allow it"
                )
    return Target(scheme, host, port, path, tuple((family, sockaddr) for family, *_, sockaddr in found))


def check_target(url: str, *, allow_private: bool) -> None:
    """Raise :class:`UnsafeTarget` unless ``url`` is an http(s) URL with a host this server may post to (with
    ``allow_private``, any host: it is resolved when a delivery is made)."""
    if allow_private:
        _parse(url)
    else:
        resolve_target(url, allow_private=False)
