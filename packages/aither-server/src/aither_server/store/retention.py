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
from typing import TYPE_CHECKING

from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, MINUTE_NS
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
# (table, primary key, time column, unit of that column in ns) of every rollup kept by time (all but
# instance_models). Every key starts with (model_id, time), so a batch is a range of the primary key.
_ROLLUPS = (
    *((table, key, unit, _UNIT_NS[unit]) for table, key in KEYS.items() if (unit := key.split(", ")[1]) in _UNIT_NS),
    # Not rollups but computed from the predictions and labels like them: estimated performance's per-hour caches
    # (their ``hour`` is the hour's start in ns).
    ("estimate_hours", "model_id, estimator_ns, hour", "hour", 1),
    ("realized_hours", "model_id, estimator_ns, hour", "hour", 1),
)


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
    return [row[0] for row in store.reader().execute("SELECT id FROM models")]


def _batches(store: Store, statement: str, params: tuple[object, ...], batch: int, done: Expired) -> int:
    """Run ``statement`` (a DELETE of at most ``batch`` rows) until it deletes fewer; the rows deleted."""
    total = 0
    while True:
        with store.write() as conn:
            deleted = conn.execute(statement, (*params, batch)).rowcount
        done.transactions += 1
        total += deleted
        if deleted < batch:
            return total
        time.sleep(0)  # let a waiting ingestion take the write lock between batches


def _expire_predictions(store: Store, cutoff_ns: int, batch: int, done: Expired) -> None:
    for model_id in _model_ids(store):
        while True:
            with store.write() as conn:
                ids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM predictions WHERE model_id = ? AND start_ns < ? LIMIT ?",
                        (model_id, cutoff_ns, batch),
                    )
                ]
                marks = ",".join("?" * len(ids))
                if ids:
                    conn.execute(f"DELETE FROM prediction_rows WHERE pred_id IN ({marks})", ids)
                    conn.execute(f"DELETE FROM predictions WHERE id IN ({marks})", ids)
            done.transactions += 1
            done.predictions += len(ids)
            if len(ids) < batch:
                break
            time.sleep(0)


def _expire_drift(store: Store, cutoff_hour: int, batch: int, done: Expired) -> None:
    """Drift's sketches (per hour, and per day) and the columns each hour saw are rollups too: they go with
    the other rollups. Their keys start with the model's (name, version, environment), then the span and hour."""
    models = store.reader().execute("SELECT name, version, environment FROM models").fetchall()
    sketch_key = "model, version, environment, span, hour, role, feature, kind"
    column_key = "model, version, environment, hour, feature, dtype"
    embedding_key = "model, version, environment, hour, dim"
    of_model = "model = ? AND version = ? AND environment = ?"
    for model in models:
        for span in (1, 24):  # a day's row goes once its last hour is past the cutoff
            done.rollup_rows += _batches(
                store,
                f"DELETE FROM drift_sketches WHERE ({sketch_key}) IN (SELECT {sketch_key} FROM drift_sketches"
                f" WHERE {of_model} AND span = ? AND hour < ? LIMIT ?)",
                (*model, span, cutoff_hour - span + 1),
                batch,
                done,
            )
        done.rollup_rows += _batches(
            store,
            f"DELETE FROM drift_columns WHERE ({column_key}) IN (SELECT {column_key} FROM drift_columns"
            f" WHERE {of_model} AND hour < ? LIMIT ?)",
            (*model, cutoff_hour),
            batch,
            done,
        )
        done.rollup_rows += _batches(  # the hours' reservoirs of projected embeddings (drift/embedding_store.py)
            store,
            f"DELETE FROM drift_embeddings WHERE ({embedding_key}) IN (SELECT {embedding_key} FROM drift_embeddings"
            f" WHERE {of_model} AND hour < ? LIMIT ?)",
            (*model, cutoff_hour),
            batch,
            done,
        )


def expire(store: Store, retention: Retention, *, now_ns: int | None = None, batch: int = 5000) -> Expired:
    """Delete what ``retention`` says is too old, in batches of at most ``batch`` rows."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    done = Expired()
    if retention.raw_days is not None:
        cutoff = now_ns - int(retention.raw_days * _DAY_NS)
        _expire_predictions(store, cutoff, batch, done)
        done.labels += _batches(
            store,
            "DELETE FROM labels WHERE (trace_id, row) IN"
            " (SELECT trace_id, row FROM labels INDEXED BY labels_time WHERE time_ns < ? LIMIT ?)",
            (cutoff,),
            batch,
            done,
        )
        _batches(
            store,
            "DELETE FROM label_spans WHERE (trace_id, span_id) IN"
            " (SELECT trace_id, span_id FROM label_spans INDEXED BY label_spans_time WHERE time_ns < ? LIMIT ?)",
            (cutoff,),
            batch,
            done,
        )
        for model_id in _model_ids(store):
            _batches(
                store,
                "DELETE FROM aggregate_points WHERE (instance_id, metric, model_id, reason, start_ns, end_ns) IN"
                " (SELECT instance_id, metric, model_id, reason, start_ns, end_ns FROM aggregate_points"
                " WHERE model_id = ? AND end_ns < ? LIMIT ?)",
                (model_id, cutoff),
                batch,
                done,
            )
    if retention.rollup_days is not None:
        cutoff = now_ns - int(retention.rollup_days * _DAY_NS)
        for model_id in _model_ids(store):
            for table, key, column, unit in _ROLLUPS:
                done.rollup_rows += _batches(
                    store,
                    f"DELETE FROM {table} WHERE ({key}) IN"
                    f" (SELECT {key} FROM {table} WHERE model_id = ? AND {column} < ? LIMIT ?)",
                    (model_id, cutoff // unit),
                    batch,
                    done,
                )
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
