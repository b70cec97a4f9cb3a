"""The audit log: one entry per policy change and per erasure (who: the API key's id; when; what; counts),
written in the transaction of the change it records, so an entry exists exactly when its change happened."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping

from aither_server.store.engine import Connection

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


def record(conn: Connection, key_id: str, action: str, target: str, detail: Mapping[str, object]) -> None:
    conn.execute(
        "INSERT INTO audit_log (time_ns, key_id, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (time.time_ns(), key_id, action, target, json.dumps(detail, separators=(",", ":"), sort_keys=True)),
    )


def entries(conn: Connection, limit: int, before: int | None = None) -> list[AuditEntry]:
    """The newest ``limit`` entries (older than the entry ``before`` when given), newest first."""
    rows = conn.execute(
        "SELECT id, time_ns, key_id, action, target, detail FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
        (2**62 if before is None else before, limit),
    ).fetchall()
    return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
