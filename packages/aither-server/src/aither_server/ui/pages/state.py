"""The application's stores as the pages reach them (``app.state``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from aither_server.drift.feeder import Feeder
from aither_server.drift.store import DriftStore
from aither_server.monitors.service import Monitoring
from aither_server.query import models as query_models
from aither_server.store.database import Store
from aither_server.ui.sessions import SessionStore

__all__ = ["fresh_drift", "model_names", "monitoring", "sessions", "store"]


def sessions(request: Request) -> SessionStore:
    found: SessionStore = request.app.state.ui_sessions
    return found


def store(request: Request) -> Store:
    found: Store = request.app.state.store
    return found


def monitoring(request: Request) -> Monitoring:
    found: Monitoring = request.app.state.monitoring
    return found


async def fresh_drift(request: Request) -> DriftStore:
    """Drift's tables once every span stored so far is in them, as the drift API reads them."""
    feeder: Feeder = request.app.state.drift_feeder
    await run_in_threadpool(feeder.flush)
    return feeder.store


async def model_names(request: Request) -> list[str]:
    """The names of the models the server has seen, in order."""
    return [m["name"] for m in await run_in_threadpool(query_models.list_models, store(request).reader())]
