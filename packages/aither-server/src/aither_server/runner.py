"""Running the server: the default database location, and uvicorn in a background thread (demo, tests)."""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import uvicorn

from aither_server.app import create_app
from aither_server.http_head import BoundedHead
from aither_server.store.database import Store

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from aither_server.app import AppOptions

__all__ = ["SHUTDOWN_GRACE_S", "CannotListen", "ServerThread", "default_db_path", "default_data_dir", "listen"]

#: Seconds a stopping server waits for requests in progress before it closes them.
SHUTDOWN_GRACE_S = 5


def default_data_dir() -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/aither`` (``~/.local/share/aither``) on Linux,
    ``~/Library/Application Support/aither`` on macOS, ``%LOCALAPPDATA%\\aither`` on Windows."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "aither"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "aither"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share") / "aither"


def default_db_path() -> Path:
    return default_data_dir() / "aither.db"


class CannotListen(OSError):
    """The server cannot listen on the address asked for; the message is one line saying why."""


def listen(host: str, port: int, way_out: str = "--port N") -> socket.socket:
    """A socket bound to (host, port), for uvicorn to serve on. Raises :class:`CannotListen` with one line
    naming the port and ``way_out`` (how to choose another) when the port is taken or not allowed."""
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {host}: {exc.strerror or exc}") from None
    try:
        if sys.platform != "win32":
            # Lets a restarted server reuse a port whose old connections linger in TIME_WAIT; on Linux and
            # macOS it never lets two servers listen on one port (on Windows it would, so it is not set there).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(
                f"port {port} on {host} is already in use (another aither server, or an OpenTelemetry collector: "
                f"4318 is OTLP/HTTP's usual port); start on another with {way_out}"
            ) from None
        if exc.errno == errno.EACCES:
            raise CannotListen(
                f"not allowed to listen on port {port} on {host}; choose another with {way_out}"
            ) from None
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class ServerThread:
    """The aither server on a background thread, on a free port unless one is given.

    ``with ServerThread(store) as server: server.url`` -- the context manager waits until the server
    accepts connections and stops it on exit (closing the store).
    """

    def __init__(
        self, store: Store, *, host: str = "127.0.0.1", port: int = 0, **app_options: Unpack[AppOptions]
    ) -> None:
        self.store = store
        self._sock = listen(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        app = create_app(store, **app_options)
        # Stopping abandons requests still running after the grace (a stalled client never holds it up).
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            http=BoundedHead,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="aither-server", daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the aither server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
