"""Erasure: every stored prediction and label of a trace, or of an entity (``ml.entity``), deleted in one
write transaction, with the rollups that counted them taken down by what they had added.

An entity's erasure takes its traces whole: a label joins its prediction by trace id alone, and the rows of a
prediction keep a copy of their label, so every prediction and label of each trace that holds one of the
entity's predictions goes. What cannot be taken back is described in docs/privacy.md: drift's hourly
sketches (mergeable summaries, from which one row's contribution cannot be subtracted), counts that came as
``/v1/metrics`` aggregates (they never named a row), the usage counters (billing), and copies already exported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from aither_server.drift.store import DAY_HOURS
from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, MINUTE_NS
from aither_server.privacy import audit
from aither_server.store import rollups
from aither_server.store.database import Store, trace_key
from aither_server.store.engine import Connection, open_database
from aither_server.store.lookups import where_in

__all__ = ["Erased", "erase"]

#: (id, model id, start ns, latency ns, status, rows, instance id) of one prediction being erased.
_Prediction = tuple[int, int, int, int, int, int, "int | None"]


def _empty_cells(conn: Connection, table: str, keys: Iterable[tuple[int, ...]]) -> None:
    """Delete the cells of ``keys`` an erasure emptied, as if nothing had been counted there (a cell is only
    written when something is counted)."""
    where = " AND ".join(f"{column} = ?" for column in rollups.KEYS[table].split(", "))
    conn.executemany(f"DELETE FROM {table} WHERE {where} AND calls <= 0", sorted(keys))


@dataclasses.dataclass(frozen=True)
class Erased:
    traces: int
    predictions: int
    """Prediction spans deleted."""
    rows: int
    """The rows those predictions counted (what /metrics calls predictions)."""
    labels: int
    """Label rows deleted (joined or not)."""
    label_spans: int
    sketches: int = 0
    """Drift sketch rows (one column's hour or day) deleted: only when asked (``sketches=True``)."""

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _traces_of_entity(conn: Connection, entity: str) -> list[bytes]:
    rows = conn.execute("SELECT DISTINCT trace_id FROM predictions WHERE entity = ?", (entity,)).fetchall()
    return [bytes(r[0]) for r in rows]


def _predictions(conn: Connection, store: Store, traces: Sequence[bytes]) -> list[_Prediction]:
    """(id, model id, start, latency, status, rows, instance id) of every prediction of ``traces``."""
    wanted = set(traces)
    found: list[_Prediction] = []
    keys = sorted({trace_key(t) for t in traces})
    for condition, params in where_in(store, "trace_key", keys, "bigint"):
        for row in conn.execute(
            "SELECT id, model_id, start_ns, latency_ns, status, n_rows, instance_id, trace_id FROM predictions"
            f" WHERE {condition}",
            params,
        ):
            if bytes(row[7]) in wanted:
                found.append((row[0], row[1], row[2], row[3], row[4], row[5], row[6]))
    return found


def _take_out_rollups(conn: Connection, store: Store, predictions: list[_Prediction]) -> None:
    """Subtract the predictions from every rollup that counted them: the same commutative upserts ingestion
    adds with, with negative counts, so a concurrent writer (on another process) still adds up exactly."""
    counts = rollups.CallCounts()
    per_model: dict[int, list[int]] = {}
    for _, model_id, start_ns, latency_ns, status, n_rows, instance_id in predictions:
        counts.add(model_id, start_ns, latency_ns, status, n_rows, instance_id)
        totals = per_model.setdefault(model_id, [0, 0])
        totals[0] += 1
        totals[1] += n_rows
    counts.write(conn, sign=-1)
    emptied: tuple[tuple[str, Iterable[tuple[int, ...]]], ...] = (
        ("volume_minutes", counts.volume),
        ("latency_hours", counts.latency),
        ("instance_latency_hours", counts.instance_latency),
        ("instance_models", counts.instance_totals),
        ("instance_minutes", counts.instance_minutes),
    )
    for table, cells in emptied:
        _empty_cells(conn, table, cells)
    # volume_hours and latency_days (v0017) follow their finer tables by triggers on insert and update: the
    # negative upserts above took the counts down there too, but a cell emptied there stays unless it goes here.
    _empty_cells(conn, "volume_hours", {(m, minute // (HOUR_NS // MINUTE_NS)) for m, minute in counts.volume})
    _empty_cells(conn, "latency_days", {(m, hour // (DAY_NS // HOUR_NS), b) for m, hour, b in counts.latency})
    greatest = "max" if store.dialect == "sqlite" else "GREATEST"
    conn.executemany(
        f"UPDATE models SET calls = {greatest}(calls - ?, 0), predictions = {greatest}(predictions - ?, 0)"
        " WHERE id = ?",
        [(c, r, model_id) for model_id, (c, r) in sorted(per_model.items())],
    )


def _take_out_quality(conn: Connection, store: Store, pred_ids: list[int]) -> None:
    """Each labelled row's contribution to ``quality_hours``, taken out as a label replaced is."""
    quality: rollups.QualityDeltas = {}
    for condition, params in where_in(store, "pred_id", pred_ids, "bigint"):
        for row in conn.execute(
            "SELECT model_id, start_ns, kind, pred_key, pred_num, score, weight, label_key, label_num, label_kind"
            f" FROM prediction_rows WHERE {condition} AND label_kind IS NOT NULL",
            params,
        ):
            model_id, start_ns, kind, pred_key, pred_num, score, weight, label_key, label_num, label_kind = row
            pred, label = (kind, pred_key, pred_num, score), (label_key, label_num, label_kind)
            rollups.add_quality(quality, -1, model_id, start_ns, pred, label, weight)
    rollups.write_quality(conn, quality)


def _delete(
    conn: Connection, store: Store, table: str, column: str, values: Sequence[int | bytes], pg_type: str
) -> int:
    deleted = 0
    for condition, params in where_in(store, column, values, pg_type):
        deleted += conn.execute(f"DELETE FROM {table} WHERE {condition}", params).rowcount
    return deleted


def _drop_sketches(conn: Connection, predictions: list[_Prediction]) -> int:
    """Drift's sketches of every hour (and day) an erased prediction was in, for its model: a sketch cannot give
    one row back, so the whole hour goes (``drift/store.py``: an hour's rows have ``span`` 1, a day's 24 from
    its first hour)."""
    cells = sorted({(p[1], p[2] // HOUR_NS) for p in predictions})
    names: dict[int, tuple[str, str, str]] = {}
    for model_id in sorted({m for m, _ in cells}):
        row = conn.execute("SELECT name, version, environment FROM models WHERE id = ?", (model_id,)).fetchone()
        names[model_id] = (row[0], row[1], row[2])
    deleted = 0
    where = "model = ? AND version = ? AND environment = ? AND span = ? AND hour = ?"
    for model_id, hour in cells:
        for span, start in ((1, hour), (DAY_HOURS, hour - hour % DAY_HOURS)):
            params = (*names[model_id], span, start)
            deleted += conn.execute(f"DELETE FROM drift_sketches WHERE {where}", params).rowcount
        # The hour's reservoir of projected embeddings: rows kept without their trace, so the hour's go whole.
        embedded = "model = ? AND version = ? AND environment = ? AND hour = ?"
        deleted += conn.execute(f"DELETE FROM drift_embeddings WHERE {embedded}", (*names[model_id], hour)).rowcount
    return deleted


def erase(
    store: Store,
    key_id: str,
    *,
    trace_id: bytes | None = None,
    entity: str | None = None,
    sketches: bool = False,
) -> Erased:
    """Erase one trace's or one (hashed) entity's predictions and labels (and with ``sketches``, drift's sketches
    of their hours); the audit entry is written in the same transaction. Exactly one of ``trace_id`` and
    ``entity``. On SQLite the deleted rows' bytes are overwritten (``secure_delete``) and the write-ahead log
    is emptied after, so they are not left in the file's free pages."""
    if (trace_id is None) == (entity is None):
        raise ValueError("erase takes a trace id or an entity")
    sqlite = store.dialect == "sqlite"
    with store.write() as conn:
        if sqlite:
            conn.execute("PRAGMA secure_delete = ON")
        try:
            erased = _erase(conn, store, key_id, trace_id, entity, sketches)
        finally:
            if sqlite:
                conn.execute("PRAGMA secure_delete = OFF")
    if store.path is not None:
        # The pages as they were before the erasure stay in the write-ahead log until a checkpoint copies the
        # new ones back and the log is truncated (on a connection of its own: the writer's is the store's).
        checkpoint = open_database(store.path).connect()
        try:
            checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            checkpoint.close()
    return erased


def _forget_estimates(conn: Connection, predictions: list[_Prediction]) -> None:
    """The estimated-performance cache, estimated and realized, of every hour an erased prediction was in
    (``estimate/store.py``): it is computed again, without them, when next asked."""
    for model_id, hour_ns in sorted({(p[1], p[2] - p[2] % HOUR_NS) for p in predictions}):
        for table in ("estimate_hours", "realized_hours"):
            conn.execute(f"DELETE FROM {table} WHERE model_id = ? AND hour = ?", (model_id, hour_ns))


def _erase(
    conn: Connection, store: Store, key_id: str, trace_id: bytes | None, entity: str | None, sketches: bool
) -> Erased:
    traces = [trace_id] if trace_id is not None else _traces_of_entity(conn, entity or "")
    predictions = _predictions(conn, store, traces)
    pred_ids = [p[0] for p in predictions]
    _take_out_quality(conn, store, pred_ids)
    _take_out_rollups(conn, store, predictions)
    _delete(conn, store, "prediction_rows", "pred_id", pred_ids, "bigint")
    _delete(conn, store, "predictions", "id", pred_ids, "bigint")
    labels = _delete(conn, store, "labels", "trace_id", traces, "bytea")
    label_spans = _delete(conn, store, "label_spans", "trace_id", traces, "bytea")
    dropped = _drop_sketches(conn, predictions) if sketches else 0
    _forget_estimates(conn, predictions)
    erased = Erased(len(traces), len(pred_ids), sum(p[5] for p in predictions), labels, label_spans, dropped)
    target = f"trace:{trace_id.hex()}" if trace_id is not None else f"entity:{entity}"
    audit.record(conn, key_id, "erasure", target, erased.to_json())
    return erased
