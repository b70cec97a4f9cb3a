"""Retention: predictions and labels older than a configured age are deleted, rollups (drift's sketches
among them) after a longer one.

Deletion runs in batches of at most ``batch`` rows, each its own short write transaction, so ingestion (which
takes the same write lock) waits for one batch at most, never for the whole pass. Raw rows go first; the
rollups keep answering /metrics for their whole hours and minutes after them (a range's partial hours at
either end are read from raw rows, so those of expired time count nothing).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ColumnElement, Table, bindparam, column, delete, select, table, tuple_
from sqlalchemy.sql import Executable, TableClause

from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, MINUTE_NS
from aither_server.store import core_tables
from aither_server.store.core_tables import aggregate_points, label_spans, labels, models, prediction_rows, predictions
from aither_server.store.engine import PerDialect, among, indexed_by, run
from aither_server.store.estimate_tables import estimate_hours, realized_hours
from aither_server.store.lookups import change_each_chunk
from aither_server.store.periodic import Periodic
from aither_server.store.rollups import KEYS

if TYPE_CHECKING:  # only its methods are used; the CLI reads this module's defaults before it opens a store
    from aither_server.store.database import Store

__all__ = [
    "DEFAULT_RAW_DAYS",
    "DEFAULT_ROLLUP_DAYS",
    "Retention",
    "RetentionThread",
    "expire",
]

#: Predictions, their rows, labels and aggregate points are kept this long by default.
DEFAULT_RAW_DAYS = 90.0
#: Rollups (per minute and per hour) are kept this long by default: trends outlive the rows.
DEFAULT_ROLLUP_DAYS = 730.0
_DAY_NS = 86_400 * 1_000_000_000

_UNIT_NS = {"minute": MINUTE_NS, "hour": HOUR_NS, "day": DAY_NS}


def _batch_delete(
    table: TableClause, key: Sequence[str], *where: ColumnElement[bool], index: str | None = None
) -> Executable:
    """``DELETE FROM table WHERE (key) IN (SELECT key FROM table WHERE ... LIMIT :batch)``: at most ``batch``
    rows, taken by the primary key ``key`` (read through ``index`` on SQLite when given)."""
    columns = [table.c[name] for name in key]
    batch = select(*columns).where(*where).limit(bindparam("batch"))
    if index is not None:
        batch = indexed_by(batch, table, index)
    return delete(table).where(tuple_(*columns).in_(batch))


def _rollup_delete(table: Table, key: Sequence[str], time_column: str) -> Executable:
    """At most ``batch`` rows of one model's cells before ``cutoff`` (in ``time_column``'s unit)."""
    return _batch_delete(
        table, key, table.c.model_id == bindparam("model_id"), table.c[time_column] < bindparam("cutoff")
    )


# (delete statement, unit of its time column in ns) of every rollup kept by time (all but instance_models).
# Every key starts with (model_id, time), so a batch is a range of the primary key.
_ROLLUPS = (
    *(
        (_rollup_delete(core_tables.metadata.tables[table], key, key[1]), _UNIT_NS[key[1]])
        for table, key in KEYS.items()
        if key[1] in _UNIT_NS
    ),
    # Not rollups but computed from the predictions and labels like them: estimated performance's per-hour caches
    # (their ``hour`` is the hour's start in ns).
    *(
        (_rollup_delete(table, ("model_id", "estimator_ns", "hour"), "hour"), 1)
        for table in (estimate_hours, realized_hours)
    ),
)

_p = predictions.c
_MODEL_IDS = select(models.c.id)
_MODEL_NAMES = select(models.c.name, models.c.version, models.c.environment)
_EXPIRED_PREDICTIONS = (
    select(_p.id)
    .where(_p.model_id == bindparam("model_id"), _p.start_ns < bindparam("cutoff"))
    .limit(bindparam("batch"))
)
_DELETE_ROWS = PerDialect(
    lambda dialect: delete(prediction_rows).where(among(prediction_rows.c.pred_id, "ids", dialect, BigInteger()))
)
_DELETE_PREDICTIONS = PerDialect(lambda dialect: delete(predictions).where(among(_p.id, "ids", dialect, BigInteger())))
# Labels by their time index (SQLite's planner, without statistics, would not pick it by itself).
_EXPIRED_LABELS = _batch_delete(
    labels, ("trace_id", "row"), labels.c.time_ns < bindparam("cutoff"), index="labels_time"
)
_EXPIRED_LABEL_SPANS = _batch_delete(
    label_spans, ("trace_id", "span_id"), label_spans.c.time_ns < bindparam("cutoff"), index="label_spans_time"
)
_EXPIRED_POINTS = _batch_delete(
    aggregate_points,
    ("instance_id", "metric", "model_id", "reason", "start_ns", "end_ns"),
    aggregate_points.c.model_id == bindparam("model_id"),
    aggregate_points.c.end_ns < bindparam("cutoff"),
)


def _drift(name: str, key: Sequence[str], span: bool) -> Executable:
    """A drift table's batch of one model's hours before ``cutoff`` (and of one ``span``). Drift's tables are
    declared in the drift layer, above this one: named here by the columns these statements use."""
    t = table(name, *(column(c) for c in key))
    where = [
        t.c.model == bindparam("model"),
        t.c.version == bindparam("version"),
        t.c.environment == bindparam("environment"),
    ]
    if span:
        where.append(t.c.span == bindparam("span"))
    return _batch_delete(t, key, *where, t.c.hour < bindparam("cutoff"))


# Their keys start with the model's (name, version, environment), then the span and hour.
_DRIFT_SKETCHES = _drift(
    "drift_sketches", ("model", "version", "environment", "span", "hour", "role", "feature", "kind"), True
)
_DRIFT_COLUMNS = _drift("drift_columns", ("model", "version", "environment", "hour", "feature", "dtype"), False)
#: The hours' reservoirs of projected embeddings (drift/embedding_store.py).
_DRIFT_EMBEDDINGS = _drift("drift_embeddings", ("model", "version", "environment", "hour", "dim"), False)


@dataclasses.dataclass(frozen=True)
class Retention:
    """Ages in days; ``None`` keeps that data for ever."""

    raw_days: float | None = DEFAULT_RAW_DAYS
    rollup_days: float | None = DEFAULT_ROLLUP_DAYS


@dataclasses.dataclass
class Expired:
    """What one pass deleted."""

    predictions: int = 0
    labels: int = 0
    rollup_rows: int = 0
    transactions: int = 0


def _model_ids(store: Store) -> list[int]:
    return [row[0] for row in run(store.reader(), _MODEL_IDS)]


def _batches(
    store: Store, statement: Executable | PerDialect, params: Mapping[str, object], batch: int, done: Expired
) -> int:
    """Run ``statement`` (a DELETE of at most ``batch`` rows) until it deletes fewer; the rows deleted."""
    total = 0
    while True:
        with store.write() as conn:
            deleted = run(conn, statement, {**params, "batch": batch}).rowcount
        done.transactions += 1
        total += deleted
        if deleted < batch:
            return total
        time.sleep(0)  # let a waiting ingestion take the write lock between batches


def _expire_predictions(store: Store, cutoff_ns: int, batch: int, done: Expired) -> None:
    for model_id in _model_ids(store):
        while True:
            with store.write() as conn:
                found = run(conn, _EXPIRED_PREDICTIONS, {"model_id": model_id, "cutoff": cutoff_ns, "batch": batch})
                ids = [row[0] for row in found]
                change_each_chunk(conn, _DELETE_ROWS, "ids", ids)
                change_each_chunk(conn, _DELETE_PREDICTIONS, "ids", ids)
            done.transactions += 1
            done.predictions += len(ids)
            if len(ids) < batch:
                break
            time.sleep(0)


def _expire_drift(store: Store, cutoff_hour: int, batch: int, done: Expired) -> None:
    """Drift's sketches (per hour, and per day) and the columns each hour saw are rollups too: they go with
    the other rollups."""
    for name, version, environment in run(store.reader(), _MODEL_NAMES).fetchall():
        model = {"model": name, "version": version, "environment": environment}
        for span in (1, 24):  # a day's row goes once its last hour is past the cutoff
            params = {**model, "span": span, "cutoff": cutoff_hour - span + 1}
            done.rollup_rows += _batches(store, _DRIFT_SKETCHES, params, batch, done)
        done.rollup_rows += _batches(store, _DRIFT_COLUMNS, {**model, "cutoff": cutoff_hour}, batch, done)
        done.rollup_rows += _batches(store, _DRIFT_EMBEDDINGS, {**model, "cutoff": cutoff_hour}, batch, done)


def expire(store: Store, retention: Retention, *, now_ns: int | None = None, batch: int = 5000) -> Expired:
    """Delete what ``retention`` says is too old, in batches of at most ``batch`` rows."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    done = Expired()
    if retention.raw_days is not None:
        cutoff = now_ns - int(retention.raw_days * _DAY_NS)
        _expire_predictions(store, cutoff, batch, done)
        done.labels += _batches(store, _EXPIRED_LABELS, {"cutoff": cutoff}, batch, done)
        _batches(store, _EXPIRED_LABEL_SPANS, {"cutoff": cutoff}, batch, done)
        for model_id in _model_ids(store):
            _batches(store, _EXPIRED_POINTS, {"model_id": model_id, "cutoff": cutoff}, batch, done)
    if retention.rollup_days is not None:
        cutoff = now_ns - int(retention.rollup_days * _DAY_NS)
        for model_id in _model_ids(store):
            for statement, unit in _ROLLUPS:
                params = {"model_id": model_id, "cutoff": cutoff // unit}
                done.rollup_rows += _batches(store, statement, params, batch, done)
        _expire_drift(store, cutoff // HOUR_NS, batch, done)
    return done


class RetentionThread(Periodic):
    """Runs :func:`expire` every ``interval_s`` (the first pass after ``first_s``) until stopped."""

    def __init__(
        self, store: Store, retention: Retention, *, interval_s: float = 3600.0, first_s: float = 60.0
    ) -> None:
        super().__init__(
            "aither-retention",
            lambda _now, _until: expire(store, retention),
            interval_s,
            failed="retention pass failed",
            first_s=first_s,
            level=logging.WARNING,
        )
