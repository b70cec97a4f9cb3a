"""Label spans into ``label_spans`` and ``labels``, each joined to its prediction's rows by trace id: the
label is copied onto the rows it sets, and each row's count in the quality rollups moves from its old label to
its new one. A label whose prediction is not stored yet waits in ``labels`` (``store/predictions.py`` joins it)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aither_server.model.json_value import JsonValue
from aither_server.model.records import (
    InvalidJson,
    LabelSpan,
    RowValue,
    label_keys,
    label_rows,
    parse_prediction,
)
from aither_server.store.engine import Connection, Database
from aither_server.store.labelled_rows import INSERT_ROW, labelled_row, sample_weight
from aither_server.store.lookups import stored_spans, trace_key, where_in
from aither_server.store.rollups import LabelCell, QualityDeltas, add_quality, write_quality

__all__ = ["store_labels"]

# Only a label at least as recent as the stored one replaces it, so out-of-order retries do not roll back.
# A label knows its prediction's rows (and model) once that is stored, so labels that cannot join are found
# through the labels_unjoined partial index (GET /api/v1/labels/unjoined). Set at insertion when the
# prediction is there already (the common case), so the label never enters that index.
_UPSERT_LABEL = (
    "INSERT INTO labels (trace_id, row, label, label_key, label_num, label_kind, time_ns, received_ns, pred_rows,"
    " model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (trace_id, row) DO UPDATE SET label = excluded.label, label_key = excluded.label_key,"
    " label_num = excluded.label_num, label_kind = excluded.label_kind, time_ns = excluded.time_ns,"
    " received_ns = excluded.received_ns"
    " WHERE excluded.time_ns >= labels.time_ns"
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


def _dumps(value: JsonValue) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def store_labels(conn: Connection, db: Database, spans: Sequence[LabelSpan], now: int) -> tuple[int, int]:
    """Store one request's label spans; a span already stored (a retry) is skipped. Returns the spans and the
    (trace id, row) labels that were new."""
    if not spans:
        return 0, 0
    unique = {(s.trace_id, s.span_id): s for s in spans}
    existing = stored_spans(conn, db, "label_spans", list(unique))
    fresh = sorted((s for k, s in unique.items() if k not in existing), key=lambda s: s.time_ns)
    if not fresh:
        return 0, 0
    owner, joined = _owners(conn, db, {s.trace_id for s in fresh})
    span_params = []
    upserts = []
    affected: dict[bytes, set[int]] = {}
    no_prediction = (None, None)
    for span in fresh:
        trace_id, label, time_ns = span.trace_id, span.label, span.time_ns
        prediction = joined.get(trace_id, no_prediction)
        # The JSON text as received when there is one (it parses to ``label``): no re-encoding.
        text = span.label_json if span.label_json is not None else _dumps(label)
        span_params.append((trace_id, span.span_id, span.row, text, time_ns, now))
        rows = affected.get(trace_id)
        if rows is None:
            rows = affected[trace_id] = set()
        keys = span.keys if span.keys is not None else label_keys(label, span.row)
        if span.row is not None or not isinstance(label, list):
            # One row: the whole label is its value (label_rows' first and last rules).
            row = 0 if span.row is None else span.row
            vk = keys[0]
            upserts.append((trace_id, row, text, vk.key, vk.num, vk.kind, time_ns, now, *prediction))
            rows.add(row)
            continue
        for (row, value), vk in zip(label_rows(span), keys, strict=True):
            upserts.append((trace_id, row, _dumps(value), vk.key, vk.num, vk.kind, time_ns, now, *prediction))
            rows.add(row)
    conn.executemany(
        "INSERT INTO label_spans (trace_id, span_id, row, label, time_ns, received_ns) VALUES (?, ?, ?, ?, ?, ?)",
        span_params,
    )
    conn.executemany(_UPSERT_LABEL, upserts)
    if owner:
        # Rows of these traces labelled before this request learnt their prediction when it was stored.
        _apply_labels(conn, db, affected, owner)
    return len(fresh), len(upserts)


def _owners(
    conn: Connection, db: Database, trace_ids: set[bytes]
) -> tuple[dict[int, tuple[bytes, int]], dict[bytes, tuple[int, int]]]:
    """The stored predictions of these traces: {prediction id: (trace id, row count)}, and per trace the
    (row count, model id) of its first prediction."""
    owner: dict[int, tuple[bytes, int]] = {}
    joined: dict[bytes, tuple[int, int]] = {}
    for condition, params in where_in(db, "trace_key", list({trace_key(t) for t in trace_ids}), "bigint"):
        for pred_id, trace_id, n_rows, model_id in conn.execute(
            f"SELECT id, trace_id, n_rows, model_id FROM predictions WHERE {condition} ORDER BY start_ns, id",
            params,
        ):
            if trace_id in trace_ids:
                owner[pred_id] = (trace_id, n_rows)
                joined.setdefault(trace_id, (n_rows, model_id))
    return owner, joined


def _affected(conn: Connection, db: Database, pairs: list[tuple[int, int, bytes]]) -> list[_AffectedRow]:
    """For each (prediction id, row, trace id): the current label, and the prediction row's values and old
    label (NULLs when the row is not written yet: never labelled before), one primary-key probe per pair in
    each table (work in proportion to the request)."""
    columns = (
        "SELECT a.pred_id, a.row, l.label_key, l.label_num, l.label_kind, pr.model_id, pr.start_ns, pr.kind,"
        " pr.pred_key, pr.pred_num, pr.score, pr.weight, pr.label_key, pr.label_num, pr.label_kind"
    )
    if db.dialect == "postgresql":
        # The pairs as three arrays, unnested: one statement, no temporary table to create and empty.
        unique = sorted(set(pairs))
        return conn.execute(
            f"{columns} FROM unnest(?::bigint[], ?::bigint[], ?::bytea[]) AS a (pred_id, row, trace_id)"
            " JOIN labels l ON l.trace_id = a.trace_id AND l.row = a.row"
            " LEFT JOIN prediction_rows pr ON pr.pred_id = a.pred_id AND pr.row = a.row",
            ([p[0] for p in unique], [p[1] for p in unique], [p[2] for p in unique]),
        ).fetchall()
    conn.execute(_AFFECTED_TABLE)
    conn.execute("DELETE FROM temp.affected_rows")
    conn.executemany("INSERT OR IGNORE INTO temp.affected_rows (pred_id, row, trace_id) VALUES (?, ?, ?)", pairs)
    # CROSS JOIN keeps the temporary table outermost: one primary-key probe per pair in each table.
    found = conn.execute(
        f"{columns} FROM temp.affected_rows a"
        " CROSS JOIN labels l ON l.trace_id = a.trace_id AND l.row = a.row"
        " LEFT JOIN prediction_rows pr ON pr.pred_id = a.pred_id AND pr.row = a.row"
    ).fetchall()
    conn.execute("DELETE FROM temp.affected_rows")
    return found


def _unwritten_rows(conn: Connection, db: Database, pred_ids: set[int]) -> dict[int, _StoredPrediction]:
    """The row values of these stored predictions, reduced again from their stored ``ml.prediction`` (as the
    decoder reduced it): {prediction id: (model id, start, weight, row values)}."""
    found: dict[int, _StoredPrediction] = {}
    for condition, params in where_in(db, "id", sorted(pred_ids), "bigint"):
        for pred_id, model_id, start_ns, text, batch_size, method, sample_rate in conn.execute(
            "SELECT id, model_id, start_ns, prediction, batch_size, method, sample_rate FROM predictions"
            f" WHERE {condition} AND status = 0 AND prediction IS NOT NULL",
            params,
        ):
            try:
                _, (_, values) = parse_prediction(text, batch_size, method)
            except InvalidJson:  # stored by a version that did not refuse poison values: nothing to join
                continue
            found[pred_id] = (model_id, start_ns, sample_weight(sample_rate), values)
    return found


def _apply_labels(
    conn: Connection, db: Database, affected: dict[bytes, set[int]], owner: dict[int, tuple[bytes, int]]
) -> None:
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
    updates: list[tuple[object, ...]] = []
    inserts: list[tuple[object, ...]] = []
    quality: QualityDeltas = {}
    unwritten: list[tuple[int, int, LabelCell]] = []
    for found in _affected(conn, db, pairs):
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
        updates.append((*label, pred_id, row))
    if unwritten:
        stored = _unwritten_rows(conn, db, {pred_id for pred_id, _, _ in unwritten})
        for pred_id, row, label in unwritten:
            prediction = stored.get(pred_id)
            # A row past the values the span carried (a truncated list) has nothing to join.
            if prediction is not None and row < len(prediction[3]):
                model_id, start_ns, weight, values = prediction
                labelled_row(inserts, quality, pred_id, model_id, start_ns, weight, values[row], label)
    if updates:
        conn.executemany(
            "UPDATE prediction_rows SET label_key = ?, label_num = ?, label_kind = ? WHERE pred_id = ? AND row = ?",
            updates,
        )
    if inserts:
        conn.executemany(INSERT_ROW, inserts)
    write_quality(conn, quality)
