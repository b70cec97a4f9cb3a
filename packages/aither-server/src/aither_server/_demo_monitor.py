"""The monitor ``aither demo`` leaves behind, so the dashboard's monitors page has one to show: the demo
model's accuracy over the last hour, alerting below 0.97 (the demo's forest scores about 0.95 on its held-out
rows, so it fires), evaluated once at the end of the run."""

from __future__ import annotations

from ._drift_store import DriftStore, drift_engine
from ._monitor_eval import Evaluator
from ._monitor_store import MonitorRecord, MonitorStore
from ._store import Store
from ._webhooks import Sender

__all__ = ["DEMO_MONITOR", "leave_demo_monitor"]

DEMO_MONITOR = "demo accuracy"


def leave_demo_monitor(store: Store, model: str) -> MonitorRecord:
    """Create the demo monitor unless it exists, evaluate it now, and return it as evaluated."""
    monitors = MonitorStore(drift_engine(store.sqlalchemy_url))
    drift = DriftStore(drift_engine(store.sqlalchemy_url))
    sender = Sender(monitors, allow_private=False)
    try:
        found = next((m for m in monitors.all(model) if m.name == DEMO_MONITOR), None)
        if found is None:
            found = monitors.create(
                {
                    "name": DEMO_MONITOR,
                    "model": model,
                    "version": None,
                    "environment": None,
                    "metric": "accuracy",
                    "op": "<",
                    "threshold": 0.97,
                    "window": "1h",
                    "min_rows": 20,
                    "webhook_url": None,
                    "enabled": True,
                }
            )
        return Evaluator(store, drift, monitors, sender).evaluate(found)
    finally:
        sender.stop()
        drift.dispose()
        monitors.dispose()
