"""Prediction spans into ``predictions``, and the rollups each call moves (volume, latency, per instance, the
models' totals), in one pass over a request's new spans. A label stored before its prediction is joined here:
the rows it labels are written with the prediction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import LargeBinary, bindparam, func, insert, literal_column, select, update

from aither_server.model.records import PredictionSpan, prediction_rows
from aither_server.store.core_tables import labels, models, predictions
from aither_server.store.engine import Connection, PerDialect, among, greatest, least, run, run_many
from aither_server.store.ingest_ids import IdRegistry, NewIds
from aither_server.store.labelled_rows import INSERT_ROW, labelled_row, sample_weight
from aither_server.store.lookups import each_chunk, stored_spans
from aither_server.store.rollups import CallCounts, LabelCell, QualityDeltas, write_quality

__all__ = ["store_predictions"]

_PLAIN_COLUMNS = (
    "id", "trace_key", "trace_id", "span_id", "model_id", "name", "method", "framework", "start_ns", "latency_ns",
    "status", "n_rows", "batch_size", "features", "prediction", "service_name", "received_ns",
)  # fmt: skip
_OPTIONAL_COLUMNS = ("error", "instance_id", "sample_rate", "link_trace_id", "link_span_id", "entity")
# Plain INSERTs: COPY on PostgreSQL (``run_many``).
_INSERT_PREDICTION = insert(predictions).values(
    {name: bindparam(name) for name in (*_PLAIN_COLUMNS, *_OPTIONAL_COLUMNS)}
)
# The common spans leave their optional columns NULL: this statement names only the others. Python's sqlite3
# binds a None (or bytes) parameter through its adapter lookup, about 0.7 us each.
_INSERT_PLAIN_PREDICTION = insert(predictions).values({name: bindparam(name) for name in _PLAIN_COLUMNS})
# A label stored before its prediction learns the prediction's rows and model (``store/label_joins.py``).
_LABELS_JOINED = (
    update(labels)
    .where(labels.c.trace_id == bindparam("trace_id"), labels.c.pred_rows.is_(None))
    .values(pred_rows=bindparam("n_rows"), model_id=bindparam("model_id"))
)
_EARLY_LABELS = PerDialect(
    lambda dialect: select(
        labels.c.trace_id, labels.c.row, labels.c.label_key, labels.c.label_num, labels.c.label_kind
    ).where(among(labels.c.trace_id, "trace_ids", dialect, LargeBinary()))
)
# literal_column: constants of the SQL, as the strings had them (not parameters bound on every call or row).
_NEXT_ID = select(func.coalesce(func.max(predictions.c.id), literal_column("0")) + literal_column("1"))


_MODELS_SEEN = (
    update(models)
    .where(models.c.id == bindparam("model_id"))
    .values(
        calls=models.c.calls + bindparam("calls"),
        predictions=models.c.predictions + bindparam("rows"),
        first_seen_ns=least(models.c.first_seen_ns, bindparam("first_ns")),
        last_seen_ns=greatest(models.c.last_seen_ns, bindparam("last_ns")),
    )
)
_SAMPLED = update(models).where(models.c.id == bindparam("model_id")).values(sampled=literal_column("1"))
_NO_LINK = (None, None)


def _early_labels(conn: Connection, spans: Sequence[PredictionSpan]) -> dict[tuple[bytes, int], LabelCell]:
    """Labels that arrived before their prediction: {(trace id, row): label}."""
    early: dict[tuple[bytes, int], LabelCell] = {}
    trace_ids = list({s.trace_id for s in spans})
    for trace_id, row, key, num, kind in each_chunk(conn, _EARLY_LABELS, "trace_ids", trace_ids):
        early[(trace_id, row)] = (key, num, kind)
    return early


def store_predictions(
    conn: Connection, ids: IdRegistry, spans: Sequence[PredictionSpan], now: int, new: NewIds
) -> tuple[int, int]:
    """Store one request's prediction spans; a span already stored (a retry) is skipped. Returns the spans and
    the rows that were new."""
    if not spans:
        return 0, 0
    unique = {(s.trace_id, s.span_id): s for s in spans}
    existing = stored_spans(conn, "predictions", list(unique))
    fresh = [s for k, s in unique.items() if k not in existing] if existing else list(unique.values())
    if not fresh:
        return 0, 0
    # Labels that arrived before their prediction: its rows they label are written now, with the label.
    early = _early_labels(conn, fresh)
    early_traces = {trace_id for trace_id, _ in early}
    joined: list[dict[str, object]] = []

    next_id: int = run(conn, _NEXT_ID).fetchone()[0]
    pred_params: list[dict[str, object]] = []
    plain_params: list[dict[str, object]] = []
    row_params: list[dict[str, object]] = []
    per_model: dict[int, list[int]] = {}
    calls = CallCounts()
    add_call = calls.add
    sampled: set[int] = set()
    quality: QualityDeltas = {}
    total_rows = 0
    model_ids = ids.models
    instance_ids = ids.instances
    from_bytes = int.from_bytes
    for span in fresh:
        model_key = (span.model, span.version, span.environment)
        model_id = model_ids.get(model_key) or ids.model_id(conn, model_key, span.start_ns, new)
        instance = span.instance
        instance_id = (instance_ids.get(instance) or ids.instance_id(conn, instance, now, new)) if instance else None
        sample_rate = span.sample_rate
        weight = sample_weight(sample_rate)
        if weight is not None:
            sampled.add(model_id)
        n_rows, values = prediction_rows(span)
        total_rows += n_rows
        pred_id = next_id
        next_id += 1
        trace_id = span.trace_id
        start_ns = span.start_ns
        latency_ns = span.end_ns - start_ns
        error = span.error
        status = 0 if error is None else 1
        link = span.link
        params: dict[str, object] = {
            "id": pred_id,
            "trace_key": from_bytes(trace_id[:8], "big", signed=True),  # trace_key()
            "trace_id": trace_id,
            "span_id": span.span_id,
            "model_id": model_id,
            "name": span.name,
            "method": span.method,
            "framework": span.framework,
            "start_ns": start_ns,
            "latency_ns": latency_ns,
            "status": status,
            "n_rows": n_rows,
            "batch_size": span.batch_size,
            "features": span.features,
            "prediction": span.prediction_json,
            "service_name": span.service_name,
            "received_ns": now,
        }
        entity = span.entity
        if error is None and instance_id is None and sample_rate is None and link is None and entity is None:
            plain_params.append(params)
        else:
            link_trace_id, link_span_id = link or _NO_LINK
            params.update(
                error=error,
                instance_id=instance_id,
                sample_rate=sample_rate,
                link_trace_id=link_trace_id,
                link_span_id=link_span_id,
                entity=entity,
            )
            pred_params.append(params)
        if early and trace_id in early_traces:
            joined.append({"n_rows": n_rows, "model_id": model_id, "trace_id": trace_id})
            for v in values:
                label = early.get((trace_id, v.row))
                if label is not None:
                    labelled_row(row_params, quality, pred_id, model_id, start_ns, weight, v, label)
        add_call(model_id, start_ns, latency_ns, status, n_rows, instance_id)
        stats = per_model.get(model_id)
        if stats is None:
            per_model[model_id] = [1, n_rows, start_ns, start_ns]
        else:
            stats[0] += 1
            stats[1] += n_rows
            if start_ns < stats[2]:
                stats[2] = start_ns
            elif start_ns > stats[3]:
                stats[3] = start_ns
    for statement, batch in (
        (_INSERT_PLAIN_PREDICTION, plain_params),
        (_INSERT_PREDICTION, pred_params),
        (INSERT_ROW, row_params),
    ):
        if batch:
            run_many(conn, statement, batch)
    if joined:
        run_many(conn, _LABELS_JOINED, joined)
    run_many(
        conn,
        _MODELS_SEEN,
        [
            {"calls": c, "rows": r, "first_ns": lo, "last_ns": hi, "model_id": mid}
            for mid, (c, r, lo, hi) in sorted(per_model.items())
        ],
    )
    calls.write(conn)
    if sampled:
        run_many(conn, _SAMPLED, [{"model_id": mid} for mid in sorted(sampled)])
    write_quality(conn, quality)
    return len(fresh), total_rows
