"""The database schema, as an ordered list of migrations.

The schema is migrated, never rebuilt: a database keeps its data across server upgrades. Each step runs once,
in its own transaction, and is recorded in ``schema_version``. Add a step at the end; never edit one that has
shipped.

Layout, and why (the /metrics query over a million predictions must stay under a second):

- ``predictions``: one row per prediction span. ``predictions_model_time`` covers the volume / error-rate scan
  and ``predictions_model_latency`` gives percentiles by walking an index instead of sorting.
- ``prediction_rows``: one row per row of a batch prediction, with the label copied in when it arrives, so the
  quality metrics are one aggregate over a covering partial index of the labelled rows, with no join.
- ``labels``: the latest label per (trace id, row), kept whether or not the prediction has arrived yet;
  ``label_spans`` makes label ingestion idempotent.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

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
CREATE UNIQUE INDEX predictions_trace ON predictions (trace_id, span_id);
CREATE INDEX predictions_model_time ON predictions (model_id, start_ns, n_rows, status);
CREATE INDEX predictions_model_latency ON predictions (model_id, latency_ns, start_ns);

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

Migration = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Migration:
    def run(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


#: (version, description, step), in order. The version of a database is the highest one applied.
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema: keys, models, predictions, rows, labels, usage", _script(_V1)),
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
