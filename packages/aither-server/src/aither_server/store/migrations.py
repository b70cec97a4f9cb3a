"""The database schema, migrated by Alembic (the revisions in ``store/alembic/versions``).

The schema is migrated, never rebuilt: a database keeps its data across server upgrades. All the revisions a
database lacks run in one transaction, taken with the engine's write lock first (SQLite's file lock, or
PostgreSQL's advisory lock, ``_engine.WRITE_LOCK``), so two servers starting on one database migrate once.
The revisions are written in SQLite's DDL; ``store/ddl.py`` runs them on PostgreSQL too.
Add a revision at the end; never edit one that has shipped.

Databases from before Alembic carry a ``schema_version`` table (versions 1 to 5 of the hand-written runner,
revisions ``0001`` to ``0005`` here): they are stamped with their revision and upgraded in place, and their
``schema_version`` gets a row above 5, so an older server refuses the file instead of misreading it.

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

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicError
from sqlalchemy import Connection, Engine, column, create_engine, event, func, insert, inspect, select, table
from sqlalchemy.pool import NullPool

from aither_server.store.engine import WRITE_LOCK, open_database

__all__ = ["HEAD", "LEGACY_VERSION", "SchemaTooNew", "migrate", "revision_of"]

_SCRIPTS = Path(__file__).parent / "alembic"
#: The last version of the hand-written runner (its ``schema_version`` table); revision ``0005`` here.
LEGACY_VERSION = 5
#: What ``schema_version`` says once Alembic has taken a database over: above any version an older server knows.
_TAKEN_OVER = LEGACY_VERSION + 1
#: The hand-written runner's table (no ``Table`` of the current schema: it is only read, and stamped, here).
_schema_version = table("schema_version", column("version"), column("description"), column("applied_ns"))


class SchemaTooNew(RuntimeError):
    """The database was written by a newer aither-server than this one."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


#: The newest revision this server knows.
HEAD: str = _scripts().get_current_head() or ""


def _engine(target: str | Path) -> Engine:
    database = open_database(target)
    if database.dialect == "postgresql":
        return create_engine(database.sqlalchemy_url(), poolclass=NullPool)
    engine = create_engine(database.sqlalchemy_url())

    # pysqlite's own transaction handling is switched off, and each transaction takes the write lock at once
    # (BEGIN IMMEDIATE): a second server starting on the file waits, then finds the schema migrated.
    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: object, _: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _legacy_version(connection: Connection) -> int | None:
    """The hand-written runner's version of a database Alembic has not taken over yet, else ``None``."""
    tables = set(inspect(connection).get_table_names())
    if "schema_version" not in tables or "alembic_version" in tables:
        return None
    found = connection.execute(select(func.coalesce(func.max(_schema_version.c.version), 0))).scalar()
    return int(found or 0)


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except AlembicError:  # Alembic raises for a revision it has no script for
        return False


def revision_of(target: str | Path) -> str | None:
    """The Alembic revision of a database (``None``: none yet)."""
    engine = _engine(target)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def migrate(database: str | Path, target: str = "head") -> None:
    """Bring ``database`` (a path or a PostgreSQL URL) to ``target`` (the newest revision by default), in one
    transaction.

    Raises :class:`SchemaTooNew` for a database written by a newer server.
    """
    engine = _engine(database)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
            config = _config(connection)
            legacy = _legacy_version(connection)
            if legacy is not None and legacy > LEGACY_VERSION:
                raise SchemaTooNew(
                    f"the database has schema version {legacy}; this aither-server knows up to "
                    f"{LEGACY_VERSION}: upgrade aither-server"
                )
            if legacy:
                command.stamp(config, f"{legacy:04d}")
                connection.execute(
                    insert(_schema_version).values(
                        version=_TAKEN_OVER,
                        description="migrated by Alembic from here on (alembic_version)",
                        applied_ns=time.time_ns(),
                    )
                )
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and not _known(current):
                raise SchemaTooNew(
                    f"the database has schema revision {current}; this aither-server knows up to {HEAD}:"
                    " upgrade aither-server"
                )
            command.upgrade(config, target)
    finally:
        engine.dispose()
