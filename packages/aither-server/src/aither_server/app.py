"""The ASGI application: one router per resource (``api/routes/``, and the dashboard's ``ui/pages/``) over an
open store, with the error format of ``api/errors.py`` and the keys of ``api/auth.py``.

Every error answers ``{"error": {"type", "message"}}`` (docs/management-api.md). Messages never echo the
API key that was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI

from aither_server._version import __version__
from aither_server.api.body_guard import BodyGuard, BodyLimits
from aither_server.api.errors import ApiError, install_handlers, logger
from aither_server.api.routes import drift as drift_routes
from aither_server.api.routes import ingest as ingest_routes
from aither_server.api.routes import management as management_routes
from aither_server.api.routes import monitors as monitor_routes
from aither_server.api.routes import performance as performance_routes
from aither_server.api.routes import privacy as privacy_routes
from aither_server.api.routes import quality as quality_routes
from aither_server.api.routes import query as query_routes
from aither_server.api.schemas import Health
from aither_server.drift.feeder import DriftFeeder, Feeder
from aither_server.drift.process import DriftProcess
from aither_server.drift.store import DriftStore
from aither_server.estimate.store import EstimateStore
from aither_server.ingest import spans as otlp_spans
from aither_server.ingest.inflight import ByteBudget
from aither_server.ingest.refusal_log import RefusalLog
from aither_server.monitors.evaluate import DEFAULT_INTERVAL_S
from aither_server.monitors.service import Monitoring
from aither_server.privacy.policies import PolicyCache
from aither_server.store.database import Store
from aither_server.ui import pages as ui_pages
from aither_server.ui.sessions import SessionStore

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_LABEL_GRACE_S",
    "DEFAULT_MAX_FORM_BYTES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "ApiError",
    "create_app",
    "default_inflight_bytes",
    "inflight_bytes",
]

#: Compressed request size accepted on /v1/traces: the OpenTelemetry Collector's default.
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
#: Decompressed size; a gzip bomb stops here, having used at most this much memory.
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
#: Seconds a request's whole body may take to arrive (408 after): a 20 MiB body at 1 MB/s takes 20.
DEFAULT_BODY_TIMEOUT_S = 60.0
#: The dashboard's forms (sign-in, monitors, keys) are a few hundred bytes.
DEFAULT_MAX_FORM_BYTES = 64 * 1024
#: How long a label may wait for its prediction before it is listed as an unknown trace (labels may come first).
DEFAULT_LABEL_GRACE_S = 600.0


def default_inflight_bytes(max_body_bytes: int, max_decompressed_bytes: int) -> int:
    """Request bytes held at once by default: two maximum-size requests (each its body and its decompressed
    body), so one always fits; ordinary requests (kilobytes) by the thousand."""
    return 2 * (max_body_bytes + max_decompressed_bytes)


def inflight_bytes(max_body_bytes: int, max_decompressed_bytes: int, requested: int | None) -> int:
    """The in-flight cap to use: ``requested``, or the default; ValueError if it cannot hold one request."""
    if requested is None:
        return default_inflight_bytes(max_body_bytes, max_decompressed_bytes)
    if requested < max_body_bytes + max_decompressed_bytes:
        raise ValueError(
            "the in-flight cap must hold one maximum-size request (the body limit plus the decompressed limit)"
        )
    return requested


class AppOptions(TypedDict, total=False):
    """:func:`create_app`'s options, as :class:`~aither_server.runner.ServerThread` passes them on."""

    max_body_bytes: int
    max_decompressed_bytes: int
    label_grace_s: float
    close_store: bool
    max_inflight_bytes: int | None
    max_attribute_bytes: int
    monitor_interval_s: float
    allow_private_webhooks: bool
    drift_process: bool
    body_timeout_s: float


def create_app(
    store: Store,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    label_grace_s: float = DEFAULT_LABEL_GRACE_S,
    close_store: bool = True,
    max_inflight_bytes: int | None = None,
    max_attribute_bytes: int = otlp_spans.DEFAULT_MAX_ATTRIBUTE_BYTES,
    monitor_interval_s: float = DEFAULT_INTERVAL_S,
    allow_private_webhooks: bool = False,
    drift_process: bool = False,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
) -> FastAPI:
    """The ASGI application over an open, migrated :class:`Store`. The app closes the store on shutdown.

    ``max_inflight_bytes`` caps the request bytes held at once (default :func:`default_inflight_bytes`); it
    must hold one maximum-size request. Monitors are evaluated every ``monitor_interval_s`` (0: only on
    request); webhooks may target private addresses only with ``allow_private_webhooks``. With
    ``drift_process`` (``aither server``), drift's sketches are fed in a process of their own, off the cores'
    share that serves requests; else on a thread of this one. Every request body must arrive within
    ``body_timeout_s`` and is capped at ``max_body_bytes`` (API, ingestion) or 64 KiB (dashboard forms), the key
    checked before a byte of it is read (``api/body_guard.py``).
    """
    max_inflight_bytes = inflight_bytes(max_body_bytes, max_decompressed_bytes, max_inflight_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        monitoring.start()
        yield
        monitoring.stop()
        feeder.close()
        if close_store:
            store.close()

    app = FastAPI(
        title="aither server",
        version=__version__,
        description="OTLP ingestion of model predictions and labels, the management API and the query API.",
        lifespan=lifespan,
    )
    # What the routers read from the request's app: the store and the settings of this server.
    app.state.store = store
    # The server's privacy policies, cached in this process (``privacy/policies.py``).
    app.state.privacy = PolicyCache(store)
    # Drift's own tables, through SQLAlchemy Core on the same database (docs/drift.md).
    drift = DriftStore(store.engine)
    feeder: Feeder = DriftProcess(drift, store.sqlalchemy_url) if drift_process else DriftFeeder(drift)
    app.state.drift = drift
    app.state.drift_feeder = feeder
    app.state.estimates = EstimateStore(store.engine)
    monitoring = Monitoring(store, drift, interval_s=monitor_interval_s, allow_private_webhooks=allow_private_webhooks)
    app.state.monitoring = monitoring
    # The dashboard's sign-in sessions, in the database so every server process knows them.
    app.state.ui_sessions = SessionStore(store.engine, store)
    app.state.label_grace_s = label_grace_s
    app.state.ingest = ingest_routes.IngestLimits(
        max_body_bytes=max_body_bytes,
        max_decompressed_bytes=max_decompressed_bytes,
        max_attribute_bytes=max_attribute_bytes,
        budget=ByteBudget(max_inflight_bytes),
        refusals=RefusalLog(logger),
    )
    install_handlers(app)
    app.add_middleware(
        BodyGuard,
        store=store,
        limits=BodyLimits(keyed_bytes=max_body_bytes, form_bytes=DEFAULT_MAX_FORM_BYTES, timeout_s=body_timeout_s),
    )

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """200 once the database is open and migrated (the app is only served after that)."""
        return Health(status="ok", version=__version__)

    app.include_router(ingest_routes.router)
    app.include_router(management_routes.router)
    app.include_router(query_routes.router)
    app.include_router(drift_routes.router)
    app.include_router(quality_routes.router)
    app.include_router(performance_routes.router)
    app.include_router(monitor_routes.router)
    app.include_router(privacy_routes.router)
    app.include_router(ui_pages.router)

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            # FastAPI documents its own routes; /v1/traces is an ASGI route it cannot see.
            ingest_routes.document_traces(FastAPI.openapi(app))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    return app
