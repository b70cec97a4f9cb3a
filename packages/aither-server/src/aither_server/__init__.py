"""The local aither server: receives what the aither SDK sends (OTLP/HTTP) into SQLite, and serves the
management API (organisation, usage, API keys) and the query API (models, metrics, predictions).

Run it with ``aither server`` (or ``python -m aither_server``); embed it with :func:`create_app` over a
:class:`Store`, or :class:`ServerThread` for a server on a background thread.
"""

from __future__ import annotations

from ._app import create_app
from ._runner import ServerThread, default_data_dir, default_db_path
from ._store import Store
from ._version import __version__

__all__ = ["ServerThread", "Store", "__version__", "create_app", "default_data_dir", "default_db_path"]
