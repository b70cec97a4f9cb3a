"""Stored predictions read back with their labels: a model's newest, or one by trace id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aither_server.model.sampled_rows import sampled_rows
from aither_server.query.models import model_ids
from aither_server.query.render import stored_json
from aither_server.query.time import iso
from aither_server.store.engine import Connection, placeholders

__all__ = ["get_prediction", "recent_predictions"]

_PREDICTION_COLUMNS = (
    "p.id, p.trace_id, p.span_id, m.name, m.version, m.environment, p.method, p.framework, p.start_ns,"
    " p.latency_ns, p.status, p.batch_size, p.features, p.prediction, p.error, p.n_rows, p.link_trace_id,"
    " p.link_span_id"
)


def _labels_by_trace(conn: Connection, trace_ids: Sequence[bytes]) -> dict[bytes, dict[str, Any]]:
    out: dict[bytes, dict[str, Any]] = {}
    for i in range(0, len(trace_ids), 500):
        chunk = trace_ids[i : i + 500]
        for trace_id, row, label in conn.execute(
            f"SELECT trace_id, row, label FROM labels WHERE trace_id IN ({placeholders(chunk)}) ORDER BY trace_id, row",
            chunk,
        ):
            out.setdefault(trace_id, {})[str(row)] = stored_json(label)
    return out


def _prediction(row: Sequence[Any], labels: dict[str, Any]) -> dict[str, Any]:
    (_, trace_id, span_id, model, version, env, method, framework, start, latency, status, batch, features,
     prediction, error, n_rows, link_trace_id, link_span_id) = row  # fmt: skip
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
        "features": stored_json(features),
        "prediction": stored_json(prediction),
        "labels": labels,
        "sampled_rows": sampled_rows(stored_json(features), stored_json(prediction), labels),
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
) -> list[dict[str, Any]] | None:
    """The newest predictions of a model, with their labels; ``None`` when no model has this name."""
    models = model_ids(conn, name, version, environment)
    if models is None:
        return None
    rows: list[Any] = []
    # Per model row, so each query walks the (model_id, start_ns) index backwards and stops at `limit`.
    for model_id, _, _ in models:
        rows.extend(
            conn.execute(
                f"SELECT {_PREDICTION_COLUMNS} FROM predictions p JOIN models m ON m.id = p.model_id"
                " WHERE p.model_id = ? ORDER BY p.start_ns DESC, p.id DESC LIMIT ?",
                (model_id, limit),
            )
        )
    rows.sort(key=lambda r: (r[8], r[0]), reverse=True)
    rows = rows[:limit]
    labels = _labels_by_trace(conn, list({r[1] for r in rows}))
    return [_prediction(r, labels.get(r[1], {})) for r in rows]


def get_prediction(conn: Connection, trace_id: bytes) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {_PREDICTION_COLUMNS} FROM predictions p JOIN models m ON m.id = p.model_id"
        " WHERE p.trace_id = ? ORDER BY p.start_ns, p.id LIMIT 1",
        (trace_id,),
    ).fetchone()
    if row is None:
        return None
    return _prediction(row, _labels_by_trace(conn, [trace_id]).get(trace_id, {}))
