"""Evaluating monitors: a metric over the window, compared with the threshold, the state stored, and a webhook
on each change of state; and the periodic evaluator of a server process.

The figures come from the code that answers the API (``query_metrics.metrics``; ``_drift_query.drift`` and
``data_quality``), so a monitor and the metrics endpoint never disagree. ``op threshold`` is the alert's
condition: ``accuracy < 0.8`` is ALERT when accuracy falls below 0.8. NO_DATA when the window holds fewer than
``min_rows`` rows behind the figure (labels for quality, calls for errors and latency, predictions for label
coverage, sampled values for a feature), or none at all. ``volume`` always has data: no traffic is a volume of 0.

Cycles are aligned to the wall clock (every multiple of the interval), and a process evaluates a monitor only
after claiming it until the next cycle (``MonitorStore.claim``): with several processes on one database,
exactly one of them evaluates each monitor per cycle.
"""

from __future__ import annotations

import logging
import math
import operator
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypedDict, TypeVar

from aither_server.drift.query import NotFound, data_quality, drift
from aither_server.drift.sketches import PREDICTION
from aither_server.drift.stats import DriftEntry
from aither_server.drift.store import DriftStore
from aither_server.estimate.query import estimate_window
from aither_server.estimate.store import EstimateStore
from aither_server.monitors.schemas import ESTIMATED_METRICS, metric_parts, window_seconds
from aither_server.monitors.store import NO_DATA, MonitorRecord, MonitorStore, StateChange
from aither_server.monitors.webhooks import Event, Sender
from aither_server.query import metrics as query_metrics
from aither_server.query import time as query_time
from aither_server.query.models import model_ids
from aither_server.query.time import NS
from aither_server.store.database import Store
from aither_server.store.periodic import Periodic

logger = logging.getLogger("aither_server")

__all__ = ["DEFAULT_INTERVAL_S", "Evaluator", "PeriodicEvaluator", "measure"]

#: Seconds between two evaluations of every monitor (``--monitor-interval``).
DEFAULT_INTERVAL_S = 60.0
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
#: The metrics endpoint's field behind each figure, and the count of rows that figure stands on.
_ROWS_OF = {
    "accuracy": "labels",
    "f1": "labels",
    "auc": "labels",
    "mae": "labels",
    "rmse": "labels",
    "error_rate": "calls",
    "latency_p95_ms": "calls",
    "label_coverage": "predictions",
    "volume": "predictions",
}


class _QualityColumn(TypedDict):
    """What a monitor reads of a column of a data-quality answer (``drift.query.data_quality``)."""

    name: str
    null_rate: float | None
    current_count: int


_Entry = TypeVar("_Entry", DriftEntry, _QualityColumn)


def _feature_entry(entries: Sequence[_Entry], feature: str) -> _Entry | None:
    return next((e for e in entries if e["name"] == feature), None)


def measure(store: Store, drift_store: DriftStore, monitor: MonitorRecord, now_ns: int) -> tuple[float | None, int]:
    """(value, rows) of the monitor's metric over ``[now - window, now)``; value None when there is none."""
    lo = now_ns - window_seconds(monitor.window) * NS
    kind, feature = metric_parts(monitor.metric)
    if kind in ESTIMATED_METRICS:
        return _estimated(store, monitor, kind.removeprefix("estimated_"), lo, now_ns)
    if feature is None:
        found = query_metrics.metrics(
            store.reader(),
            monitor.model,
            version=monitor.version,
            environment=monitor.environment,
            start_ns=lo,
            end_ns=now_ns,
            bucket="1d",
        )
        if found is None:
            return (0.0, 0) if kind == "volume" else (None, 0)
        figures: Mapping[str, object] = found  # read by the metric's name
        counted = figures[_ROWS_OF[kind]]
        rows = int(counted) if isinstance(counted, (int, float)) else 0
        if kind == "volume":
            return float(rows), rows
        value = found["latency_ms"]["p95"] if kind == "latency_p95_ms" else figures[kind]
        return (float(value) if isinstance(value, (int, float)) else None), rows
    window = (lo, now_ns)
    try:
        if kind == "drift":
            answer = drift(
                drift_store, monitor.model, version=monitor.version, environment=monitor.environment, window=window
            )
            columns: list[DriftEntry] = answer["features"]
            entry: DriftEntry | None = (
                answer["prediction"] if feature == PREDICTION else _feature_entry(columns, feature)
            )
            if entry is None:
                return None, 0
            # The Jensen-Shannon distance whatever the reference's size decides the default method: a monitor
            # keeps its meaning (higher is more drift, 0.1 is drift) when a bigger reference is logged.
            distance = entry["statistics"].get("jensenshannon")
            return distance, int(entry["current_count"])
        quality = data_quality(
            drift_store, monitor.model, version=monitor.version, environment=monitor.environment, window=window
        )
    except NotFound:  # no reference (drift), or no drift data for this model yet
        return None, 0
    found_columns: list[_QualityColumn] = quality["features"]
    column = _feature_entry(found_columns, feature)
    if column is None:
        return None, 0
    return column["null_rate"], int(column["current_count"])


def _estimated(store: Store, monitor: MonitorRecord, metric: str, lo: int, now_ns: int) -> tuple[float | None, int]:
    """An estimated figure over the window (no label needed), with the scored rows behind it."""
    found = estimate_window(
        store,
        EstimateStore(store.engine),
        monitor.model,
        start_ns=lo,
        end_ns=now_ns,
        now_ns=now_ns,
        version=monitor.version,
        environment=monitor.environment,
    )
    figures: Mapping[str, object] = {} if found is None else found
    figure = figures.get(metric)
    if found is None or not isinstance(figure, dict):  # no estimate, or one of the other task's metrics
        return None, 0
    value: float | None = figure["value"]
    return value, int(found["rows"])


def judge(monitor: MonitorRecord, value: float | None, rows: int) -> str:
    """The state a value makes: NO_DATA without it or below ``min_rows``, else ALERT when ``op threshold`` holds."""
    kind, _ = metric_parts(monitor.metric)
    if value is None or not math.isfinite(value) or (kind != "volume" and rows < max(1, monitor.min_rows)):
        return NO_DATA
    return "ALERT" if _OPS[monitor.op](value, monitor.threshold) else "OK"


def payload(monitor: MonitorRecord, change: StateChange, event_id: str) -> dict[str, object]:
    """The webhook's JSON body."""
    return {
        "type": "monitor.state_changed",
        "event_id": event_id,
        "monitor": {
            "id": monitor.id,
            "name": monitor.name,
            "model": monitor.model,
            "version": monitor.version,
            "environment": monitor.environment,
            "metric": monitor.metric,
            "op": monitor.op,
            "threshold": monitor.threshold,
            "window": monitor.window,
            "min_rows": monitor.min_rows,
        },
        "state": change.state,
        "previous_state": change.previous,
        "value": change.value,
        "rows": change.rows,
        "evaluated_at": query_time.iso(change.at_ns),
    }


def target_warnings(store: Store, drift_store: DriftStore, model: str, version: str | None, metric: str) -> list[str]:
    """Why a new monitor would stay NO_DATA as things stand: a model that never sent data, a column its
    reference does not have. The monitor is created all the same (its model may start sending later), and the
    creator is told (``warnings`` in the answer)."""
    _, feature = metric_parts(metric)
    known = model_ids(store.reader(), model, None, None) is not None or drift_store.has_model(model)
    if not known:
        return [f"no model named {model!r} has sent data yet: the monitor stays NO_DATA until it does"]
    if feature is None or feature == PREDICTION:
        return []
    reference = drift_store.reference(model, version, None)
    if reference is None:
        return [f"model {model!r} has no reference yet: {metric} stays NO_DATA until one is logged"]
    if feature not in reference.features:
        return [f"the reference of model {model!r} has no column {feature!r}: the monitor stays NO_DATA"]
    return []


class Evaluator:
    """Evaluates monitors of one server process and hands state changes to its webhook sender."""

    def __init__(self, store: Store, drift_store: DriftStore, monitors: MonitorStore, sender: Sender) -> None:
        self.store = store
        self.drift = drift_store
        self.monitors = monitors
        self.sender = sender

    def evaluate(self, monitor: MonitorRecord, now_ns: int | None = None) -> MonitorRecord:
        """Evaluate now; store the result; on a change of state (won by this call), send the webhook."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        value, rows = measure(self.store, self.drift, monitor, now_ns)
        state = judge(monitor, value, rows)
        change = self.monitors.record(monitor, state, value, rows, now_ns)
        if change is not None and monitor.webhook_url:
            event_id = "evt_" + secrets.token_hex(8)
            self.sender.send(
                Event(monitor.id, event_id, monitor.webhook_url, monitor.secret, payload(monitor, change, event_id))
            )
        return self.monitors.get(monitor.id) or monitor

    def cycle(self, now_ns: int, until_ns: int) -> int:
        """Claim and evaluate every enabled monitor no other process holds; the number this process evaluated."""
        done = 0
        for monitor in self.monitors.all():
            if not monitor.enabled or not self.monitors.claim(monitor.id, now_ns, until_ns):
                continue
            try:
                self.evaluate(monitor, now_ns)
                done += 1
            except Exception:  # one broken monitor must not stop the others
                logger.exception("evaluating monitor %s failed", monitor.id)
        return done


class PeriodicEvaluator(Periodic):
    """A thread that runs :meth:`Evaluator.cycle` at each multiple of ``interval_s`` of the wall clock."""

    def __init__(self, evaluator: Evaluator, interval_s: float) -> None:
        super().__init__(
            "aither-monitors", evaluator.cycle, interval_s, failed="monitor cycle failed", aligned=True, join_s=10.0
        )
