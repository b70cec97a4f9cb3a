"""The process-wide client: settings plus the exporter, created by ``init()`` or lazily on first use."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
from typing import TYPE_CHECKING, Protocol

from ._config import Settings, load_settings
from ._records import ModelIdentity, SpanRecord
from ._stats import ExporterStats, Stats, stats_dict

if TYPE_CHECKING:
    from ._privacy import Privacy

__all__ = ["Client", "Exporter", "KeepEverything", "get_client", "init", "replace_exporter", "restore", "shutdown"]

logger = logging.getLogger("aither")


class Exporter(Protocol):
    """Where records go: the OTLP batch exporter, or ``aither.testing``'s in-memory capture."""

    #: 1 while every call is kept; else :meth:`admit` keeps 1 call in ``keep_every`` (read first, as a fast path).
    keep_every: int

    def admit(self) -> int:
        """0 to skip the next prediction (overload), else how many calls a kept one stands for (1 normally)."""
        ...

    def skip(self, trace_id: int, model: ModelIdentity) -> None: ...
    def submit(self, record: SpanRecord) -> None: ...
    def flush(self, timeout: float | None = None) -> bool: ...
    def close(self, timeout: float | None = 5.0, *, reason: str = "shutdown") -> bool: ...
    def stats(self) -> ExporterStats: ...


class KeepEverything:
    """The admission half of :class:`Exporter` for exporters that never shed load."""

    keep_every = 1

    def admit(self) -> int:
        return 1

    def skip(self, trace_id: int, model: ModelIdentity) -> None:
        raise AssertionError("admit() never skips")


class _NullExporter(KeepEverything):
    """``AITHER_DISABLED=1``: records are counted and discarded; trace ids still work."""

    def __init__(self) -> None:
        self.queued = 0

    def submit(self, record: SpanRecord) -> None:
        self.queued += 1

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = 5.0, *, reason: str = "shutdown") -> bool:
        return True

    def stats(self) -> ExporterStats:
        return stats_dict(queued=self.queued, exported=0, dropped={"disabled": self.queued} if self.queued else {})


class Client:
    """Settings and the exporter they configure. ``repr`` never shows the API key."""

    def __init__(self, settings: Settings, exporter: Exporter | None = None) -> None:
        self.settings = settings
        self.internal_errors = 0
        self.privacy = privacy_of(settings)
        if exporter is not None:
            self.exporter: Exporter = exporter
        elif settings.disabled:
            self.exporter = _NullExporter()
        else:
            # Everything the worker needs is imported here, on the caller's thread: a worker importing on its
            # first run waits for the GIL at every step while a busy caller holds it.
            from ._export._resource import resource_attributes
            from ._export._worker import BatchExporter

            self.exporter = BatchExporter(settings, resource_attributes(settings.service_name), privacy=self.privacy)

    def __repr__(self) -> str:
        return f"<aither.Client base_url={self.settings.base_url!r} disabled={self.settings.disabled}>"

    def submit(self, record: SpanRecord) -> None:
        self.exporter.submit(record)

    def stats(self) -> Stats:
        from . import _aggregates

        return {
            **self.exporter.stats(),
            "internal_errors": self.internal_errors,
            "models": _aggregates.totals(),
            "redactions": self.privacy.redactions.snapshot(),
        }


_lock = threading.RLock()
_client: Client | None = None
_atexit_registered = False
_warned_no_key = False


def _install(client: Client) -> None:
    global _client, _atexit_registered
    _client = client
    if not _atexit_registered:
        atexit.register(shutdown)
        _atexit_registered = True


def get_client() -> Client:
    """The current client; built from the environment on first use when ``init()`` was not called."""
    client = _client
    if client is not None:
        return client
    with _lock:
        if _client is not None:
            return _client
        try:
            settings = load_settings()
        except Exception as exc:  # lazy init must never raise into a predict call
            logger.warning("aither: invalid environment settings (%s); telemetry is disabled", exc)
            settings = Settings(disabled=True)
        _warn_if_no_key(settings)
        client = Client(settings)
        _install(client)
        return client


def privacy_of(settings: Settings) -> Privacy:
    from ._privacy import ColumnPolicies, Privacy, hash_key_from_env

    policies = ColumnPolicies(settings.column_policies, hash_key=hash_key_from_env())
    return Privacy(policies, scrub_values=settings.scrub_values, before_send=settings.before_send)


def _warn_if_no_key(settings: Settings) -> None:
    global _warned_no_key
    if settings.api_key is None and not settings.disabled and not _warned_no_key:
        _warned_no_key = True
        logger.warning(
            "aither: no API key (set AITHER_API_KEY or call aither.init(api_key=...)); "
            "the server may refuse predictions"
        )


def init(**options: object) -> Client:
    """Validate options, then replace the current client, flushing the old one first."""
    settings = load_settings(None, **options)  # raises before anything changes
    _warn_if_no_key(settings)
    with _lock:
        old = _client
        client = Client(settings)
        _install(client)
    if old is not None:
        old.exporter.close(timeout=old.settings.exit_timeout)
    return client


def replace_exporter(exporter: Exporter) -> Client:
    """Install a client with ``exporter`` and the current settings; returns the previous client."""
    with _lock:
        previous = get_client()
        _install(Client(dataclasses.replace(previous.settings, disabled=False), exporter))
        return previous


def restore(client: Client) -> None:
    with _lock:
        _install(client)


def shutdown() -> None:
    """``atexit``: close the current client within its exit deadline, so a dead backend cannot hang exit."""
    client = _client
    if client is None:
        return
    try:
        client.exporter.close(timeout=client.settings.exit_timeout, reason="exit")
    except Exception:
        logger.debug("aither: error while closing at exit", exc_info=True)
