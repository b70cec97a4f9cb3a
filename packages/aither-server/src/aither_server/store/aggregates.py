"""``/v1/metrics`` aggregate points into ``aggregate_points``, their rollups and the models' running totals."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Update, bindparam, update

from aither_server.model.records import AggregatePoint
from aither_server.model.rollup_keys import HOUR_NS, MINUTE_NS
from aither_server.store.core_tables import aggregate_points, instances, models
from aither_server.store.engine import Connection, greatest, insert_if_new, least, run, run_many
from aither_server.store.ingest_ids import IdRegistry, NewIds
from aither_server.store.rollups import AGGREGATE_LATENCY, AGGREGATE_MINUTES

__all__ = ["store_aggregates"]

_POINT_KEY = ("instance_id", "metric", "model_id", "reason", "start_ns", "end_ns")


def _model_seen(total: str | None) -> Update:
    """The model's first and last seen times widened to a point's end, and ``total`` (a running total) added to."""
    m = models.c
    values: dict[str, object] = {
        "first_seen_ns": least(m.first_seen_ns, bindparam("end_ns")),
        "last_seen_ns": greatest(m.last_seen_ns, bindparam("end_ns")),
    }
    if total is not None:
        values[total] = m[total] + bindparam("value")
    return update(models).where(m.id == bindparam("model_id")).values(values)


_INSERT_POINT = insert_if_new(
    aggregate_points,
    {name: bindparam(name) for name in (*_POINT_KEY, "value", "buckets", "received_ns")},
    [aggregate_points.c[name] for name in _POINT_KEY],
)
#: The models table's running totals of each aggregate metric (the models list reads them), and the update of
#: a model's times and its metric's total for a point (``None``: a metric without one).
_MODEL_TOTALS = {"calls": "aggregate_calls", "rows": "aggregate_rows", "errors": "aggregate_errors"}
_MODEL_SEEN = {metric: _model_seen(total) for metric, total in _MODEL_TOTALS.items()}
_MODEL_SEEN_ONLY = _model_seen(None)
_AGGREGATES_SINCE = (
    update(instances)
    .where(instances.c.id == bindparam("instance_id"), instances.c.aggregates_since_ns.is_(None))
    .values(aggregates_since_ns=bindparam("now"))
)


def store_aggregates(conn: Connection, ids: IdRegistry, points: Sequence[AggregatePoint], now: int, new: NewIds) -> int:
    """Store one request's aggregate points; a point already stored (a retry) is skipped. Returns how many
    were new. The instance that sent them is marked as sending aggregates: from then on its calls, rows,
    errors and latencies are read from these points, not from its spans."""
    stored = 0
    senders: set[int] = set()
    for point in points:
        model_id = ids.model_id(conn, (point.model, point.version, point.environment), point.end_ns, new)
        instance_id = ids.instance_id(conn, point.instance, now, new)
        senders.add(instance_id)
        buckets = None if point.buckets is None else json.dumps(point.buckets, separators=(",", ":"))
        inserted = run(
            conn,
            _INSERT_POINT,
            {"instance_id": instance_id, "metric": point.metric, "model_id": model_id, "reason": point.reason,
             "start_ns": point.start_ns, "end_ns": point.end_ns, "value": point.value, "buckets": buckets,
             "received_ns": now},
        ).rowcount  # fmt: skip
        if not inserted:
            continue
        stored += 1
        if point.buckets is not None:
            hour = point.end_ns // HOUR_NS
            run_many(
                conn,
                AGGREGATE_LATENCY,
                [
                    {"model_id": model_id, "hour": hour, "bucket": b, "calls": n}
                    for b, n in enumerate(point.buckets)
                    if n
                ],
            )
        else:
            minute = point.end_ns // MINUTE_NS
            run(
                conn,
                AGGREGATE_MINUTES,
                {
                    "model_id": model_id,
                    "minute": minute,
                    "metric": point.metric,
                    "reason": point.reason,
                    "value": point.value,
                },
            )
        seen = _MODEL_SEEN.get(point.metric, _MODEL_SEEN_ONLY)
        run(
            conn,
            seen,
            {"end_ns": point.end_ns, "value": point.value, "model_id": model_id},
        )
    run_many(conn, _AGGREGATES_SINCE, [{"now": now, "instance_id": i} for i in sorted(senders)])
    return stored
