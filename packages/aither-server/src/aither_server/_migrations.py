"""The database schema, as an ordered list of migrations.

The schema is migrated, never rebuilt: a database keeps its data across server upgrades. Each step runs once,
in its own transaction, and is recorded in ``schema_version``. Add a step at the end; never edit one that has
shipped.

Layout, and why (ingestion must keep up with >= 20,000 spans/s, and /metrics over a million predictions
must stay under a second whatever its filters):

- ``predictions``: one row per prediction span. Trace ids are looked up through ``trace_key`` (their first
  8 bytes as a signed 64-bit integer; the full id is compared after), a much smaller index than one on the
  16-byte id plus the span id, so each commit rewrites fewer random index pages. ``predictions_model_time``
  covers the raw scans at the edges of a time range, recent predictions and the exact latency percentiles
  (read inside the histogram buckets that hold them). There is deliberately no index on latency: its random
  inserts would cost ingestion more than the percentile scan costs a query.
- ``prediction_rows``: one row per row of a batch prediction, with the label copied in when it arrives.
  ``prediction_rows_labelled`` covers the labelled rows (raw scans at the edges of a time range) and
  ``prediction_rows_scores`` / ``prediction_rows_probas`` the ``predict_proba`` rows the AUC reads.
- Rollups, maintained in the ingestion transaction, so /metrics reads a few thousand rows instead of a million:
  ``volume_minutes`` (calls, errors, rows per model row and minute), ``latency_hours`` (calls per model row,
  hour and log-scale latency bucket) and ``quality_hours`` (labelled rows, confusion cells and regression
  error sums per model row, hour, kind and (predicted, label) class pair; updated when a label joins or is
  replaced). NULL kinds and keys are stored as -1 and '' (never a canonical JSON key).
- ``labels``: the latest label per (trace id, row), kept whether or not the prediction has arrived yet;
  ``label_spans`` makes label ingestion idempotent.
- Version 2, exact counts whatever spans are dropped: ``instances`` (``service.instance.id`` values, and since
  when each sends aggregates), ``aggregate_points`` (the ``/v1/metrics`` data points, keyed as the wire contract
  says, so a retry stores nothing twice) rolled up into ``aggregate_minutes`` (calls, rows, errors, dropped
  spans by reason) and ``aggregate_latency_hours`` (the SDK's 19% latency buckets). Span counts per instance
  (``instance_models`` totals, ``instance_minutes``) let a query take out the spans of instances whose counts
  come from aggregates; ``instance_latency_hours`` holds every span's latency in the SDK's buckets (instance 0:
  none given), so span latencies of the other instances merge with the aggregate histograms. Predictions keep
  their instance and ``ml.sample_rate``; rows carry their weight (``1 / sample_rate``), and ``quality_hours``
  weighted sums beside the plain ones.
- Version 3: ``usage`` also counts the spans refused (``rejected_spans``) and those with no ``ml.*``
  attribute (``ignored_spans``).
- Version 4: ``predictions.link_trace_id`` / ``link_span_id``, the caller's OpenTelemetry span (the first link).
- Version 5: ``labels.received_ns``, and ``pred_rows`` / ``model_id`` of the prediction a label joined (NULL
  until it is stored); ``labels_unjoined`` indexes the labels that cannot join (no prediction yet, or a row
  past the prediction's rows), so listing them reads only those.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from ._rollup import HOUR_NS, aggregate_bucket

__all__ = ["LATEST_VERSION", "MIGRATIONS", "SchemaTooNew", "migrate"]

_V1 = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER,
    revoked_ns INTEGER
);

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    environment TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    predictions INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, version, environment)
);

CREATE TABLE predictions (
    id INTEGER PRIMARY KEY,
    trace_key INTEGER NOT NULL,
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    model_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    method TEXT,
    framework TEXT,
    start_ns INTEGER NOT NULL,
    latency_ns INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error TEXT,
    n_rows INTEGER NOT NULL,
    batch_size INTEGER,
    features TEXT,
    prediction TEXT,
    service_name TEXT,
    received_ns INTEGER NOT NULL
);
CREATE INDEX predictions_trace ON predictions (trace_key);
CREATE INDEX predictions_model_time ON predictions (model_id, start_ns, status, n_rows, latency_ns);

CREATE TABLE prediction_rows (
    pred_id INTEGER NOT NULL,
    row INTEGER NOT NULL,
    model_id INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    kind INTEGER,
    pred_key TEXT,
    pred_num REAL,
    score REAL,
    proba TEXT,
    label_key TEXT,
    label_num REAL,
    label_kind INTEGER,
    PRIMARY KEY (pred_id, row)
) WITHOUT ROWID;
CREATE INDEX prediction_rows_labelled
    ON prediction_rows (model_id, start_ns, kind, label_kind, pred_key, label_key, pred_num, label_num, score)
    WHERE label_kind IS NOT NULL;
CREATE INDEX prediction_rows_scores ON prediction_rows (model_id, start_ns, score, label_key)
    WHERE kind = 2 AND label_kind = 0 AND score IS NOT NULL;
CREATE INDEX prediction_rows_probas ON prediction_rows (model_id, start_ns)
    WHERE kind = 2 AND label_kind = 0 AND proba IS NOT NULL;

CREATE TABLE volume_minutes (
    model_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (model_id, minute)
) WITHOUT ROWID;

CREATE TABLE latency_hours (
    model_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (model_id, hour, bucket)
) WITHOUT ROWID;

CREATE TABLE quality_hours (
    model_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    label_kind INTEGER NOT NULL,
    pred_key TEXT NOT NULL,
    label_key TEXT NOT NULL,
    scored INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    n_num INTEGER NOT NULL,
    sum_abs REAL NOT NULL,
    sum_sq REAL NOT NULL,
    PRIMARY KEY (model_id, hour, kind, label_kind, pred_key, label_key, scored)
) WITHOUT ROWID;

CREATE TABLE label_spans (
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    row INTEGER,
    label TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;

CREATE TABLE labels (
    trace_id BLOB NOT NULL,
    row INTEGER NOT NULL,
    label TEXT NOT NULL,
    label_key TEXT,
    label_num REAL,
    label_kind INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    PRIMARY KEY (trace_id, row)
) WITHOUT ROWID;

CREATE TABLE usage (
    period TEXT PRIMARY KEY,
    api_calls INTEGER NOT NULL DEFAULT 0,
    predictions INTEGER NOT NULL DEFAULT 0,
    labels INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""

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

Migration = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Migration:
    def run(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


def _v2(conn: sqlite3.Connection) -> None:
    _script(_V2)(conn)
    # Spans stored before this version have no instance: their latencies go to instance 0, in the SDK's buckets.
    counts: dict[tuple[int, int, int], int] = {}
    for model_id, hour, latency_ns in conn.execute(
        f"SELECT model_id, start_ns / {HOUR_NS}, latency_ns FROM predictions"
    ):
        key = (model_id, hour, aggregate_bucket(latency_ns))
        counts[key] = counts.get(key, 0) + 1
    conn.executemany(
        "INSERT INTO instance_latency_hours (model_id, hour, instance_id, bucket, calls) VALUES (?, ?, 0, ?, ?)",
        [(*key, calls) for key, calls in counts.items()],
    )


_V3 = """
ALTER TABLE usage ADD COLUMN rejected_spans INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN ignored_spans INTEGER NOT NULL DEFAULT 0
"""


_V4 = """
ALTER TABLE predictions ADD COLUMN link_trace_id BLOB;
ALTER TABLE predictions ADD COLUMN link_span_id BLOB
"""


_V5 = """
ALTER TABLE labels ADD COLUMN received_ns INTEGER;
ALTER TABLE labels ADD COLUMN pred_rows INTEGER;
ALTER TABLE labels ADD COLUMN model_id INTEGER;
CREATE INDEX labels_unjoined ON labels (received_ns) WHERE pred_rows IS NULL OR row >= pred_rows
"""


def _v5(conn: sqlite3.Connection) -> None:
    _script(_V5)(conn)
    # Labels stored before: received when their span says; joined to the prediction of their trace, if any.
    conn.create_function(
        "aither_trace_key", 1, lambda trace_id: int.from_bytes(trace_id[:8], "big", signed=True), deterministic=True
    )
    conn.execute(
        "UPDATE labels SET received_ns = time_ns, (pred_rows, model_id) = (SELECT p.n_rows, p.model_id"
        " FROM predictions p WHERE p.trace_key = aither_trace_key(labels.trace_id) AND p.trace_id = labels.trace_id"
        " ORDER BY p.start_ns, p.id LIMIT 1)"
    )


#: (version, description, step), in order. The version of a database is the highest one applied.
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema: keys, models, predictions, rows, labels, rollups, usage", _script(_V1)),
    (2, "per-model aggregates (/v1/metrics), instances, sample rates and weighted quality sums", _v2),
    (3, "usage counts spans rejected and spans ignored", _script(_V3)),
    (4, "predictions keep the caller's span (their first link)", _script(_V4)),
    (5, "labels know their prediction's rows, to list those that cannot join", _v5),
]
LATEST_VERSION = MIGRATIONS[-1][0]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer aither-server than this one."""


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every migration the database lacks, each in its own transaction; return the versions applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``): transactions are explicit here.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ns INTEGER NOT NULL)"
    )
    applied: list[int] = []
    for version, description, step in MIGRATIONS:
        # BEGIN IMMEDIATE takes the write lock first, so two servers starting on one file migrate once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            if current > LATEST_VERSION:
                raise SchemaTooNew(
                    f"the database has schema version {current}; this aither-server knows up to "
                    f"{LATEST_VERSION}: upgrade aither-server"
                )
            if version <= current:
                conn.execute("COMMIT")
                continue
            step(conn)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_ns) VALUES (?, ?, ?)",
                (version, description, time.time_ns()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied
