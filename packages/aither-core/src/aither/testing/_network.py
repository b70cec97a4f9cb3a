"""Keeping tests on this machine: a URL nothing listens on."""

from __future__ import annotations

import socket

__all__ = ["closed_local_url"]


def closed_local_url() -> str:
    """``http://127.0.0.1:<port>`` with nothing listening: a connection there is refused at once.

    Point ``AITHER_BASE_URL`` at it in tests so that a client created without a URL never reaches the hosted
    default.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
