"""Labels that cannot join a prediction, kept and listed so they are seen (``GET /api/v1/labels/unjoined``).

Two reasons, judged from what is stored now:

- ``unknown trace``: no prediction with the label's trace id was stored within the grace period after the
  label arrived (labels may arrive first; the SDK's own labels follow their prediction within seconds);
- ``row out of range``: the prediction is stored and has fewer rows than the label's row (``row=10`` on a
  3-row prediction, or the 4th to 7th values of a 7-value list on one). Judged only once the prediction is
  stored, never before.

A label knows its prediction's row count once that is stored (``labels.pred_rows``), so both kinds are read
through the ``labels_unjoined`` partial index.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from aither_server.query.render import stored_json
from aither_server.query.time import iso
from aither_server.store.engine import Connection

__all__ = ["ROW_OUT_OF_RANGE", "UNKNOWN_TRACE", "UnjoinedLabel", "UnjoinedLabels", "unjoined_labels"]

UNKNOWN_TRACE: Literal["unknown trace"] = "unknown trace"
ROW_OUT_OF_RANGE: Literal["row out of range"] = "row out of range"


@with_config(ConfigDict(extra="forbid"))
class UnjoinedLabel(TypedDict):
    trace_id: str
    row: int
    label: object
    reason: Literal["unknown trace", "row out of range"]
    received_at: str


@with_config(ConfigDict(extra="forbid"))
class UnjoinedLabels(TypedDict):
    count: Annotated[int, Field(description="All the labels that cannot join (for this model, with model=).")]
    data: Annotated[list[UnjoinedLabel], Field(description="The newest of them, up to limit.")]


_UNJOINED = "(pred_rows IS NULL OR row >= pred_rows)"


def unjoined_labels(conn: Connection, *, model: str | None, limit: int, grace_ns: int, now_ns: int) -> UnjoinedLabels:
    """``{"count", "data": [{"trace_id", "row", "label", "reason", "received_at"}]}``, newest first.

    With ``model``, only the labels whose prediction is one of that model's (``row out of range``): a label of
    an unknown trace has no model.
    """
    received = "coalesce(received_ns, time_ns)"
    if model is None:
        where = f"{_UNJOINED} AND (pred_rows IS NOT NULL OR {received} <= ?)"
        params: tuple[int | str, ...] = (now_ns - grace_ns,)
    else:
        where = f"{_UNJOINED} AND pred_rows IS NOT NULL AND model_id IN (SELECT id FROM models WHERE name = ?)"
        params = (model,)
    count = conn.execute(f"SELECT count(*) FROM labels INDEXED BY labels_unjoined WHERE {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT trace_id, row, label, pred_rows, {received} FROM labels INDEXED BY labels_unjoined WHERE {where}"
        f" ORDER BY {received} DESC, trace_id, row LIMIT ?",
        (*params, limit),
    ).fetchall()
    return {
        "count": count,
        "data": [
            {
                "trace_id": trace_id.hex(),
                "row": row,
                "label": stored_json(label),
                "reason": UNKNOWN_TRACE if pred_rows is None else ROW_OUT_OF_RANGE,
                "received_at": iso(received_ns) or "",
            }
            for trace_id, row, label, pred_rows, received_ns in rows
        ],
    }
