"""Monitors' tables and their statements, in SQLAlchemy Core so the same statements run on SQLite and PostgreSQL.

- ``monitors``: one row per monitor, its current state and ``claimed_until_ns``: the periodic evaluator of any
  server process claims a monitor for a cycle with one conditional UPDATE, so exactly one process evaluates it.
- ``monitor_states``: the state history (one row per change of state).
- ``monitor_deliveries``: each webhook delivery attempt, with its answer or error.

State changes are conditional UPDATEs too (``WHERE state = <the state read>``): of two evaluations racing to
the same change, one wins, and only the winner records history and sends the webhook (``v0011_monitors``).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Mapping

from sqlalchemy import Engine, RowMapping, Table, delete, insert, select, update

from aither_server.store.monitor_tables import metadata, monitor_deliveries, monitor_states, monitors

__all__ = [
    "Delivery",
    "MonitorRecord",
    "MonitorStore",
    "StateChange",
    "metadata",
    "monitor_deliveries",
    "monitor_states",
    "monitors",
]

#: The state of a monitor not yet evaluated, or without enough rows in its window.
NO_DATA = "NO_DATA"
#: The fields a client sets (create, update).
FIELDS = (
    "name",
    "model",
    "version",
    "environment",
    "metric",
    "op",
    "threshold",
    "window",
    "min_rows",
    "webhook_url",
    "enabled",
)


@dataclasses.dataclass(frozen=True)
class MonitorRecord:
    id: str
    name: str
    model: str
    version: str | None
    environment: str | None
    metric: str
    op: str
    threshold: float
    window: str
    min_rows: int
    webhook_url: str | None
    secret: str
    enabled: bool
    state: str
    value: float | None
    rows: int | None
    last_evaluated_ns: int | None
    created_ns: int


@dataclasses.dataclass(frozen=True)
class StateChange:
    state: str
    previous: str
    value: float | None
    rows: int | None
    at_ns: int


@dataclasses.dataclass(frozen=True)
class Delivery:
    event_id: str
    attempt: int
    url: str
    at_ns: int
    status_code: int | None
    ok: bool
    error: str | None


def _record(m: RowMapping) -> MonitorRecord:
    return MonitorRecord(
        **{f.name: m[f.name] for f in dataclasses.fields(MonitorRecord) if f.name not in ("enabled", "threshold")},
        enabled=bool(m["enabled"]),
        threshold=float(m["threshold"]),
    )


class MonitorStore:
    """Reads and writes the monitors' tables through one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, fields: Mapping[str, object]) -> MonitorRecord:
        values = {name: fields[name] for name in FIELDS}
        monitor_id = "mon_" + secrets.token_hex(8)
        row = {
            **values,
            "id": monitor_id,
            # A whsec_ secret, as the signature's key; it is shown once, at creation, and kept to sign with.
            "secret": "whsec_" + secrets.token_hex(24),
            "state": NO_DATA,
            "value": None,
            "rows": None,
            "last_evaluated_ns": None,
            "claimed_until_ns": 0,
            "created_ns": time.time_ns(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(monitors).values(**row))
        found = self.get(monitor_id)
        assert found is not None
        return found

    def get(self, monitor_id: str) -> MonitorRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(monitors).where(monitors.c.id == monitor_id)).mappings().first()
        return None if row is None else _record(row)

    def all(self, model: str | None = None) -> list[MonitorRecord]:
        query = select(monitors).order_by(monitors.c.created_ns, monitors.c.id)
        if model is not None:
            query = query.where(monitors.c.model == model)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query).mappings()]

    def update(self, monitor_id: str, fields: Mapping[str, object]) -> MonitorRecord | None:
        changes = {k: v for k, v in fields.items() if k in FIELDS}
        if changes:
            with self.engine.begin() as conn:
                conn.execute(update(monitors).where(monitors.c.id == monitor_id).values(**changes))
        return self.get(monitor_id)

    def delete(self, monitor_id: str) -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(delete(monitors).where(monitors.c.id == monitor_id)).rowcount
            conn.execute(delete(monitor_states).where(monitor_states.c.monitor_id == monitor_id))
            conn.execute(delete(monitor_deliveries).where(monitor_deliveries.c.monitor_id == monitor_id))
        return bool(gone)

    def claim(self, monitor_id: str, now_ns: int, until_ns: int) -> bool:
        """Claim a monitor until ``until_ns`` if no claim holds at ``now_ns``; True for the one claimer."""
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(monitors)
                .where(monitors.c.id == monitor_id, monitors.c.claimed_until_ns <= now_ns)
                .values(claimed_until_ns=until_ns)
            ).rowcount
        return claimed == 1

    def record(
        self, monitor: MonitorRecord, state: str, value: float | None, rows: int | None, now_ns: int
    ) -> StateChange | None:
        """Store an evaluation. A change of state is taken only if the state is still the one ``monitor`` read;
        then it is added to the history and returned (the caller sends its webhook). Else ``None``."""
        with self.engine.begin() as conn:
            if state == monitor.state:
                conn.execute(
                    update(monitors)
                    .where(monitors.c.id == monitor.id)
                    .values(value=value, rows=rows, last_evaluated_ns=now_ns)
                )
                return None
            won = conn.execute(
                update(monitors)
                .where(monitors.c.id == monitor.id, monitors.c.state == monitor.state)
                .values(state=state, value=value, rows=rows, last_evaluated_ns=now_ns)
            ).rowcount
            if won != 1:
                return None
            change = StateChange(state=state, previous=monitor.state, value=value, rows=rows, at_ns=now_ns)
            conn.execute(insert(monitor_states).values(monitor_id=monitor.id, **dataclasses.asdict(change)))
        return change

    def _newest(self, table: Table, monitor_id: str, limit: int) -> list[RowMapping]:
        """The monitor's ``limit`` newest rows of ``table`` (its state history or its deliveries)."""
        query = (
            select(table)
            .where(table.c.monitor_id == monitor_id)
            .order_by(table.c.at_ns.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def history(self, monitor_id: str, limit: int = 100) -> list[StateChange]:
        rows = self._newest(monitor_states, monitor_id, limit)
        return [StateChange(r["state"], r["previous"], r["value"], r["rows"], r["at_ns"]) for r in rows]

    def log_delivery(self, monitor_id: str, delivery: Delivery) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(monitor_deliveries).values(monitor_id=monitor_id, **dataclasses.asdict(delivery)))

    def deliveries(self, monitor_id: str, limit: int = 100) -> list[Delivery]:
        rows = self._newest(monitor_deliveries, monitor_id, limit)
        return [
            Delivery(r["event_id"], r["attempt"], r["url"], r["at_ns"], r["status_code"], bool(r["ok"]), r["error"])
            for r in rows
        ]
