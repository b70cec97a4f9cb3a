"""The monitoring of one server process: its monitor store, webhook sender, evaluator and periodic thread,
started and stopped with the app (``create_app``'s ``monitor_interval_s`` and ``allow_private_webhooks``)."""

from __future__ import annotations

from aither_server.drift.store import DriftStore
from aither_server.monitors.evaluate import Evaluator, PeriodicEvaluator
from aither_server.monitors.store import MonitorStore
from aither_server.monitors.webhooks import Sender
from aither_server.store.database import Store

__all__ = ["Monitoring"]


class Monitoring:
    def __init__(self, store: Store, drift: DriftStore, *, interval_s: float, allow_private_webhooks: bool) -> None:
        self.allow_private_webhooks = allow_private_webhooks
        # Monitors' tables, in SQLAlchemy Core on the process's one engine (either database).
        self.monitors = MonitorStore(store.engine)
        self.sender = Sender(self.monitors, allow_private=allow_private_webhooks)
        self.evaluator = Evaluator(store, drift, self.monitors, self.sender)
        self._periodic = PeriodicEvaluator(self.evaluator, interval_s) if interval_s > 0 else None

    def start(self) -> None:
        if self._periodic is not None:
            self._periodic.start()

    def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.stop()
        self.sender.stop()
