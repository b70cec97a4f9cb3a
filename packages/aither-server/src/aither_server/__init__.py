"""The local aither server: receives what the aither SDK sends (OTLP/HTTP) into SQLite, and serves the
management API (organisation, usage, API keys) and the query API (models, metrics, predictions).

Run it with ``aither server`` (or ``python -m aither_server``); embed it with :func:`create_app` over a
:class:`Store`, or :class:`ServerThread` for a server on a background thread.

The names below load on first use: the drift process (``drift/process.py``) imports this package, and needs
none of the web framework, the migrations or the templates (seconds of CPU at every server start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from aither_server._version import __version__

if TYPE_CHECKING:
    from aither_server.app import create_app
    from aither_server.runner import ServerThread, default_data_dir, default_db_path
    from aither_server.store.database import Store

__all__ = ["ServerThread", "Store", "__version__", "create_app", "default_data_dir", "default_db_path"]

_HOMES = {
    "create_app": ".app",
    "ServerThread": ".runner",
    "default_data_dir": ".runner",
    "default_db_path": ".runner",
    "Store": ".store.database",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
