"""Real ``aither server`` processes in tests: a free port, and waiting until one answers."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx

__all__ = ["free_port", "wait_serving"]

#: Seconds a starting server may take: imports, migrations and the drift process on a loaded 2-core machine.
START_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def wait_serving(proc: subprocess.Popen[str] | subprocess.Popen[bytes], url: str, **headers: str) -> None:
    """Until ``url`` answers 200 (``/healthz``, or an authenticated route); fails if the process exits first or
    :data:`START_S` pass."""
    deadline = time.monotonic() + START_S
    while not answers(url, headers or None):
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
