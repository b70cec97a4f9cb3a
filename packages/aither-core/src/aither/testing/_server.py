"""A real aither server on 127.0.0.1 with the SDK pointed at it, for end-to-end tests of what a model logs.

Needs ``aither-server`` installed (it is imported when a server starts, never by ``import aither.testing``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import _client

__all__ = ["LiveServer", "live_server"]

ADMIN_KEY = "aith_live_server_admin_key_0123456789"


class LiveServer:
    """The running server: its ``url``, and ``get(path, **params)`` of its API as an admin (JSON)."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        assert response.status_code == 200, response.text
        return response.json()

    def drift(self, model: str, **params: Any) -> dict[str, Any]:
        """``/api/v1/models/{model}/drift``, with each feature's verdict by name under ``by_name``."""
        found = dict(self.get(f"/api/v1/models/{model}/drift", **params))
        found["by_name"] = {feature["name"]: feature for feature in found["features"]}
        return found

    def drifted(self, model: str, **params: Any) -> set[str]:
        """The names of the features the server flags as drifted."""
        return {name for name, feature in self.drift(model, **params)["by_name"].items() if feature["drifted"]}

    def metrics(self, model: str, **params: Any) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/models/{model}/metrics", **params))


@contextmanager
def live_server(folder: Path | None = None, **init_options: object) -> Iterator[LiveServer]:
    """A server on a fresh SQLite file (in ``folder``, else a temporary one), and ``aither.init`` pointed at it
    with its admin key; the previous client is restored afterwards."""
    from aither_server import ServerThread, Store

    with tempfile.TemporaryDirectory(prefix="aither-live-") as scratch:
        store = Store((folder or Path(scratch)) / "aither.db")
        store.bootstrap(ADMIN_KEY)
        previous = _client.get_client()
        with ServerThread(store) as thread:
            _client.init(**{"api_key": ADMIN_KEY, "base_url": thread.url, "flush_interval": 0.05, **init_options})
            server = LiveServer(thread.url)
            try:
                yield server
            finally:
                server.http.close()
                _client.get_client().exporter.close(timeout=5)
                _client.restore(previous)
