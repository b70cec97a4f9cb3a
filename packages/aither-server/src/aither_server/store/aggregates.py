"""``/v1/metrics`` aggregate points into ``aggregate_points``, their rollups and the models' running totals."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aither_server.model.records import AggregatePoint
from aither_server.model.rollup_keys import HOUR_NS, MINUTE_NS
from aither_server.store.engine import Connection, Database
from aither_server.store.ingest_ids import IdRegistry, NewIds
from aither_server.store.rollups import AGGREGATE_LATENCY, AGGREGATE_MINUTES

__all__ = ["store_aggregates"]

_INSERT_POINT = (
    "INSERT INTO aggregate_points (instance_id, metric, model_id, reason, start_ns, end_ns, value, buckets,"
    " received_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (instance_id, metric, model_id, reason, start_ns, end_ns) DO NOTHING"
)
#: The models table's running totals of each aggregate metric (the models list reads them).
_MODEL_TOTALS = {"calls": "aggregate_calls", "rows": "aggregate_rows", "errors": "aggregate_errors"}


def store_aggregates(
    conn: Connection, db: Database, ids: IdRegistry, points: Sequence[AggregatePoint], now: int, new: NewIds
) -> int:
    """Store one request's aggregate points; a point already stored (a retry) is skipped. Returns how many
    were new. The instance that sent them is marked as sending aggregates: from then on its calls, rows,
    errors and latencies are read from these points, not from its spans."""
    stored = 0
    senders: set[int] = set()
    least, greatest = db.least(), db.greatest()
    for point in points:
        model_id = ids.model_id(conn, (point.model, point.version, point.environment), point.end_ns, new)
        instance_id = ids.instance_id(conn, point.instance, now, new)
        senders.add(instance_id)
        buckets = None if point.buckets is None else json.dumps(point.buckets, separators=(",", ":"))
        inserted = conn.execute(
            _INSERT_POINT,
            (instance_id, point.metric, model_id, point.reason, point.start_ns, point.end_ns, point.value,
             buckets, now),
        ).rowcount  # fmt: skip
        if not inserted:
            continue
        stored += 1
        if point.buckets is not None:
            hour = point.end_ns // HOUR_NS
            conn.executemany(AGGREGATE_LATENCY, [(model_id, hour, b, n) for b, n in enumerate(point.buckets) if n])
        else:
            minute = point.end_ns // MINUTE_NS
            conn.execute(AGGREGATE_MINUTES, (model_id, minute, point.metric, point.reason, point.value))
        total = _MODEL_TOTALS.get(point.metric)
        conn.execute(
            f"UPDATE models SET first_seen_ns = {least}(first_seen_ns, ?),"
            f" last_seen_ns = {greatest}(last_seen_ns, ?){f', {total} = {total} + ?' if total else ''}"
            " WHERE id = ?",
            (point.end_ns, point.end_ns, *((point.value,) if total else ()), model_id),
        )
    conn.executemany(
        "UPDATE instances SET aggregates_since_ns = ? WHERE id = ? AND aggregates_since_ns IS NULL",
        [(now, i) for i in sorted(senders)],
    )
    return stored
