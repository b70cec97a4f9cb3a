"""Stored predictions read back with their labels: a model's newest, or one by trace id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, with_config
from sqlalchemy import LargeBinary, Select, bindparam, select
from typing_extensions import TypedDict

from aither_server.model.sampled_rows import sampled_rows
from aither_server.query.models import model_ids
from aither_server.query.render import stored_json
from aither_server.query.time import iso
from aither_server.store.core_tables import labels as labels_table
from aither_server.store.core_tables import models, predictions
from aither_server.store.engine import Connection, PerDialect, among, run
from aither_server.store.lookups import each_chunk

__all__ = ["LinkOut", "PredictionOut", "SampledRow", "get_prediction", "recent_predictions"]

# TypedDicts of typing_extensions: pydantic validates them (the API answers) on Python < 3.12.


@with_config(ConfigDict(extra="forbid"))
class LinkOut(TypedDict):
    trace_id: str
    span_id: str


@with_config(ConfigDict(extra="forbid"))
class SampledRow(TypedDict):  # a sampled row of the features joined to its output and label
    row: int
    features: object
    prediction: object
    label: object


@with_config(ConfigDict(extra="forbid"))
class PredictionOut(TypedDict):  # a stored prediction with its labels by row
    trace_id: str
    span_id: str
    model: str
    version: str | None
    environment: str | None
    method: str | None
    framework: str | None
    start_time: str | None
    latency_ms: float
    status: Literal["ok", "error"]
    batch_size: int | None
    rows: int
    features: object
    prediction: object
    labels: dict[str, object]
    sampled_rows: Annotated[
        list[SampledRow],
        Field(description="The feature sample's rows, each with its batch row (_meta.rows), its prediction and label."),
    ]
    error: str | None
    link: Annotated[
        LinkOut | None, Field(description="The caller's OpenTelemetry span (the prediction span's first link).")
    ]


_p = predictions.c
_m = models.c
#: A prediction's columns as :func:`_prediction` reads them, of ``predictions`` joined to its model row.
_PREDICTION_COLUMNS = (
    _p.id, _p.trace_id, _p.span_id, _m.name, _m.version, _m.environment, _p.method, _p.framework, _p.start_ns,
    _p.latency_ns, _p.status, _p.batch_size, _p.features, _p.prediction, _p.error, _p.n_rows, _p.link_trace_id,
    _p.link_span_id,
)  # fmt: skip


def prediction_select() -> Select[Any]:
    """``SELECT`` :data:`_PREDICTION_COLUMNS` ``FROM predictions JOIN models``: the rows :func:`_prediction` reads."""
    return select(*_PREDICTION_COLUMNS).select_from(predictions.join(models, _m.id == _p.model_id))


#: A model row's newest predictions: walks its (model_id, start_ns) index backwards and stops at ``limit``.
_NEWEST = (
    prediction_select()
    .where(_p.model_id == bindparam("model_id"))
    .order_by(_p.start_ns.desc(), _p.id.desc())
    .limit(bindparam("limit"))
)
_BY_TRACE = prediction_select().where(_p.trace_id == bindparam("trace_id")).order_by(_p.start_ns, _p.id).limit(1)
_l = labels_table.c
_LABELS = PerDialect(
    lambda dialect: (
        select(_l.trace_id, _l.row, _l.label)
        .where(among(_l.trace_id, "trace_ids", dialect, LargeBinary()))
        .order_by(_l.trace_id, _l.row)
    )
)


def _labels_by_trace(conn: Connection, trace_ids: Sequence[bytes]) -> dict[bytes, dict[str, object]]:
    out: dict[bytes, dict[str, object]] = {}
    if not trace_ids:
        return out
    for trace_id, row, label in each_chunk(conn, _LABELS, "trace_ids", trace_ids):
        out.setdefault(trace_id, {})[str(row)] = stored_json(label)
    return out


def _prediction(row: Sequence[Any], labels: dict[str, object]) -> PredictionOut:
    """A raw cursor row (the columns of ``_PREDICTION_COLUMNS``) as the API answers it."""
    (_, trace_id, span_id, model, version, env, method, framework, start, latency, status, batch, features,
     prediction, error, n_rows, link_trace_id, link_span_id) = row  # fmt: skip
    features_value, prediction_value = stored_json(features), stored_json(prediction)
    return {
        "trace_id": trace_id.hex(),
        "span_id": span_id.hex(),
        "model": model,
        "version": version or None,
        "environment": env or None,
        "method": method,
        "framework": framework,
        "start_time": iso(start),
        "latency_ms": latency / 1e6,
        "status": "error" if status else "ok",
        "batch_size": batch,
        "rows": n_rows,
        "features": features_value,
        "prediction": prediction_value,
        "labels": labels,
        "sampled_rows": [
            SampledRow(row=r["row"], features=r["features"], prediction=r["prediction"], label=r["label"])
            for r in sampled_rows(features_value, prediction_value, labels)
        ],
        "error": error,
        "link": None if link_trace_id is None else {"trace_id": link_trace_id.hex(), "span_id": link_span_id.hex()},
    }


def recent_predictions(
    conn: Connection,
    name: str,
    *,
    limit: int,
    version: str | None = None,
    environment: str | None = None,
) -> list[PredictionOut] | None:
    """The newest predictions of a model, with their labels; ``None`` when no model has this name."""
    models = model_ids(conn, name, version, environment)
    if models is None:
        return None
    # Per model row, so each query walks the (model_id, start_ns) index backwards and stops at `limit`.
    rows = [row for model_id, _, _ in models for row in run(conn, _NEWEST, {"model_id": model_id, "limit": limit})]
    rows.sort(key=lambda r: (r[8], r[0]), reverse=True)
    rows = rows[:limit]
    labels = _labels_by_trace(conn, list({r[1] for r in rows}))
    return [_prediction(r, labels.get(r[1], {})) for r in rows]


def get_prediction(conn: Connection, trace_id: bytes) -> PredictionOut | None:
    row = run(conn, _BY_TRACE, {"trace_id": trace_id}).fetchone()
    if row is None:
        return None
    return _prediction(row, _labels_by_trace(conn, [trace_id]).get(trace_id, {}))
