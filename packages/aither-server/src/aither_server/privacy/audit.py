"""The audit log: one entry per policy change and per erasure (who: the API key's id; when; what; counts),
written in the transaction of the change it records, so an entry exists exactly when its change happened."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping

from sqlalchemy import bindparam, insert, select

from aither_server.store.core_tables import audit_log
from aither_server.store.engine import Connection, run

__all__ = ["AuditEntry", "entries", "record"]


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    id: int
    time_ns: int
    key_id: str
    action: str
    """``policy.set``, ``policy.delete`` or ``erasure``."""
    target: str
    """The model of a policy (``*``: the organisation's); ``trace:<hex>`` or ``entity:<hash>`` of an erasure."""
    detail: dict[str, object]


_a = audit_log.c
_RECORD = (
    insert(audit_log)
    .inline()
    .values(  # inline: no RETURNING id on PostgreSQL
        time_ns=bindparam("time_ns"),
        key_id=bindparam("key_id"),
        action=bindparam("action"),
        target=bindparam("target"),
        detail=bindparam("detail"),
    )
)
_ENTRIES = (
    select(_a.id, _a.time_ns, _a.key_id, _a.action, _a.target, _a.detail)
    .where(_a.id < bindparam("before"))
    .order_by(_a.id.desc())
    .limit(bindparam("limit"))
)


def record(conn: Connection, key_id: str, action: str, target: str, detail: Mapping[str, object]) -> None:
    run(
        conn,
        _RECORD,
        {
            "time_ns": time.time_ns(),
            "key_id": key_id,
            "action": action,
            "target": target,
            "detail": json.dumps(detail, separators=(",", ":"), sort_keys=True),
        },
    )


def entries(conn: Connection, limit: int, before: int | None = None) -> list[AuditEntry]:
    """The newest ``limit`` entries (older than the entry ``before`` when given), newest first."""
    rows = run(conn, _ENTRIES, {"before": 2**62 if before is None else before, "limit": limit}).fetchall()
    return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
