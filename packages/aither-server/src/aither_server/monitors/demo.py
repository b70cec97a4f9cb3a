"""The monitors ``aither demo`` leaves behind, so the dashboard's monitors page has something to show, each
evaluated once at the end of the run:

* ``demo accuracy``: the model's accuracy over the last hour, alerting below 0.97 (the demo's forest scores
  about 0.95 on its held-out rows, so it fires);
* ``demo drift``: the drift of the feature the demo shifts half-way (``mean radius``) against the training
  reference: a drift monitor reads the Jensen-Shannon distance whatever the reference's size (docs/monitors.md),
  and this one fires at 0.1 and above.
"""

from __future__ import annotations

from aither_server.drift.store import DriftStore
from aither_server.monitors.evaluate import Evaluator
from aither_server.monitors.store import MonitorRecord, MonitorStore
from aither_server.monitors.webhooks import Sender
from aither_server.store.database import Store

__all__ = ["DEMO_MONITORS", "leave_demo_monitors"]


def _demo_monitors(model: str, shifted_feature: str) -> list[dict[str, object]]:
    common = {"model": model, "window": "1h", "min_rows": 20, "webhook_url": None, "enabled": True}
    return [
        {
            **common,
            "name": "demo accuracy",
            "version": None,
            "environment": None,
            "metric": "accuracy",
            "op": "<",
            "threshold": 0.97,
        },
        {
            **common,
            "name": "demo drift",
            "version": "1.0",
            "environment": "demo",
            "metric": f"drift:{shifted_feature}",
            "op": ">=",
            "threshold": 0.1,
        },
    ]


#: The names of the monitors the demo leaves, in the order it prints them.
DEMO_MONITORS = tuple(str(monitor["name"]) for monitor in _demo_monitors("", ""))


def leave_demo_monitors(store: Store, model: str, shifted_feature: str) -> list[MonitorRecord]:
    """Create the demo monitors that do not exist yet, evaluate them now, and return them as evaluated."""
    monitors = MonitorStore(store.engine)
    drift = DriftStore(store.engine)
    sender = Sender(monitors, allow_private=False)
    try:
        existing = {m.name: m for m in monitors.all(model)}
        evaluator = Evaluator(store, drift, monitors, sender)
        evaluated = []
        for wanted in _demo_monitors(model, shifted_feature):
            found = existing.get(str(wanted["name"])) or monitors.create(wanted)
            evaluated.append(evaluator.evaluate(found))
        return evaluated
    finally:
        sender.stop()
