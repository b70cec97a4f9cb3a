"""Initial schema: keys, models, predictions, rows, labels, rollups, usage.

Revision ``0001`` is schema version 1 of the hand-written runner this replaced: a database it migrated is
stamped with the matching revision and upgraded from there (``store/migrations.py``).
"""

from __future__ import annotations

from aither_server.store import ddl

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

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


def upgrade() -> None:
    ddl.run(_V1)
