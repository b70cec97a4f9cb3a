"""Label spans into ``label_spans`` and ``labels``, each joined to its prediction's rows by trace id: the
label is copied onto the rows it sets, and each row's count in the quality rollups moves from its old label to
its new one. A label whose prediction is not stored yet waits in ``labels`` (``store/predictions.py`` joins it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, Join

from aither_server.model.json_value import JsonValue
from aither_server.model.records import (
    InvalidJson,
    LabelSpan,
    RowValue,
    ValueKey,
    label_keys,
    label_rows,
    parse_prediction,
)
from aither_server.store.core_tables import label_spans, labels, prediction_rows, predictions
from aither_server.store.engine import Connection, PerDialect, among, dialect_of, run, run_many, upsert
from aither_server.store.labelled_rows import INSERT_ROW, labelled_row, sample_weight
from aither_server.store.lookups import each_chunk, stored_spans, trace_key
from aither_server.store.rollups import LabelCell, QualityDeltas, add_quality, write_quality

__all__ = ["store_labels"]

# Only a label at least as recent as the stored one replaces it, so out-of-order retries do not roll back.
# A label knows its prediction's rows (and model) once that is stored, so labels that cannot join are found
# through the labels_unjoined partial index (GET /api/v1/labels/unjoined). Set at insertion when the
# prediction is there already (the common case), so the label never enters that index.
_LABEL_COLUMNS = (
    "trace_id", "row", "label", "label_key", "label_num", "label_kind", "time_ns", "received_ns", "pred_rows",
    "model_id",
)  # fmt: skip
_REPLACED = ("label", "label_key", "label_num", "label_kind", "time_ns", "received_ns")


#: An upsert pg_bulk takes whole (arrays, or a staged table, on PostgreSQL).
_UPSERT_LABEL = upsert(
    labels,
    {name: bindparam(name) for name in _LABEL_COLUMNS},
    [labels.c.trace_id, labels.c.row],
    lambda new: {name: new[name] for name in _REPLACED},
    where=lambda new: new.time_ns >= labels.c.time_ns,
)
# A plain INSERT: COPY on PostgreSQL.
_INSERT_SPAN = insert(label_spans).values(
    {name: bindparam(name) for name in ("trace_id", "span_id", "row", "label", "time_ns", "received_ns")}
)
_OWNERS = PerDialect(
    lambda dialect: (
        select(predictions.c.id, predictions.c.trace_id, predictions.c.n_rows, predictions.c.model_id)
        .where(among(predictions.c.trace_key, "keys", dialect, BigInteger()))
        .order_by(predictions.c.start_ns, predictions.c.id)
    )
)
_UNWRITTEN = PerDialect(
    lambda dialect: select(
        predictions.c.id,
        predictions.c.model_id,
        predictions.c.start_ns,
        predictions.c.prediction,
        predictions.c.batch_size,
        predictions.c.method,
        predictions.c.sample_rate,
    ).where(
        among(predictions.c.id, "ids", dialect, BigInteger()),
        predictions.c.status == literal_column("0"),  # a constant of the SQL, as the string had it: no parameter
        predictions.c.prediction.is_not(None),
    )
)
_SET_LABEL = (
    update(prediction_rows)
    .where(prediction_rows.c.pred_id == bindparam("pred_id"), prediction_rows.c.row == bindparam("row"))
    .values(label_key=bindparam("label_key"), label_num=bindparam("label_num"), label_kind=bindparam("label_kind"))
)
#: A stored prediction's (model id, start, weight, row values), to write a row at its first label.
_StoredPrediction = tuple[int, int, "float | None", Sequence[RowValue]]
#: What ``_affected`` selects: (prediction id, row), the current label (key, number, kind), the prediction row's
#: model id, start, kind, key, number, score and weight, and its old label (all NULL: the row is not written).
_AffectedRow = tuple[
    int, int, "str | None", "float | None", int,
    "int | None", "int | None", "int | None", "str | None", "float | None", "float | None", "float | None",
    "str | None", "float | None", "int | None",
]  # fmt: skip

#: SQLite: the (prediction, row) pairs a request of labels touches, joined in one statement (``_affected``).
#: Temporary: private to the writer's connection, in memory (temp_store), never in the database file.
_AFFECTED_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS affected_rows (pred_id INTEGER NOT NULL, row INTEGER NOT NULL,"
    " trace_id BLOB NOT NULL, PRIMARY KEY (pred_id, row)) WITHOUT ROWID"
)
_EMPTY_AFFECTED = "DELETE FROM temp.affected_rows"
#: That table, for the statements over it (created by ``_AFFECTED_TABLE``, never by this declaration).
_affected_rows = Table(
    "affected_rows",
    MetaData(),
    Column("pred_id", Integer, primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("trace_id", LargeBinary, nullable=False),
    schema="temp",
)
_ADD_AFFECTED = (
    insert(_affected_rows)
    .prefix_with("OR IGNORE")
    .values(pred_id=bindparam("pred_id"), row=bindparam("row"), trace_id=bindparam("trace_id"))
)


class _CrossJoin(Join):
    """SQLite's ``left CROSS JOIN right ON ...``: an inner join whose left side its planner keeps outermost
    (SQLAlchemy writes no CROSS JOIN; on another engine it is a plain JOIN)."""

    inherit_cache = True


@compiles(_CrossJoin, "sqlite")
def _cross_join(join: _CrossJoin, compiler: SQLCompiler, **kw: Any) -> str:
    kw.pop("asfrom", None)
    assert join.onclause is not None
    left = compiler.process(join.left, asfrom=True, **kw)
    right = compiler.process(join.right, asfrom=True, **kw)
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


def _affected_select(
    pairs: FromClause, join: Callable[[FromClause, FromClause, ColumnElement[bool]], Join]
) -> Select[Any]:
    """The current label and the prediction row (LEFT JOIN: NULLs when not written yet) of each of ``pairs``'
    (pred_id, row, trace_id)."""
    a, lab, pr = pairs.c, labels.c, prediction_rows.c
    current = join(pairs, labels, and_(lab.trace_id == a.trace_id, lab.row == a.row))
    return select(
        a.pred_id, a.row, lab.label_key, lab.label_num, lab.label_kind, pr.model_id, pr.start_ns, pr.kind, pr.pred_key,
        pr.pred_num, pr.score, pr.weight, pr.label_key, pr.label_num, pr.label_kind,
    ).select_from(current.outerjoin(prediction_rows, and_(pr.pred_id == a.pred_id, pr.row == a.row)))  # fmt: skip


#: SQLite: CROSS JOIN keeps the temporary table outermost: one primary-key probe per pair in each table.
_AFFECTED_SQLITE = _affected_select(_affected_rows, _CrossJoin)
#: PostgreSQL: the pairs as three arrays, unnested: one statement, no temporary table to create and empty.
_AFFECTED_POSTGRES = _affected_select(
    func.unnest(
        cast(bindparam("pred_ids"), ARRAY(BigInteger())),
        cast(bindparam("rows"), ARRAY(BigInteger())),
        cast(bindparam("trace_ids"), ARRAY(LargeBinary())),
    )
    .table_valued("pred_id", "row", "trace_id")
    .render_derived(name="a"),
    Join,
)


def _dumps(value: JsonValue) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _label_row(
    span: LabelSpan, row: int, text: str, vk: ValueKey, prediction: tuple[int | None, int | None], now: int
) -> dict[str, object]:
    """One (trace id, row) label of ``span`` for ``_UPSERT_LABEL``; ``prediction``: its prediction's (row
    count, model id) when stored."""
    pred_rows, model_id = prediction
    return {
        "trace_id": span.trace_id, "row": row, "label": text, "label_key": vk.key, "label_num": vk.num,
        "label_kind": vk.kind, "time_ns": span.time_ns, "received_ns": now, "pred_rows": pred_rows,
        "model_id": model_id,
    }  # fmt: skip


def store_labels(conn: Connection, spans: Sequence[LabelSpan], now: int) -> tuple[int, int]:
    """Store one request's label spans; a span already stored (a retry) is skipped. Returns the spans and the
    (trace id, row) labels that were new."""
    if not spans:
        return 0, 0
    unique = {(s.trace_id, s.span_id): s for s in spans}
    existing = stored_spans(conn, "label_spans", list(unique))
    fresh = sorted((s for k, s in unique.items() if k not in existing), key=lambda s: s.time_ns)
    if not fresh:
        return 0, 0
    owner, joined = _owners(conn, {s.trace_id for s in fresh})
    span_params = []
    upserts = []
    affected: dict[bytes, set[int]] = {}
    no_prediction: tuple[int | None, int | None] = (None, None)
    for span in fresh:
        trace_id, label, time_ns = span.trace_id, span.label, span.time_ns
        prediction = joined.get(trace_id, no_prediction)
        # The JSON text as received when there is one (it parses to ``label``): no re-encoding.
        text = span.label_json if span.label_json is not None else _dumps(label)
        span_params.append(
            {"trace_id": trace_id, "span_id": span.span_id, "row": span.row, "label": text, "time_ns": time_ns,
             "received_ns": now}
        )  # fmt: skip
        rows = affected.get(trace_id)
        if rows is None:
            rows = affected[trace_id] = set()
        keys = span.keys if span.keys is not None else label_keys(label, span.row)
        if span.row is not None or not isinstance(label, list):
            # One row: the whole label is its value (label_rows' first and last rules).
            row = 0 if span.row is None else span.row
            upserts.append(_label_row(span, row, text, keys[0], prediction, now))
            rows.add(row)
            continue
        for (row, value), vk in zip(label_rows(span), keys, strict=True):
            upserts.append(_label_row(span, row, _dumps(value), vk, prediction, now))
            rows.add(row)
    run_many(conn, _INSERT_SPAN, span_params)
    run_many(conn, _UPSERT_LABEL, upserts)
    if owner:
        # Rows of these traces labelled before this request learnt their prediction when it was stored.
        _apply_labels(conn, affected, owner)
    return len(fresh), len(upserts)


def _owners(
    conn: Connection, trace_ids: set[bytes]
) -> tuple[dict[int, tuple[bytes, int]], dict[bytes, tuple[int, int]]]:
    """The stored predictions of these traces: {prediction id: (trace id, row count)}, and per trace the
    (row count, model id) of its first prediction."""
    owner: dict[int, tuple[bytes, int]] = {}
    joined: dict[bytes, tuple[int, int]] = {}
    for pred_id, trace_id, n_rows, model_id in each_chunk(
        conn, _OWNERS, "keys", list({trace_key(t) for t in trace_ids})
    ):
        if trace_id in trace_ids:
            owner[pred_id] = (trace_id, n_rows)
            joined.setdefault(trace_id, (n_rows, model_id))
    return owner, joined


def _affected(conn: Connection, pairs: list[tuple[int, int, bytes]]) -> list[_AffectedRow]:
    """For each (prediction id, row, trace id): the current label, and the prediction row's values and old
    label (NULLs when the row is not written yet: never labelled before), one primary-key probe per pair in
    each table (work in proportion to the request)."""
    if dialect_of(conn) == "postgresql":
        unique = sorted(set(pairs))
        return run(
            conn,
            _AFFECTED_POSTGRES,
            {
                "pred_ids": [p[0] for p in unique],
                "rows": [p[1] for p in unique],
                "trace_ids": [p[2] for p in unique],
            },
        ).fetchall()
    conn.execute(_AFFECTED_TABLE)
    conn.execute(_EMPTY_AFFECTED)
    run_many(conn, _ADD_AFFECTED, [{"pred_id": p, "row": r, "trace_id": t} for p, r, t in pairs])
    found = run(conn, _AFFECTED_SQLITE).fetchall()
    conn.execute(_EMPTY_AFFECTED)
    return found


def _unwritten_rows(conn: Connection, pred_ids: set[int]) -> dict[int, _StoredPrediction]:
    """The row values of these stored predictions, reduced again from their stored ``ml.prediction`` (as the
    decoder reduced it): {prediction id: (model id, start, weight, row values)}."""
    found: dict[int, _StoredPrediction] = {}
    for pred_id, model_id, start_ns, text, batch_size, method, sample_rate in each_chunk(
        conn, _UNWRITTEN, "ids", sorted(pred_ids)
    ):
        try:
            _, (_, values) = parse_prediction(text, batch_size, method)
        except InvalidJson:  # stored by a version that did not refuse poison values: nothing to join
            continue
        found[pred_id] = (model_id, start_ns, sample_weight(sample_rate), values)
    return found


def _apply_labels(conn: Connection, affected: dict[bytes, set[int]], owner: dict[int, tuple[bytes, int]]) -> None:
    """Copy the current label of each affected (trace id, row) onto the prediction rows it joins (``owner``:
    the stored predictions of those traces), and move the row's contribution in ``quality_hours`` from its
    old label to its new one.

    The (prediction, row) pairs are joined once to the prediction rows and the labels through their primary
    keys (``_affected``): work in proportion to the request. (Lists of traces crossed with lists of rows
    grow with the square of a request of labels each for its own trace and row.)
    """
    # A row past its prediction's rows has nothing to join (a label that waits for its row, or a hostile
    # request of rows no prediction has): it is not looked up.
    pairs = [
        (pred_id, row, trace_id)
        for pred_id, (trace_id, n_rows) in owner.items()
        for row in affected[trace_id]
        if row < n_rows
    ]
    if not pairs:
        return
    updates: list[dict[str, object]] = []
    inserts: list[dict[str, object]] = []
    quality: QualityDeltas = {}
    unwritten: list[tuple[int, int, LabelCell]] = []
    for found in _affected(conn, pairs):
        (pred_id, row, label_key, label_num, label_kind, model_id, start_ns, kind, pred_key, pred_num, score, weight,
         old_key, old_num, old_kind) = found  # fmt: skip
        label = (label_key, label_num, label_kind)
        if model_id is None or start_ns is None:  # the row's first label (no row written yet): written below
            unwritten.append((pred_id, row, label))
            continue
        if (old_key, old_num, old_kind) == label:
            continue
        pred = (kind, pred_key, pred_num, score)
        if old_kind is not None:
            add_quality(quality, -1, model_id, start_ns, pred, (old_key, old_num, old_kind), weight)
        add_quality(quality, 1, model_id, start_ns, pred, label, weight)
        updates.append(
            {"label_key": label_key, "label_num": label_num, "label_kind": label_kind, "pred_id": pred_id, "row": row}
        )
    if unwritten:
        stored = _unwritten_rows(conn, {pred_id for pred_id, _, _ in unwritten})
        for pred_id, row, label in unwritten:
            prediction = stored.get(pred_id)
            # A row past the values the span carried (a truncated list) has nothing to join.
            if prediction is not None and row < len(prediction[3]):
                model_id, start_ns, weight, values = prediction
                labelled_row(inserts, quality, pred_id, model_id, start_ns, weight, values[row], label)
    if updates:
        run_many(conn, _SET_LABEL, updates)
    if inserts:
        run_many(conn, INSERT_ROW, inserts)
    write_quality(conn, quality)
