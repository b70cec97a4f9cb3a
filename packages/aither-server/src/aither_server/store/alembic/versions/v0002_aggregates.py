"""Per-model aggregates (/v1/metrics), instances, sample rates and weighted quality sums.

Revision ``0002`` is schema version 2 of the hand-written runner this replaced: a database it migrated is
stamped with the matching revision and upgraded from there (``store/migrations.py``).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import column, insert, literal_column, select, table

from aither_server.model.rollup_keys import HOUR_NS, aggregate_bucket
from aither_server.store import ddl

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

# The tables as this revision reads and writes them (untyped: no casts, the values go to the driver as they are).
_predictions = table("predictions", column("model_id"), column("start_ns"), column("latency_ns"))
_instance_latency_hours = table(
    "instance_latency_hours",
    column("model_id"),
    column("hour"),
    column("instance_id"),
    column("bucket"),
    column("calls"),
)

_V2 = """
CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    instance TEXT NOT NULL UNIQUE,
    first_seen_ns INTEGER NOT NULL,
    aggregates_since_ns INTEGER
);

ALTER TABLE predictions ADD COLUMN instance_id INTEGER;
ALTER TABLE predictions ADD COLUMN sample_rate REAL;
ALTER TABLE prediction_rows ADD COLUMN weight REAL;

ALTER TABLE models ADD COLUMN sampled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN aggregate_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN aggregate_rows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN aggregate_errors INTEGER NOT NULL DEFAULT 0;

ALTER TABLE quality_hours ADD COLUMN w_rows REAL NOT NULL DEFAULT 0;
ALTER TABLE quality_hours ADD COLUMN w_num REAL NOT NULL DEFAULT 0;
ALTER TABLE quality_hours ADD COLUMN w_abs REAL NOT NULL DEFAULT 0;
ALTER TABLE quality_hours ADD COLUMN w_sq REAL NOT NULL DEFAULT 0;
UPDATE quality_hours SET w_rows = rows, w_num = n_num, w_abs = sum_abs, w_sq = sum_sq;

CREATE TABLE instance_models (
    model_id INTEGER NOT NULL,
    instance_id INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (model_id, instance_id)
) WITHOUT ROWID;

CREATE TABLE instance_minutes (
    model_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    instance_id INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (model_id, minute, instance_id)
) WITHOUT ROWID;

CREATE TABLE instance_latency_hours (
    model_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    instance_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (model_id, hour, instance_id, bucket)
) WITHOUT ROWID;

CREATE TABLE aggregate_points (
    instance_id INTEGER NOT NULL,
    metric TEXT NOT NULL,
    model_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    value INTEGER NOT NULL,
    buckets TEXT,
    received_ns INTEGER NOT NULL,
    PRIMARY KEY (instance_id, metric, model_id, reason, start_ns, end_ns)
) WITHOUT ROWID;
CREATE INDEX aggregate_points_model_time ON aggregate_points (model_id, end_ns);

CREATE TABLE aggregate_minutes (
    model_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    metric TEXT NOT NULL,
    reason TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (model_id, minute, metric, reason)
) WITHOUT ROWID;

CREATE TABLE aggregate_latency_hours (
    model_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (model_id, hour, bucket)
) WITHOUT ROWID
"""


def upgrade() -> None:
    ddl.run(_V2)
    bind = op.get_bind()
    # Spans stored before this version have no instance: their latencies go to instance 0, in the SDK's buckets.
    counts: dict[tuple[int, int, int], int] = {}
    p = _predictions.c
    # The integer division both engines do for integers: a plain ``/`` (SQLAlchemy's ``/`` would cast to a
    # decimal on PostgreSQL), the constant written as it is.
    hours = p.start_ns.op("/")(literal_column(str(HOUR_NS)))
    for model_id, hour, latency_ns in bind.execute(select(p.model_id, hours, p.latency_ns)):
        key = (model_id, hour, aggregate_bucket(latency_ns))
        counts[key] = counts.get(key, 0) + 1
    if counts:
        bind.execute(
            insert(_instance_latency_hours).values(instance_id=literal_column("0")),
            [{"model_id": m, "hour": h, "bucket": b, "calls": calls} for (m, h, b), calls in counts.items()],
        )
