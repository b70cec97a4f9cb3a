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

from sqlalchemy import BigInteger, LargeBinary, Table, bindparam, delete, select, update
from sqlalchemy.sql import Executable

from aither_server.drift.embedding_store import drift_embeddings
from aither_server.drift.store import DAY_HOURS, drift_sketches
from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, MINUTE_NS
from aither_server.privacy import audit
from aither_server.store import core_tables, lookups, rollups
from aither_server.store.core_tables import label_spans, labels, models, prediction_rows, predictions
from aither_server.store.database import Store, trace_key
from aither_server.store.engine import Connection, PerDialect, among, greatest, open_database, run, run_many
from aither_server.store.estimate_tables import estimate_hours, realized_hours

__all__ = ["Erased", "erase"]

#: (id, model id, start ns, latency ns, status, rows, instance id) of one prediction being erased.
_Prediction = tuple[int, int, int, int, int, int, "int | None"]


def _emptied(table: Table) -> Executable:
    """Delete one cell of ``table`` (its key given by column name) if an erasure emptied it."""
    key = [table.c[column] == bindparam(column) for column in rollups.KEYS[table.name]]
    return delete(table).where(*key, table.c.calls <= 0)


_EMPTIED = {
    name: _emptied(core_tables.metadata.tables[name])
    for name in (
        "volume_minutes",
        "latency_hours",
        "instance_latency_hours",
        "instance_models",
        "instance_minutes",
        "volume_hours",
        "latency_days",
    )
}


def _empty_cells(conn: Connection, table: str, keys: Iterable[tuple[int, ...]]) -> None:
    """Delete the cells of ``keys`` an erasure emptied, as if nothing had been counted there (a cell is only
    written when something is counted)."""
    names = rollups.KEYS[table]
    run_many(conn, _EMPTIED[table], [dict(zip(names, key, strict=True)) for key in sorted(keys)])


_TAKE_OUT_CALLS = (
    update(models)
    .where(models.c.id == bindparam("model_id"))
    .values(
        calls=greatest(models.c.calls - bindparam("taken_calls"), 0),
        predictions=greatest(models.c.predictions - bindparam("taken_rows"), 0),
    )
)
_p = predictions.c
_TRACES_OF_ENTITY = select(_p.trace_id).distinct().where(_p.entity == bindparam("entity"))
_PREDICTIONS = PerDialect(
    lambda dialect: select(
        _p.id, _p.model_id, _p.start_ns, _p.latency_ns, _p.status, _p.n_rows, _p.instance_id, _p.trace_id
    ).where(among(_p.trace_key, "keys", dialect, BigInteger()))
)
_r = prediction_rows.c
_LABELLED_ROWS = PerDialect(
    lambda dialect: select(
        _r.model_id,
        _r.start_ns,
        _r.kind,
        _r.pred_key,
        _r.pred_num,
        _r.score,
        _r.weight,
        _r.label_key,
        _r.label_num,
        _r.label_kind,
    ).where(among(_r.pred_id, "ids", dialect, BigInteger()), _r.label_kind.is_not(None))
)


def _deleting(table: Table, column: str, pg_type: BigInteger | LargeBinary) -> PerDialect:
    return PerDialect(lambda dialect: delete(table).where(among(table.c[column], "values", dialect, pg_type)))


_DELETE_ROWS = _deleting(prediction_rows, "pred_id", BigInteger())
_DELETE_PREDICTIONS = _deleting(predictions, "id", BigInteger())
_DELETE_LABELS = _deleting(labels, "trace_id", LargeBinary())
_DELETE_LABEL_SPANS = _deleting(label_spans, "trace_id", LargeBinary())
_MODEL_NAME = select(models.c.name, models.c.version, models.c.environment).where(models.c.id == bindparam("model_id"))
_s = drift_sketches.c
_DROP_SKETCH = delete(drift_sketches).where(
    _s.model == bindparam("model"),
    _s.version == bindparam("version"),
    _s.environment == bindparam("environment"),
    _s.span == bindparam("span"),
    _s.hour == bindparam("hour"),
)
_e = drift_embeddings.c
_DROP_EMBEDDINGS = delete(drift_embeddings).where(
    _e.model == bindparam("model"),
    _e.version == bindparam("version"),
    _e.environment == bindparam("environment"),
    _e.hour == bindparam("hour"),
)
_FORGET_ESTIMATES = tuple(
    delete(table).where(table.c.model_id == bindparam("model_id"), table.c.hour == bindparam("hour"))
    for table in (estimate_hours, realized_hours)
)


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
    rows = run(conn, _TRACES_OF_ENTITY, {"entity": entity}).fetchall()
    return [bytes(r[0]) for r in rows]


def _predictions(conn: Connection, traces: Sequence[bytes]) -> list[_Prediction]:
    """(id, model id, start, latency, status, rows, instance id) of every prediction of ``traces``."""
    wanted = set(traces)
    found: list[_Prediction] = []
    keys = sorted({trace_key(t) for t in traces})
    for row in lookups.each_chunk(conn, _PREDICTIONS, "keys", keys):
        if bytes(row[7]) in wanted:
            found.append((row[0], row[1], row[2], row[3], row[4], row[5], row[6]))
    return found


def _take_out_rollups(conn: Connection, predictions: list[_Prediction]) -> None:
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
    run_many(
        conn,
        _TAKE_OUT_CALLS,
        [{"taken_calls": c, "taken_rows": r, "model_id": model_id} for model_id, (c, r) in sorted(per_model.items())],
    )


def _take_out_quality(conn: Connection, pred_ids: list[int]) -> None:
    """Each labelled row's contribution to ``quality_hours``, taken out as a label replaced is."""
    quality: rollups.QualityDeltas = {}
    for row in lookups.each_chunk(conn, _LABELLED_ROWS, "ids", pred_ids):
        model_id, start_ns, kind, pred_key, pred_num, score, weight, label_key, label_num, label_kind = row
        pred, label = (kind, pred_key, pred_num, score), (label_key, label_num, label_kind)
        rollups.add_quality(quality, -1, model_id, start_ns, pred, label, weight)
    rollups.write_quality(conn, quality)


def _drop_sketches(conn: Connection, predictions: list[_Prediction]) -> int:
    """Drift's sketches of every hour (and day) an erased prediction was in, for its model: a sketch cannot give
    one row back, so the whole hour goes (``drift/store.py``: an hour's rows have ``span`` 1, a day's 24 from
    its first hour)."""
    cells = sorted({(p[1], p[2] // HOUR_NS) for p in predictions})
    names: dict[int, tuple[str, str, str]] = {}
    for model_id in sorted({m for m, _ in cells}):
        row = run(conn, _MODEL_NAME, {"model_id": model_id}).fetchone()
        names[model_id] = (row[0], row[1], row[2])
    deleted = 0
    for model_id, hour in cells:
        name, version, environment = names[model_id]
        model = {"model": name, "version": version, "environment": environment}
        for span, start in ((1, hour), (DAY_HOURS, hour - hour % DAY_HOURS)):
            deleted += run(conn, _DROP_SKETCH, {**model, "span": span, "hour": start}).rowcount
        # The hour's reservoir of projected embeddings: rows kept without their trace, so the hour's go whole.
        deleted += run(conn, _DROP_EMBEDDINGS, {**model, "hour": hour}).rowcount
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
            erased = _erase(conn, key_id, trace_id, entity, sketches)
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
        for statement in _FORGET_ESTIMATES:
            run(conn, statement, {"model_id": model_id, "hour": hour_ns})


def _erase(conn: Connection, key_id: str, trace_id: bytes | None, entity: str | None, sketches: bool) -> Erased:
    traces = [trace_id] if trace_id is not None else _traces_of_entity(conn, entity or "")
    found = _predictions(conn, traces)
    pred_ids = [p[0] for p in found]
    _take_out_quality(conn, pred_ids)
    _take_out_rollups(conn, found)
    lookups.change_each_chunk(conn, _DELETE_ROWS, "values", pred_ids)
    lookups.change_each_chunk(conn, _DELETE_PREDICTIONS, "values", pred_ids)
    n_labels = lookups.change_each_chunk(conn, _DELETE_LABELS, "values", traces)
    n_label_spans = lookups.change_each_chunk(conn, _DELETE_LABEL_SPANS, "values", traces)
    dropped = _drop_sketches(conn, found) if sketches else 0
    _forget_estimates(conn, found)
    erased = Erased(len(traces), len(pred_ids), sum(p[5] for p in found), n_labels, n_label_spans, dropped)
    target = f"trace:{trace_id.hex()}" if trace_id is not None else f"entity:{entity}"
    audit.record(conn, key_id, "erasure", target, erased.to_json())
    return erased
